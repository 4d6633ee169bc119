"""CheckResult: the one shape every check returns; stored, exported as metrics, printed by the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from sre.store.base import utcnow

if TYPE_CHECKING:
    from sre.store import Store

Status = Literal["ok", "warn", "fail"]
_RANK = {"ok": 0, "warn": 1, "fail": 2}


@dataclass
class CheckResult:
    check: str  # e.g. "replication.postgres", "backup.freshness"
    target: str  # e.g. "main/west1"
    status: Status
    observed: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    at: datetime = field(default_factory=utcnow)

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


def store_results(store: Store, results: list[CheckResult], run_id: int | None = None) -> None:
    from sre.store.runs import CheckRow

    with store.session() as s:
        s.add_all(
            CheckRow(run_id=run_id, check=r.check, target=r.target, status=r.status,
                     observed=r.observed, message=r.message, at=r.at)
            for r in results
        )
