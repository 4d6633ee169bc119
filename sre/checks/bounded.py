"""Probing many nodes at once, each within its own deadline.

A check asks every node of every cluster in parallel. A node that hangs (a stopped process,
a black-holed host) must cost its own timeout and nothing more: the caller stops waiting at the
deadline, reports the node as not answering, and does not join the stuck thread (which ends by
itself when the adapter's own timeouts fire).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sre.errors import SreError

K = TypeVar("K", bound=Hashable)

MAX_WORKERS = 16


@dataclass
class Probe:
    """What one node answered (`value`) or why it did not (`error`), and how long it took."""

    value: Any = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Task(Generic[K]):
    key: K
    fn: Callable[[], Any]
    timeout: float  # seconds after the start of the batch


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SreError):
        return str(exc)
    return f"{exc.__class__.__name__}: {exc}"


def run_bounded(tasks: list[Task[K]], max_workers: int = MAX_WORKERS) -> dict[K, Probe]:
    """Run every task in parallel; each gets its answer or its error, or a timeout at its deadline."""
    if not tasks:
        return {}
    start = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(tasks))), thread_name_prefix="probe")
    futures: dict[Future[Any], Task[K]] = {}
    finished: dict[Future[Any], float] = {}

    try:
        for t in tasks:
            futures[pool.submit(t.fn)] = t
        pending = set(futures)
        while pending:
            next_deadline = min(start + futures[f].timeout for f in pending)
            done, pending = wait(pending, timeout=max(0.0, next_deadline - time.monotonic()),
                                 return_when=FIRST_COMPLETED)
            now = time.monotonic()
            for f in done:
                finished[f] = now - start
            expired = {f for f in pending if start + futures[f].timeout <= now}
            pending -= expired
    finally:
        # Never join: a thread stuck on a dead node must not hold the others' results.
        pool.shutdown(wait=False, cancel_futures=True)
    out: dict[K, Probe] = {}
    for f, t in futures.items():
        if f in finished:
            exc = f.exception()
            out[t.key] = Probe(value=None if exc else f.result(), error=_describe(exc) if exc else None,
                               seconds=finished[f])
        else:
            out[t.key] = Probe(error=f"did not answer within {t.timeout:g}s", seconds=time.monotonic() - start)
    return out
