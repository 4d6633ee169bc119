"""Steps with undo, and the runner that records them on a UTC timeline.

A drill is an ordered list of steps, each with `run()` and an optional `undo()`. The runner runs
them in order, stops at the first failure (or interruption: SIGINT, SIGTERM, a cancelled job) and
then runs the undos in reverse: the failed step's own undo first, since a step can fail half-way
(undos are written to check what is there and restore only that), then those of the finished
steps. Every run and undo is an event with UTC start, duration, status and detail. An undo that
fails does not stop the others; the outcome lists what was undone and what was not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sre.local import signals
from sre.telemetry import get_logger, log_fields

log = get_logger("sre.drills")

Detail = dict[str, Any]


class Interrupted(BaseException):  # a BaseException, like KeyboardInterrupt, on purpose
    """The drill was asked to stop (signal or cancelled job): undo and report."""


class NotUndone(Exception):
    """An undo that cannot be done automatically; the message says what a person must do."""


@dataclass
class Step:
    name: str  # short and unique within a drill: "fence:east1", "dns", ...
    title: str  # what it does, for people
    run: Callable[[], Detail | None]
    undo: Callable[[], Detail | None] | None = None
    undo_title: str = ""
    phase: str = "failover"


@dataclass
class Event:
    step: str
    title: str
    kind: str  # run | undo
    phase: str
    started: float  # time.time()
    finished: float | None = None
    status: str = "running"  # running | ok | failed | interrupted | not_undone
    detail: Detail = field(default_factory=dict)
    error: str | None = None

    @property
    def duration(self) -> float | None:
        return None if self.finished is None else self.finished - self.started

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step, "title": self.title, "kind": self.kind, "phase": self.phase,
            "started": iso(self.started), "finished": iso(self.finished) if self.finished else None,
            "started_ts": self.started, "duration_seconds": round(self.duration, 4) if self.duration is not None else None,
            "status": self.status, "detail": self.detail, "error": self.error,
        }


@dataclass
class Outcome:
    completed: bool
    failed_step: str | None = None
    error: str | None = None
    interrupted: bool = False
    undone: list[str] = field(default_factory=list)
    not_undone: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"completed": self.completed, "failed_step": self.failed_step, "error": self.error,
                "interrupted": self.interrupted, "undone": self.undone, "not_undone": self.not_undone}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt | Interrupted):
        return str(exc) or "interrupted (SIGINT/SIGTERM or cancelled)"
    text = str(exc).strip()
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


class Runner:
    """Runs lists of steps; one timeline across them (a drill's failover and failback phases)."""

    def __init__(self, on_event: Callable[[Event], None] | None = None,
                 cancelled: Callable[[], bool] | None = None) -> None:
        self.timeline: list[Event] = []
        self.on_event = on_event or (lambda e: None)
        self.cancelled = cancelled or (lambda: False)

    def _emit(self, event: Event) -> None:
        try:
            self.on_event(event)
        except Exception:  # a progress printer must never break a drill
            log.exception("drill event callback failed")

    def record(self, step: Step, kind: str, fn: Callable[[], Detail | None]) -> Detail:
        """Run `fn` as an event of `step`; exceptions propagate after being recorded."""
        ev = Event(step.name, step.undo_title if kind == "undo" else step.title, kind, step.phase, time.time())
        self.timeline.append(ev)
        self._emit(ev)
        try:
            ev.detail = dict(fn() or {})
            ev.status = "ok"
        except NotUndone as exc:
            ev.status, ev.error = "not_undone", str(exc)
            raise
        except BaseException as exc:
            ev.status = "interrupted" if isinstance(exc, KeyboardInterrupt | Interrupted) else "failed"
            ev.error = _describe(exc)
            raise
        finally:
            ev.finished = time.time()
            self._emit(ev)
        return ev.detail

    def run(self, steps: list[Step]) -> Outcome:
        done: list[Step] = []
        for step in steps:
            try:
                if self.cancelled():
                    raise Interrupted()
                done.append(step)  # before run: a step failing half-way still gets its undo
                self.record(step, "run", step.run)
            except BaseException as exc:
                interrupted = isinstance(exc, KeyboardInterrupt | Interrupted)
                if not isinstance(exc, Exception | KeyboardInterrupt | Interrupted):
                    raise  # SystemExit and the like: not ours to handle
                log.warning("drill step %s failed: %s; undoing", step.name, _describe(exc),
                            extra=log_fields(step=step.name))
                outcome = Outcome(False, step.name, _describe(exc), interrupted)
                with deferred_signals():
                    self.undo(reversed(done), outcome)
                return outcome
        return Outcome(True)

    def undo(self, steps: Iterator[Step], outcome: Outcome) -> None:
        for step in steps:
            if step.undo is None:
                continue
            try:
                self.record(step, "undo", step.undo)
                outcome.undone.append(step.name)
            except BaseException as exc:  # every undo gets its chance, whatever the others did
                if not isinstance(exc, Exception | KeyboardInterrupt | Interrupted):
                    raise
                outcome.not_undone.append({"step": step.name, "error": str(exc) if isinstance(exc, NotUndone)
                                           else _describe(exc)})


def deferred_signals() -> AbstractContextManager[list[int]]:
    """While undoing (and writing the report), SIGINT/SIGTERM are noted, not obeyed: a second
    Ctrl-C must not leave a half-undone drill."""
    return signals.deferred(lambda signum: log.warning("signal %d received while undoing: the undo steps "
                                                       "finish first", signum))


def interruptible() -> AbstractContextManager[None]:
    """SIGTERM (a pod stopping, `kill`) interrupts a drill as Ctrl-C does, so it undoes itself."""
    return signals.interruptible()
