"""Writing webhook alerts to the inbox: group commit through one writer thread.

Every request hands its rows to the writer and waits for the commit before answering, so an
answered alert is on disk. The writer takes whatever requests are waiting, inserts all their rows
in one transaction and commits once: a storm costs a commit per batch, not
per request, SQLite never sees two writers fighting over its lock, and the event loop keeps
parsing requests while the database works (the drivers release the GIL). A request's alerts
commit together or not at all; when a batch fails, its requests are retried one by one so a
single bad request cannot fail the others.

Rows go to the driver as plain tuples already in the column's storage form (JSON text, and on
SQLite the timestamp text SQLAlchemy itself writes): SQLAlchemy's per-value bind processing cost
more than the insert (docs/decisions/webhook-inbox-group-commit.md). The ORM reads them back as usual.
"""

from __future__ import annotations

import asyncio
import functools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic_core import to_json

from sre.store.base import utcnow
from sre.telemetry import get_logger

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.engine import Connection

    from sre.remediation.payload import WebhookPayload
    from sre.store import Store

log = get_logger("sre.remediation.inbox")

# Alerts per transaction at most: bounds the time one commit holds the SQLite write lock.
MAX_BATCH_ROWS = 5000
CHECKPOINT_EVERY = 1.0  # seconds between WAL checkpoints while the writer runs (SQLite)
SQLITE_AUTOCHECKPOINT = 1000  # SQLite's default, restored on the writer's connection when it leaves


_COLUMNS = ("received_at, fingerprint, status, alertname, starts_at, ends_at, labels, annotations, "
            "generator_url, group_key, receiver, state, processed_at, outcome, attempts")
# SQLite: one multi-row INSERT per chunk rather than executemany. The driver releases the GIL
# around each statement step; executemany steps once per row, so under a storm the writer and the
# event loop traded the GIL a hundred times per group. SQLite allows 32,766 parameters a statement.
_SQLITE_ROW = "(" + ", ".join("?" * _COLUMNS.count(",") + "?") + ")"
SQLITE_CHUNK_ROWS = 32766 // (_COLUMNS.count(",") + 1)


@functools.lru_cache(maxsize=64)
def sqlite_insert_many(n: int) -> str:
    """A multi-row INSERT for `n` rows (cached: a storm repeats a few batch sizes)."""
    return f"INSERT INTO alert_inbox ({_COLUMNS}) VALUES " + ", ".join([_SQLITE_ROW] * n)
# PostgreSQL: COPY, one stream for the whole batch. An INSERT per row cost the server a parse, bind
# and execute each; one INSERT ... SELECT over the group as a JSON array (split by the server)
# saved client time but cost the server more, and the server shares the same cores.
POSTGRES_COPY = f"COPY alert_inbox ({_COLUMNS}) FROM STDIN"


def _no_route(alertname: str) -> str | None:
    return None


