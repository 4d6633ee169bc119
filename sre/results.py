"""What checks and jobs return: `CheckResult`, `worst` of several statuses, `JobOutcome`, and the
`JobContext` a job runs with; `guarded` turns a check's error into its failing result.

The one foundation module checks, jobs, drills, provisioning and the store's own jobs share, so
that none of them imports another for these shapes. Recording a run is `sre.jobs`'.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from sre.errors import SreError

if TYPE_CHECKING:
    from sre.config import SreConfig
    from sre.store import Store

Status = Literal["ok", "warn", "fail"]
_RANK = {"ok": 0, "warn": 1, "fail": 2}


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class CheckResult:
    """The one shape every check returns; stored, exported as metrics, printed by the CLI."""

    check: str  # e.g. "replication.postgres", "backup.freshness"
    target: str  # e.g. "main/west1"
    status: Status
    observed: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    at: datetime = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "target": self.target,
            "status": self.status,
            "observed": self.observed,
            "message": self.message,
            "at": self.at.isoformat(),
        }


def worst(statuses: list[Status] | list[str]) -> Status:
    """The most severe status of several ('ok' when there are none)."""
    best: Status = "ok"
    for s in statuses:
        if _RANK.get(s, 2) > _RANK[best]:
            best = s  # type: ignore[assignment]
    return best


def guarded(check: str, target: str, fn: Callable[[], list[CheckResult]], *,
            catch: tuple[type[Exception], ...] = (SreError,),
            on_error: Callable[[list[CheckResult]], None] | None = None) -> list[CheckResult]:
    """Run one check; an error of `catch` it raises becomes its one failing result (`on_error` sees
    it), so the checks after it still run. An unexpected error is named by its class."""
    try:
        return fn()
    except catch as exc:
        text = str(exc) if isinstance(exc, SreError) else f"{exc.__class__.__name__}: {exc}"
        failed = [CheckResult(check, target, "fail", {}, text)]
        if on_error is not None:
            on_error(failed)
        return failed


@dataclass
class JobOutcome:
    status: str = "ok"  # ok | warn | fail
    summary: dict[str, Any] = field(default_factory=dict)
    results: list[CheckResult] = field(default_factory=list)


@dataclass
class JobContext:
    cfg: SreConfig
    store: Store
    trigger: str = "manual"
    run_id: int | None = None
    cancelled: Callable[[], bool] = lambda: False  # set on shutdown; long jobs poll it
    slot: datetime | None = None  # the schedule slot a scheduled run fills (sre.scheduler)
