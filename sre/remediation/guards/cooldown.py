"""cooldown: the target was acted on less than `guards.cooldown` ago."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import and_, select

from sre.remediation.guards.base import Guard, Proposal
from sre.store.remediation import Remediation

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement
    from sqlalchemy.orm import Session


def acted_on(p: Proposal) -> ColumnElement[bool]:
    """Past actions on the proposal's target that count against it."""
    counted = and_(Remediation.target == p.target, Remediation.acted.is_(True))
    if not p.dry:  # dry runs count only against other dry runs: a rehearsal never blocks a real fix
        counted = and_(counted, Remediation.dry_run.is_(False))
    return counted


class Cooldown(Guard):
    name = "cooldown"

    def check(self, s: Session, p: Proposal) -> str | None:
        cooldown = p.guards.cooldown
        last = s.execute(select(Remediation.id, Remediation.created_at).where(acted_on(p))
                         .order_by(Remediation.created_at.desc()).limit(1)).first()
        if last is None or last.created_at <= p.now - timedelta(seconds=cooldown):
            return None
        until = last.created_at + timedelta(seconds=cooldown)
        return (f"target {p.target} was acted on by remediation #{last.id} at {last.created_at:%H:%M:%S}Z; "
                f"cooldown {cooldown:g}s until {until:%H:%M:%S}Z")
