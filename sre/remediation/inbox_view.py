"""Reading the alert inbox: what the webhook stored, by processing state (`sre remediation inbox`,
`GET /api/inbox`). The writer on the webhook's hot path is `inbox.py`."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field
from sqlalchemy import select

from sre.store.remediation import InboxRow

if TYPE_CHECKING:
    from sre.store import Store


class InboxAlert(BaseModel):
    """One alert as the webhook stored it, and where its processing stands."""

    id: int
    received_at: datetime
    alertname: str
    status: str = Field(description="firing or resolved, as Alertmanager sent it.")
    state: str = Field(description="pending (not yet routed), claimed (a worker holds it) or done.")
    outcome: str | None = Field(None, description="no_runbook, no_automation, resolved, decided or error, once done.")
    remediation_id: int | None = Field(None, description="The decision this alert led to (see /api/remediations).")
    fingerprint: str
    starts_at: datetime
    ends_at: datetime | None = None
    labels: dict[str, str]
    annotations: dict[str, str]
    attempts: int = 0


INBOX_STATES = ("pending", "claimed", "done")


def read_inbox(store: Store, *, state: str | None = None, status: str | None = None, alertname: str | None = None,
               limit: int = 50) -> list[InboxAlert]:
    """The stored alerts, newest first, by processing state, alert status and name."""
    q = select(InboxRow).order_by(InboxRow.id.desc()).limit(limit)
    if state is not None:
        q = q.where(InboxRow.state == state)
    if status is not None:
        q = q.where(InboxRow.status == status)
    if alertname is not None:
        q = q.where(InboxRow.alertname == alertname)
    with store.session() as s:
        return [InboxAlert.model_validate(row, from_attributes=True) for row in s.scalars(q)]
