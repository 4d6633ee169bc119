"""The split-brain probe: proof that no two nodes accepted writes at the same time.

During a drill, one thread per node writes a row straight to that node (its own DSN, never the
DNS record or a multi-host DSN, so the HA layer's routing cannot hide a second primary) every
interval, and records when the node accepted a write and when it refused or did not answer.
Consecutive acceptances make an acceptance window per node; two windows of different nodes that
intersect are a split brain: for that span, both nodes took writes an application could have
sent to either. A normal switch never overlaps: the old primary stops accepting (fenced, demoted
or lost) before the new one is promoted.

The probe's table lives on whichever node took the write; rows are not compared across nodes
(the canary proves what survived); the windows alone answer "two primaries?".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sre.drills.steps import iso
from sre.telemetry import get_logger

log = get_logger("sre.drills.splitbrain")

TABLE = "sre_drill_probe"


@dataclass
class Window:
    node: str
    start: float  # time.time() of the first accepted write
    end: float  # time.time() of the last accepted write before a refusal
    writes: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "start": iso(self.start), "end": iso(self.end), "start_ts": self.start,
                "end_ts": self.end, "writes": self.writes}


@dataclass
class Overlap:
    nodes: tuple[str, str]
    start: float
    end: float

    def to_dict(self) -> dict[str, Any]:
        return {"nodes": list(self.nodes), "start": iso(self.start), "end": iso(self.end), "start_ts": self.start,
                "end_ts": self.end, "seconds": round(self.end - self.start, 4)}


def overlaps(windows: list[Window]) -> list[Overlap]:
    """Every pair of windows of different nodes that share an instant (pure function)."""
    found = []
    ordered = sorted(windows, key=lambda w: w.start)
    for i, a in enumerate(ordered):
        for b in ordered[i + 1:]:
            if b.start > a.end:
                break
            if a.node != b.node:
                found.append(Overlap(tuple(sorted((a.node, b.node))), b.start, min(a.end, b.end)))  # type: ignore[arg-type]
    return found


@dataclass
class _NodeProbe:
    name: str
    dsn: Callable[[], str]
    windows: list[Window] = field(default_factory=list)
    attempts: int = 0
    accepted: int = 0
    open: bool = False  # the last attempt was accepted: a window is open
    first_accept: float | None = None
    last_error: str | None = None


class SplitBrainProbe:
    """start() / stop(); `split_brain()` answers while it runs; `section()` for the report."""

    def __init__(self, nodes: dict[str, Callable[[], str]], drill_id: int, interval: float = 0.05) -> None:
        self.interval = interval
        self.drill_id = drill_id
        self.nodes = {name: _NodeProbe(name, dsn) for name, dsn in nodes.items()}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started: float | None = None
        self.stopped: float | None = None

    def start(self) -> None:
        self.started = time.time()
        for probe in self.nodes.values():
            t = threading.Thread(target=self._loop, args=(probe,), name=f"sre-splitbrain-{probe.name}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
        self.stopped = time.time()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    # ------------------------------------------------------------------ reading

    def windows(self) -> list[Window]:
        with self._lock:
            return [Window(w.node, w.start, w.end, w.writes) for p in self.nodes.values() for w in p.windows]

    def split_brain(self) -> list[Overlap]:
        return overlaps(self.windows())

    def first_accept(self, node: str, after: float) -> float | None:
        """When `node` first accepted a write after `after` (a promoted node's first write)."""
        with self._lock:
            starts = [w.start for w in self.nodes[node].windows if w.start > after]
        return min(starts) if starts else None

    def section(self) -> dict[str, Any]:
        found = self.split_brain()
        with self._lock:
            per_node = {p.name: {"attempts": p.attempts, "accepted": p.accepted, "last_error": p.last_error}
                        for p in self.nodes.values()}
        return {"verdict": "fail" if found else "pass", "interval_seconds": self.interval,
                "windows": [w.to_dict() for w in self.windows()], "overlaps": [o.to_dict() for o in found],
                "nodes": per_node,
                "message": ("split-brain: " + "; ".join(f"{' and '.join(o.nodes)} both accepted writes for "
                                                         f"{o.end - o.start:.3f} s from {iso(o.start)}" for o in found))
                if found else "never two nodes accepting writes at once"}

    # ------------------------------------------------------------------ the threads

    def _record(self, probe: _NodeProbe, accepted_at: float | None, error: str | None) -> None:
        with self._lock:
            probe.attempts += 1
            if accepted_at is None:
                probe.open = False
                probe.last_error = error
                return
            probe.accepted += 1
            if probe.open and probe.windows:
                probe.windows[-1].end = accepted_at
                probe.windows[-1].writes += 1
            else:
                probe.windows.append(Window(probe.name, accepted_at, accepted_at))
            probe.open = True

    def _loop(self, probe: _NodeProbe) -> None:
        import psycopg

        conn: psycopg.Connection[Any] | None = None
        n = 0
        insert = f"INSERT INTO {TABLE} (drill_id, node, n) VALUES (%s, %s, %s)"
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                if conn is None:
                    conn = psycopg.connect(probe.dsn(), autocommit=True)
                n += 1
                # The time is taken before the write is sent: a window starts no later than the node's
                # first acceptance, and ends no earlier than its last.
                sent = time.time()
                conn.execute(insert, (self.drill_id, probe.name, n))
                self._record(probe, sent, None)
            except Exception as exc:
                self._record(probe, None, f"{exc.__class__.__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:
                        pass
                conn = None
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - t0)))
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass


def probe_dsn(dsn: str) -> str:
    """A node's own DSN for the probe: fail fast, name the probe, never pick another host."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    params.pop("target_session_attrs", None)
    params.update(application_name="sre-drill-probe", connect_timeout="2")
    params.setdefault("tcp_user_timeout", "2000")
    return str(make_conninfo(**params))


def create_table(dsn: str) -> None:
    """On the primary (it replicates to the standbys)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (drill_id bigint NOT NULL, node text NOT NULL, "
                     "n bigint NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())")
        conn.execute(f"DELETE FROM {TABLE} WHERE at < now() - interval '7 days'")
