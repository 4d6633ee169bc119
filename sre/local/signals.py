"""Signals around work that must finish: SIGTERM interrupting it as Ctrl-C does, and SIGINT/SIGTERM
held off while it cleans up (a second Ctrl-C must not leave a half-dropped scratch server or a
half-undone drill). Only the main thread can change handlers; elsewhere both do nothing."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

HELD = (signal.SIGINT, signal.SIGTERM)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def interruptible(interrupt: Callable[[int], BaseException] = lambda _signum: KeyboardInterrupt()) -> Iterator[None]:
    """SIGTERM (a pod stopping, `kill`) raises `interrupt(signum)`, so the work's `finally` runs."""
    if not _main_thread():
        yield
        return

    def raise_interrupt(signum: int, _frame: FrameType | None) -> None:
        raise interrupt(signum)

    old = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextmanager
def deferred(on_signal: Callable[[int], None] | None = None) -> Iterator[list[int]]:
    """SIGINT/SIGTERM arriving meanwhile are noted (and shown to `on_signal`), not obeyed; yields
    the list of those received. The previous handlers are back when the block ends."""
    received: list[int] = []
    if not _main_thread():
        yield received
        return

    def note(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        if on_signal is not None:
            on_signal(signum)

    old = {s: signal.signal(s, note) for s in HELD}
    try:
        yield received
    finally:
        for s, h in old.items():
            signal.signal(s, h)
