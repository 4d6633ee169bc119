"""Maintenance windows: pause remediation for everything or one scope, stored or recurring from config.

A stored window (`sre remediation pause`) runs from its start to its end, or until a person
resumes it; it expires by itself, nothing has to close it. A recurring window
(`remediation.maintenance` in sre.yaml: cron + duration, UTC) is open from each fire time for its
duration. The `paused` guard stops every action a window covers and records the window's id
(`#12` or `config:<name>`), so a paused alert is never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from sre.cron import crontab_trigger
from sre.errors import UsageError
from sre.remediation.metrics import PAUSED
from sre.store.base import utcnow
from sre.store.maintenance import MaintenanceWindow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from sre.config import RecurringWindow, SreConfig
    from sre.store import Store

SCOPE_KINDS = ("namespace", "alert", "cluster")


@dataclass(frozen=True)
class Window:
    id: str  # "12" for a stored window, "config:<name>" for a recurring one
    scope_kind: str  # all | namespace | alert | cluster
    scope_value: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    ended_at: datetime | None = None

    @property
    def scope(self) -> str:
        return "all" if self.scope_kind == "all" else f"{self.scope_kind}={self.scope_value}"

    @property
    def label(self) -> str:
        return f"#{self.id}" if self.id.isdigit() else self.id

    def is_open(self, now: datetime) -> bool:
        return self.starts_at <= now < (self.ended_at or self.ends_at)

    def covers(self, alertname: str, labels: dict[str, str], scope: dict[str, str]) -> bool:
        """Whether an action for this alert, in this action scope, falls inside the window."""
        if self.scope_kind == "all":
            return True
        if self.scope_kind == "alert":
            return alertname == self.scope_value
        # The action's own scope first (its rendered target), the alert's labels otherwise.
        return scope.get(self.scope_kind, labels.get(self.scope_kind)) == self.scope_value

    def to_dict(self, now: datetime | None = None) -> dict[str, Any]:
        now = now or utcnow()
        return {"id": self.id, "scope": self.scope, "starts_at": self.starts_at.isoformat(),
                "ends_at": self.ends_at.isoformat(), "ended_at": self.ended_at.isoformat() if self.ended_at else None,
                "reason": self.reason, "created_by": self.created_by, "open": self.is_open(now),
                "recurring": not self.id.isdigit()}


def _from_row(r: MaintenanceWindow) -> Window:
    return Window(str(r.id), r.scope_kind, r.scope_value, r.starts_at, r.ends_at, r.reason, r.created_by, r.ended_at)


def parse_scope(scope: str | None, alert: str | None, cluster: str | None) -> tuple[str, str]:
    """(kind, value) from the CLI's --scope namespace=X | --alert NAME | --cluster C; UsageError otherwise."""
    given = [x for x in (scope, alert, cluster) if x]
    if len(given) > 1:
        raise UsageError("give at most one of --scope, --alert, --cluster")
    if alert:
        return "alert", alert
    if cluster:
        return "cluster", cluster
    if scope:
        kind, sep, value = scope.partition("=")
        if not sep or kind != "namespace" or not value:
            raise UsageError(f"--scope {scope!r}: expected namespace=NAME")
        return kind, value
    return "all", ""


def recurring_open(cfg: SreConfig, now: datetime) -> list[Window]:
    """The recurring windows of the config open at `now`."""
    return [w for rw in cfg.remediation.maintenance if (w := _recurring_at(rw, now)) is not None]


def _recurring_at(rw: RecurringWindow, now: datetime) -> Window | None:
    duration = timedelta(seconds=rw.duration)
    # The scheduler's own cron reading: the same expression means the same times here.
    fire = crontab_trigger(rw.cron).get_next_fire_time(None, now - duration)
    if fire is None or fire > now or fire + duration <= now:  # [fire, fire + duration)
        return None
    start = fire.astimezone(UTC)
    kind, value = next(((k, v) for k, v in (("namespace", rw.namespace), ("alert", rw.alert),
                                           ("cluster", rw.cluster)) if v), ("all", ""))
    return Window(f"config:{rw.name}", kind, value, start, start + duration, rw.reason or f"recurring ({rw.cron})",
                  "config")


def open_windows(s: Session, cfg: SreConfig, now: datetime) -> list[Window]:
    """Every window open at `now`: stored ones (not resumed), then recurring ones."""
    rows = s.scalars(select(MaintenanceWindow).where(
        MaintenanceWindow.starts_at <= now, MaintenanceWindow.ends_at > now,
        MaintenanceWindow.ended_at.is_(None)).order_by(MaintenanceWindow.id))
    return [_from_row(r) for r in rows] + recurring_open(cfg, now)


def listing(store: Store, cfg: SreConfig, *, include_ended: bool = False, now: datetime | None = None) -> list[Window]:
    """Windows open or still to come (and recently ended ones, with include_ended), oldest first."""
    now = now or utcnow()
    with store.session() as s:
        q = select(MaintenanceWindow).order_by(MaintenanceWindow.id)
        if not include_ended:
            q = q.where(MaintenanceWindow.ends_at > now, MaintenanceWindow.ended_at.is_(None))
        stored = [_from_row(r) for r in s.scalars(q)]
    return stored + recurring_open(cfg, now)


def pause(store: Store, *, reason: str, by: str, until: datetime, starts_at: datetime | None = None,
          scope_kind: str = "all", scope_value: str = "") -> Window:
    start = starts_at or utcnow()
    if not reason.strip():
        raise UsageError("a maintenance window needs a reason (--reason)")
    if until <= start:
        raise UsageError(f"the window would end ({until:%Y-%m-%d %H:%M}Z) before it starts")
    if scope_kind not in ("all", *SCOPE_KINDS):
        raise UsageError(f"unknown scope {scope_kind!r}")
    with store.session() as s:
        row = MaintenanceWindow(created_at=utcnow(), created_by=by, reason=reason, scope_kind=scope_kind,
                                scope_value=scope_value, starts_at=start, ends_at=until)
        s.add(row)
        s.flush()
        window = _from_row(row)
    return window


def resume(store: Store, window_id: int, by: str) -> Window:
    """End a stored window now; UsageError if there is none, or it is over already."""
    now = utcnow()
    with store.session() as s:
        row = s.get(MaintenanceWindow, window_id)
        if row is None:
            raise UsageError(f"no maintenance window {window_id}", hint="sre remediation windows lists them")
        if row.ended_at is not None or row.ends_at <= now:
            raise UsageError(f"maintenance window {window_id} is already over")
        row.ended_at, row.ended_by = now, by
        return _from_row(row)


def refresh_gauge(store: Store, cfg: SreConfig) -> list[Window]:
    """Set sre_remediation_paused to the scopes open now; returns the open windows."""
    now = utcnow()
    with store.session() as s:
        windows = open_windows(s, cfg, now)
    PAUSED.clear()
    for w in windows:
        PAUSED.labels(w.scope).set(1)
    return windows