def sqlite_time(value: datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime stores for a UTC time (UtcDateTime reads it back as UTC).

    The payload model gives UTC times only (offset zero), so the "+00:00" isoformat appends is cut off.
    """
    return value.isoformat(" ", "microseconds")[:26]


def encode_rows(payload: WebhookPayload, *, sqlite: bool,
                unrouted: Callable[[str], str | None] = _no_route) -> list[tuple[Any, ...]]:
    """One row per alert of the group, as parameters of sqlite_insert_many or a row of POSTGRES_COPY.

    A firing alert's endsAt is Go's zero time (0001-01-01): stored as no end. `unrouted(alertname)`
    names the outcome of a firing alert that needs no decision (no runbook automates it): such a
    row is stored done, and the worker never has to look at it (most alerts of a storm).
    """
    now = utcnow()
    group_key, receiver = payload.groupKey, payload.receiver
    when: Any = sqlite_time(now) if sqlite else now
    # The alerts of a group mostly share their alertname: each is routed once.
    routes: dict[str, str | None] = {}
    rows = []
    for a in payload.alerts:
        name = a.labels.get("alertname", "")
        outcome = None
        if a.status == "firing":
            if name not in routes:
                routes[name] = unrouted(name)
            outcome = routes[name]
        ends = a.endsAt if a.endsAt is not None and a.endsAt.year > 1 else None
        if sqlite:
            starts_v: Any = sqlite_time(a.startsAt)
            ends_v: Any = sqlite_time(ends) if ends is not None else None
        else:
            starts_v, ends_v = a.startsAt, ends
        rows.append((when, a.fingerprint, a.status, name, starts_v, ends_v, to_json(a.labels).decode(),
                     to_json(a.annotations).decode(), a.generatorURL, group_key, receiver,
                     "pending" if outcome is None else "done", None if outcome is None else when, outcome, 0))
    return rows


@dataclass
class _Request:
    rows: list[tuple[Any, ...]]
    alerts: int
    future: asyncio.Future[None] | Future[None]
    loop: asyncio.AbstractEventLoop | None = None


def _settle(results: list[tuple[asyncio.Future[None], BaseException | None]]) -> None:
    for fut, exc in results:
        if fut.done():  # the request was cancelled (client gone): nothing to answer
            continue
        if exc is None:
            fut.set_result(None)
        else:
            fut.set_exception(exc)


class InboxWriter:
    """One writer thread per store, started on first use and gone after `idle_exit` seconds idle.

    Requests of one event-loop iteration travel to the thread together (one queue put, one thread
    wake-up) and are answered together (one call back into the loop): handing each request over
    on its own cost more in GIL hand-offs than the insert.
    """

    def __init__(self, store: Store, *, idle_exit: float = 30.0,
                 unrouted: Callable[[str], str | None] = _no_route) -> None:
        self.store = store
        self.unrouted = unrouted
        self.idle_exit = idle_exit
        self._queue: queue.SimpleQueue[list[_Request]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._tick: list[_Request] = []
        self._conn: Connection | None = None
        self.sqlite = store.dialect == "sqlite"

    async def write(self, payload: WebhookPayload) -> None:
        """Store every alert of `payload` in one transaction; returns once committed, raises if storing failed."""
        if not payload.alerts:
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._tick.append(_Request(encode_rows(payload, sqlite=self.sqlite, unrouted=self.unrouted), len(payload.alerts),
                                   fut, loop))
        if len(self._tick) == 1:
            loop.call_soon(self._hand_over)
        await fut

    def write_sync(self, payload: WebhookPayload, timeout: float | None = 30.0) -> None:
        if payload.alerts:
            fut: Future[None] = Future()
            self._put([_Request(encode_rows(payload, sqlite=self.sqlite, unrouted=self.unrouted), len(payload.alerts),
                                fut)])
            fut.result(timeout)

    def _hand_over(self) -> None:
        batch, self._tick = self._tick, []
        self._put(batch)

    def _put(self, batch: list[_Request]) -> None:
        self._queue.put(batch)
        # Always under the lock: the writer decides to exit under it too, so a batch put while it
        # leaves is never stranded.
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sre-inbox-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        stop_checkpoints = threading.Event()
        if self.sqlite:
            threading.Thread(target=self._checkpoints, args=(stop_checkpoints,), name="sre-inbox-checkpoint",
                             daemon=True).start()
        try:
            self._serve()
        finally:
            stop_checkpoints.set()
            self._close()

    def _serve(self) -> None:
        while True:
            try:
                batch = list(self._queue.get(timeout=self.idle_exit))
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            n = sum(r.alerts for r in batch)
            while n < MAX_BATCH_ROWS:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                batch.extend(more)
                n += sum(r.alerts for r in more)
            self._answer(self._commit(batch))

    def _commit(self, batch: list[_Request]) -> list[tuple[_Request, BaseException | None]]:
        try:
            self._insert([row for r in batch for row in r.rows])
        except Exception as exc:
            if len(batch) == 1:
                log.error("storing %d alert(s) in the inbox failed: %s", batch[0].alerts, exc)
                return [(batch[0], exc)]
            # Isolate the request at fault: the others still commit, each in its own transaction.
            return [pair for r in batch for pair in self._commit([r])]
        return [(r, None) for r in batch]

    def _answer(self, results: list[tuple[_Request, BaseException | None]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[None], BaseException | None]]] = {}
        for req, exc in results:
            if req.loop is None:
                assert isinstance(req.future, Future)
                if exc is None:
                    req.future.set_result(None)
                else:
                    req.future.set_exception(exc)
            else:
                assert isinstance(req.future, asyncio.Future)
                by_loop.setdefault(req.loop, []).append((req.future, exc))
        for loop, pairs in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, pairs)
            except RuntimeError:  # the loop closed meanwhile: nobody waits for these answers
                pass

    def _connection(self) -> Connection:
        """The writer's own connection, kept while the thread lives (no pool checkout per batch).

        On SQLite it never checkpoints the WAL itself: a checkpoint (and its fsync) inside a commit
        stalled every waiting request for tens of milliseconds; `_checkpoints` does it beside.
        """
        if self._conn is None:
            conn = self.store.engine.connect()
            if self.sqlite:
                conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
                conn.commit()
            else:
                # Durable before the answer, whatever the server or role default says (a server
                # with synchronous_commit=off acknowledges commits it may still lose).
                conn.exec_driver_sql("SET synchronous_commit = on")
                conn.commit()
            self._conn = conn
        return self._conn

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if self.sqlite:  # back to SQLite's default before the connection returns to the pool
                conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT}")
                conn.commit()
        finally:
            conn.close()

    def _insert(self, rows: list[tuple[Any, ...]]) -> None:
        conn = self._connection()
        try:
            with conn.begin():
                if self.sqlite:
                    raw_sqlite: Any = conn.connection.driver_connection
                    for i in range(0, len(rows), SQLITE_CHUNK_ROWS):
                        chunk = rows[i:i + SQLITE_CHUNK_ROWS]
                        raw_sqlite.execute(sqlite_insert_many(len(chunk)), [v for row in chunk for v in row])
                else:
                    raw: Any = conn.connection.driver_connection
                    with raw.cursor() as cur, cur.copy(POSTGRES_COPY) as copy:
                        for row in rows:
                            copy.write_row(row)
        except Exception:
            self._close()  # a broken connection is not reused; the next batch opens another
            raise

    def _checkpoints(self, stop: threading.Event) -> None:
        """PASSIVE checkpoints on another connection while the writer lives: they never block it."""
        while not stop.wait(CHECKPOINT_EVERY):
            try:
                with self.store.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception as exc:  # a busy or failing checkpoint is retried next round
                log.debug("inbox WAL checkpoint: %s", exc)

