"""The global circuit breaker, persisted in the store so every replica and the CLI see one state.

Too many live actions, or too many failures (failed actions, failed verifications), within the
window open it; from then on every alert escalates to a person instead of acting. Only a person
closes it (`sre remediation breaker reset`); counting starts again from the reset.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select

from sre.remediation.metrics import BREAKER_OPEN
from sre.store.base import utcnow
from sre.store.remediation import BreakerRow, Remediation

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from sre.config import BreakerConfig
    from sre.store import Store


@dataclass
class BreakerState:
    open: bool
    opened_at: datetime | None
    reason: str
    reset_at: datetime | None
    reset_by: str | None
    actions_in_window: int = 0
    failures_in_window: int = 0


def _row(s: Session, lock: bool = False) -> BreakerRow:
    q = select(BreakerRow).where(BreakerRow.id == 1)
    if lock and s.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    row = s.scalars(q).first()
    if row is None:  # the migration inserts it; a wiped table gets it back
        row = BreakerRow(id=1, open=False, reason="")
        s.add(row)
        s.flush()
    return row


def counts(s: Session, cfg: BreakerConfig, since_reset: datetime | None, now: datetime | None = None) -> tuple[int, int]:
    """(live actions, failures) inside the window, counted from the last reset at the earliest."""
    now = now or utcnow()
    start = now - timedelta(seconds=cfg.window)
    if since_reset is not None and since_reset > start:
        start = since_reset
    live = (Remediation.acted.is_(True)) & (Remediation.dry_run.is_(False)) & (Remediation.created_at >= start)
    actions = s.scalar(select(func.count()).select_from(Remediation).where(live)) or 0
    failures = s.scalar(select(func.count()).select_from(Remediation).where(
        live, or_(Remediation.outcome == "failed", Remediation.state == "verify_failed"))) or 0
    return int(actions), int(failures)


def status(store: Store, cfg: BreakerConfig) -> BreakerState:
    with store.session() as s:
        row = _row(s)
        actions, failures = counts(s, cfg, row.reset_at)
        BREAKER_OPEN.set(1 if row.open else 0)
        return BreakerState(row.open, row.opened_at, row.reason, row.reset_at, row.reset_by, actions, failures)


def trip_if_needed(s: Session, cfg: BreakerConfig, *, before_action: bool) -> str | None:
    """The reason the breaker is (now) open, or None. Opens it when a threshold is reached.

    Before an action, `max_actions` actions already in the window mean this one would be one too
    many; failures open it as soon as `max_failures` are reached.
    """
    row = _row(s, lock=True)
    if row.open:
        BREAKER_OPEN.set(1)
        return row.reason
    reason = _threshold(s, cfg, row.reset_at, before_action=before_action)
    if reason is None:
        return None
    row.open, row.opened_at, row.reason = True, utcnow(), reason
    BREAKER_OPEN.set(1)
    return reason


def peek(s: Session, cfg: BreakerConfig, *, before_action: bool) -> str | None:
    """What trip_if_needed would answer, without opening anything or writing (replay)."""
    row = s.scalars(select(BreakerRow).where(BreakerRow.id == 1)).first()
    if row is not None and row.open:
        return row.reason
    return _threshold(s, cfg, row.reset_at if row is not None else None, before_action=before_action)


def _threshold(s: Session, cfg: BreakerConfig, reset_at: datetime | None, *, before_action: bool) -> str | None:
    actions, failures = counts(s, cfg, reset_at)
    window = f"{cfg.window:g}s"
    if failures >= cfg.max_failures:
        return f"{failures} failed remediations within {window} (max_failures {cfg.max_failures})"
    if before_action and actions >= cfg.max_actions:
        return f"{actions} actions within {window} already (max_actions {cfg.max_actions})"
    return None


def reset(store: Store, who: str) -> BreakerState:
    with store.session() as s:
        row = _row(s, lock=True)
        row.open, row.reset_at, row.reset_by = False, utcnow(), who
        row.reason = ""
    BREAKER_OPEN.set(0)
    with store.session() as s:
        row = _row(s)
        return BreakerState(row.open, row.opened_at, row.reason, row.reset_at, row.reset_by)
