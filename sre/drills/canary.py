"""The canary writer: a numbered row every interval through the DSN the application uses.

It connects the way the application would (through the DNS record, `target_session_attrs=read-write`
so a fenced server is refused at connect time, as a well-configured pool does), and on any error
drops the connection and connects again, resolving the record again. Each INSERT that returns is
an acknowledged write: its number, the wall-clock time it returned and the server it went to are
recorded. RTO and RPO are computed from these acknowledgements, so they measure what an
application would have seen, not what the steps believe they did.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sre.telemetry import get_logger

log = get_logger("sre.drills.canary")

# An outage is measured to within one retry: keep it well under the write interval.
RETRY_DELAY = 0.01


@dataclass(frozen=True)
class Ack:
    n: int
    at: float  # time.time() when the INSERT returned
    target: str  # the server it went to, as the record named it ("host:port"), or "dns"


@dataclass(frozen=True)
class CanaryError:
    at: float
    phase: str  # resolve | connect | write
    target: str
    message: str


@dataclass
class Canary:
    """Run with start()/stop(); `resolve()` returns (dsn, target) and is called on every connect."""

    resolve: Callable[[], tuple[str, str]]
    table: str
    drill_id: int
    interval: float = 0.05
    acks: list[Ack] = field(default_factory=list)
    errors: list[CanaryError] = field(default_factory=list)
    attempted: int = 0
    connects: int = 0
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _changed: threading.Condition = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._changed = threading.Condition(self._lock)

    # ------------------------------------------------------------------ lifecycle

    def prepare(self) -> None:
        """Create the canary table through the application's path (so the primary is writable)."""
        import psycopg

        dsn, _ = self.resolve()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} (drill_id bigint NOT NULL, n bigint NOT NULL, "
                "at timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (drill_id, n))"
            )
            # Old drills' rows are evidence for a while, not forever.
            conn.execute(f"DELETE FROM {self.table} WHERE at < now() - interval '90 days'")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="sre-drill-canary", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ reading

    def snapshot(self) -> list[Ack]:
        with self._lock:
            return list(self.acks)

    def wait_for(self, predicate: Callable[[list[Ack]], bool], timeout: float, what: str) -> list[Ack]:
        """Block until `predicate(acks)` holds; TimeoutError naming `what` and the last error."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.acks):
                left = deadline - time.monotonic()
                if left <= 0:
                    last = self.errors[-1].message if self.errors else "no error recorded"
                    raise TimeoutError(f"canary: {what} not seen within {timeout:.1f}s (last error: {last})")
                self._changed.wait(min(left, 0.1))
            return list(self.acks)

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {"interval_seconds": self.interval, "attempted": self.attempted, "acknowledged": len(self.acks),
                    "errors": len(self.errors), "connects": self.connects, "table": self.table,
                    "first_ack": self.acks[0].at if self.acks else None,
                    "last_ack": self.acks[-1].at if self.acks else None}

    # ------------------------------------------------------------------ the thread

    def _error(self, phase: str, target: str, exc: BaseException) -> None:
        message = f"{exc.__class__.__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        with self._lock:
            # Keep the first and the latest errors; an outage may produce hundreds of the same.
            if len(self.errors) < 500:
                self.errors.append(CanaryError(time.time(), phase, target, message))
            else:
                self.errors[-1] = CanaryError(time.time(), phase, target, message)

    def _loop(self) -> None:
        import psycopg

        conn: psycopg.Connection[Any] | None = None
        target = ""
        n = 0
        next_tick = time.monotonic()
        insert = f"INSERT INTO {self.table} (drill_id, n) VALUES (%s, %s)"
        try:
            while not self._stop.is_set():
                if conn is None:
                    try:
                        dsn, target = self.resolve()
                    except Exception as exc:
                        self._error("resolve", "", exc)
                        self._stop.wait(RETRY_DELAY)
                        continue
                    try:
                        conn = psycopg.connect(dsn, autocommit=True)
                        self.connects += 1
                    except Exception as exc:
                        self._error("connect", target, exc)
                        self._stop.wait(RETRY_DELAY)
                        continue
                n += 1
                with self._lock:
                    self.attempted += 1
                try:
                    conn.execute(insert, (self.drill_id, n))
                except Exception as exc:
                    self._error("write", target, exc)
                    try:
                        conn.close()
                    except Exception:
                        pass
                    conn = None
                    continue
                with self._changed:
                    self.acks.append(Ack(n, time.time(), target))
                    self._changed.notify_all()
                next_tick = max(next_tick + self.interval, time.monotonic())
                self._stop.wait(max(0.0, next_tick - time.monotonic()))
        finally:
            if conn is not None:
                try:
                    conn.close()
                except Exception:
                    pass


def canary_dsn(base: dict[str, Any], host: str | None, port: int | None) -> str:
    """The application's DSN pointed at (host, port), refusing read-only servers, failing fast."""
    from psycopg.conninfo import make_conninfo

    params = dict(base)
    if host is not None:
        params["host"] = host
        params.pop("hostaddr", None)
    if port is not None:
        params["port"] = str(port)
    params["target_session_attrs"] = "read-write"
    params["application_name"] = "sre-drill-canary"
    params["connect_timeout"] = "2"
    # A server that vanishes mid-write (a lost region) must fail the write in seconds, not minutes.
    params.setdefault("tcp_user_timeout", "2000")
    params.setdefault("keepalives_idle", "5")
    return str(make_conninfo(**params))
