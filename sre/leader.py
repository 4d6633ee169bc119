"""Leadership among replicas: the one replica that runs the scheduled jobs.

With a PostgreSQL state store, the leader is the replica holding a session advisory lock on a
connection of its own. PostgreSQL releases that lock when the backend ends: the leader process
dies (its socket closes), its connection is terminated, or the server drops the link after the
TCP keepalives set below. The leader checks the connection every `leader.heartbeat`; the first
failed check ends leadership at once (the scheduler stops) and the connection is closed, so the
lock is free for a standby, which tries to take it every `leader.retry`.

Job slots are claimed through that same connection (`claim`): a claim is an INSERT that only
succeeds while the backend holding the lock is alive, so a leader that has lost its lock cannot
start a run even in the moment before its next heartbeat notices.

With SQLite there is one process and it always leads.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import Counter

from sre.store.base import utcnow
from sre.store.leader import CLAIM_SQL
from sre.telemetry import get_logger, log_fields

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from sre.config import LeaderConfig, SreConfig
    from sre.store import Store

log = get_logger("sre.leader")

# Advisory locks are per database; db.py's migration lock is 0x5E_0001.
LOCK_KEY = 0x5E_0002
REPLICA_ENV = "SRE_REPLICA_ID"

LEADER_CHANGES = Counter("sre_leader_changes_total", "Leadership acquired or lost by this replica.", ["event"])

Callback = Callable[[], None]


def replica_id() -> str:
    """This replica's name in runs and claims: $SRE_REPLICA_ID, else the host name (the pod name)."""
    return os.environ.get(REPLICA_ENV) or socket.gethostname()


def claim_params(job: str, slot_ms: int) -> dict[str, Any]:
    return {"job": job, "slot_ms": slot_ms, "holder": replica_id(), "claimed_at": utcnow()}


class Leadership(Protocol):
    @property
    def is_leader(self) -> bool: ...

    @property
    def alive(self) -> bool:
        """Still taking part: leading, or a standby that keeps trying."""
        ...

    def start(self, on_elected: Callback, on_lost: Callback) -> None: ...

    def stop(self) -> None:
        """Leave for good; a leader releases its lock."""
        ...

    def claim(self, job: str, slot_ms: int) -> bool:
        """Take `job`'s slot starting at `slot_ms` if no replica has taken it or a later one."""
        ...


