"""paused: a maintenance window (stored or recurring) covers this alert or its target."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sre.remediation.guards.base import Guard, Proposal
from sre.remediation.windows import open_windows

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


class Paused(Guard):
    name = "paused"

    def check(self, s: Session, p: Proposal) -> str | None:
        scope = p.scope
        for w in open_windows(s, p.cfg, p.now):
            if w.covers(p.alertname, p.labels, scope):
                return (f"paused by maintenance window {w.label} ({w.scope}, until {w.ends_at:%Y-%m-%d %H:%M}Z, "
                        f"by {w.created_by}: {w.reason})")
        return None
