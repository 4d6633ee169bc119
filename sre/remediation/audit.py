"""The audit trail: every decision is a `remediations` row, its timeline `remediation_events` rows."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sre.remediation.metrics import REMEDIATIONS
from sre.store.base import utcnow
from sre.store.remediation import Remediation, RemediationEvent

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def add_event(s: Session, remediation_id: int, kind: str, message: str = "", **data: Any) -> None:
    s.add(RemediationEvent(remediation_id=remediation_id, at=utcnow(), kind=kind, message=message, data=data))


def count(action: str, outcome: str) -> None:
    REMEDIATIONS.labels(action, outcome).inc()


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def remediation_dict(r: Remediation, events: list[RemediationEvent] | None = None) -> dict[str, Any]:
    """The API's and the CLI's shape of one decision."""
    out: dict[str, Any] = {
        "id": r.id, "created_at": _iso(r.created_at), "alertname": r.alertname, "fingerprint": r.fingerprint,
        "starts_at": _iso(r.starts_at), "labels": r.labels, "runbook": r.runbook, "action": r.action,
        "target": r.target, "params": r.params, "dry_run": r.dry_run, "outcome": r.outcome, "guard": r.guard,
        "reason": r.reason, "state": r.state, "result": r.result, "silence_id": r.silence_id,
        "verify_query": r.verify_query, "verify_deadline": _iso(r.verify_deadline),
        "started_at": _iso(r.started_at), "finished_at": _iso(r.finished_at), "verified_at": _iso(r.verified_at),
        "resolved_at": _iso(r.resolved_at), "host": r.host,
    }
    if r.started_at and r.finished_at:
        out["action_seconds"] = round((r.finished_at - r.started_at).total_seconds(), 3)
    if events is not None:
        out["events"] = [{"at": _iso(e.at), "kind": e.kind, "message": e.message, "data": e.data} for e in events]
    return out