class SoleReplica:
    """SQLite state: one process, always the leader; claims still keep a slot from running twice."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._leader = False

    @property
    def is_leader(self) -> bool:
        return self._leader

    @property
    def alive(self) -> bool:
        return True

    def start(self, on_elected: Callback, on_lost: Callback) -> None:
        self._leader = True
        on_elected()

    def stop(self) -> None:
        self._leader = False

    def claim(self, job: str, slot_ms: int) -> bool:
        with self.store.session() as s:
            return int(getattr(s.execute(CLAIM_SQL, claim_params(job, slot_ms)), "rowcount", 0)) == 1


class AdvisoryLockLeadership:
    """Leadership through `pg_try_advisory_lock` on a dedicated, autocommit connection."""

    def __init__(self, url: str, cfg: LeaderConfig, *, key: int = LOCK_KEY) -> None:
        self.url = url
        self.cfg = cfg
        self.key = key
        self._mu = threading.Lock()  # one statement at a time on the lock connection
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._engine: Engine | None = None
        self._conn: Connection | None = None
        self._leader = False
        self._last_ok = 0.0
        self._not_before = 0.0
        self._on_elected: Callback = lambda: None
        self._on_lost: Callback = lambda: None

    def __repr__(self) -> str:  # the URL may hold a password
        return f"AdvisoryLockLeadership(key={self.key:#x}, leader={self._leader})"

    # ------------------------------------------------------------ state

    @property
    def lease(self) -> float:
        """A leader whose last good round trip is older than this no longer counts as leader,
        even if its heartbeat thread is stuck in a call."""
        return self.cfg.heartbeat + self.cfg.timeout

    @property
    def is_leader(self) -> bool:
        return self._leader and time.monotonic() - self._last_ok < self.lease

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------ lifecycle

    def start(self, on_elected: Callback, on_lost: Callback) -> None:
        self._on_elected, self._on_lost = on_elected, on_lost
        self._halt.clear()
        self._thread = threading.Thread(target=self._loop, name="sre-leader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=self.cfg.timeout + self.cfg.heartbeat + 5)
        with self._mu:
            conn, self._conn = self._conn, None
            was_leader, self._leader = self._leader, False
        if conn is not None:
            if was_leader:
                from sqlalchemy import text

                # Closing the connection would release it too; unlocking first says so in the server's log.
                with contextlib.suppress(Exception):
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                log.info("leadership released (%s stopping)", replica_id())
                LEADER_CHANGES.labels("released").inc()
            self._close(conn)
        if self._engine is not None:
            self._engine.dispose()

    # ------------------------------------------------------------ the loop

    def _loop(self) -> None:
        while not self._halt.is_set():
            if self._leader:
                self._beat()
                wait = self.cfg.heartbeat
            else:
                if time.monotonic() >= self._not_before:
                    self._try_acquire()
                wait = self.cfg.heartbeat if self._leader else self.cfg.retry
            self._halt.wait(wait)

    def _engine_once(self) -> Engine:
        if self._engine is None:
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            timeout_ms = int(self.cfg.timeout * 1000)
            keepalive = max(1, math.ceil(self.cfg.timeout / 2))
            # Server side: drop the backend (and the lock) of a leader that vanished without closing
            # its socket within about idle + 3 x interval. Client side: a call on a dead link fails
            # after `timeout` instead of the kernel's minutes.
            options = (f"-c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms} "
                       f"-c idle_in_transaction_session_timeout={timeout_ms} "
                       f"-c tcp_keepalives_idle={keepalive} -c tcp_keepalives_interval=1 "
                       f"-c tcp_keepalives_count=3 -c tcp_user_timeout={timeout_ms}")
            self._engine = create_engine(
                self.url, poolclass=NullPool, isolation_level="AUTOCOMMIT",
                connect_args={
                    "connect_timeout": max(2, math.ceil(self.cfg.timeout)),
                    "application_name": f"sre-leader:{replica_id()}"[:63],
                    "options": options,
                    "keepalives": 1, "keepalives_idle": keepalive, "keepalives_interval": 1,
                    "keepalives_count": 3, "tcp_user_timeout": timeout_ms,
                },
            )
        return self._engine

    def _try_acquire(self) -> None:
        from sqlalchemy import text

        try:
            if self._conn is None:
                self._conn = self._engine_once().connect()
            got = bool(self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
        except Exception as exc:
            log.warning("standby cannot reach the state store to try leadership: %s", _brief(exc))
            conn, self._conn = self._conn, None
            if conn is not None:
                self._close(conn)
            return
        if not got:
            return  # keep the connection for the next try
        with self._mu:
            self._leader = True
            self._last_ok = time.monotonic()
        LEADER_CHANGES.labels("acquired").inc()
        log.info("leadership acquired by %s", replica_id(), extra=log_fields(replica=replica_id()))
        try:
            self._on_elected()
        except Exception as exc:
            log.exception("could not start leading; giving leadership up")
            self._lose(f"start failed: {_brief(exc)}")

    def _beat(self) -> None:
        from sqlalchemy import text

        error: BaseException | None = None
        with self._mu:
            if self._conn is None:
                return
            try:
                self._conn.execute(text("SELECT 1"))
                self._last_ok = time.monotonic()
            except Exception as exc:
                error = exc
        if error is not None:
            self._lose(f"lock connection failed: {_brief(error)}")

    def _lose(self, reason: str) -> None:
        with self._mu:
            if not self._leader:
                return
            self._leader = False
            conn, self._conn = self._conn, None
            # A replica that just lost its link lets the standbys that did not go first.
            self._not_before = time.monotonic() + 3 * self.cfg.retry
        LEADER_CHANGES.labels("lost").inc()
        log.warning("leadership lost by %s: %s", replica_id(), reason, extra=log_fields(replica=replica_id()))
        try:
            self._on_lost()
        finally:
            if conn is not None:
                self._close(conn)

    @staticmethod
    def _close(conn: Connection) -> None:
        # invalidate(): close the socket without trying a rollback on a link that may be dead.
        with contextlib.suppress(Exception):
            conn.invalidate()
        with contextlib.suppress(Exception):
            conn.close()

    # ------------------------------------------------------------ claims

    def claim(self, job: str, slot_ms: int) -> bool:
        error: BaseException | None = None
        with self._mu:
            if not (self._leader and self._conn is not None) or time.monotonic() - self._last_ok >= self.lease:
                return False
            try:
                res = self._conn.execute(CLAIM_SQL, claim_params(job, slot_ms))
                self._last_ok = time.monotonic()
                return int(getattr(res, "rowcount", 0)) == 1
            except Exception as exc:
                error = exc
        self._lose(f"claim of {job} failed: {_brief(error)}")
        return False


def _brief(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    orig = getattr(exc, "orig", None) or exc
    first = str(orig).strip().splitlines()
    return f"{orig.__class__.__name__}: {first[0] if first else ''}"


def leadership_for(cfg: SreConfig, store: Store) -> Leadership:
    if store.dialect == "sqlite":
        return SoleReplica(store)
    return AdvisoryLockLeadership(store.url, cfg.leader)
