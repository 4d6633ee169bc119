"""max_per_day: the target was acted on `guards.max_per_day` times in the last 24 hours."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from sre.remediation.guards.base import Guard, Proposal
from sre.remediation.guards.cooldown import acted_on
from sre.store.remediation import Remediation

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

DAY = timedelta(days=1)


class MaxPerDay(Guard):
    name = "max_per_day"

    def check(self, s: Session, p: Proposal) -> str | None:
        cap = p.guards.max_per_day
        today = s.scalar(select(func.count()).select_from(Remediation).where(
            acted_on(p), Remediation.created_at > p.now - DAY)) or 0
        if today < cap:
            return None
        return f"target {p.target} was acted on {today} times in 24h (max_per_day {cap})"
