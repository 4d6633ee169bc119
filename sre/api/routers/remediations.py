"""Remediation audit: every decision, newest first, and one decision with its timeline."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from sqlalchemy import select

from sre.api.auth import Role, require
from sre.api.models import BreakerOut, RemediationDetail, RemediationOut, WindowOut
from sre.remediation import breaker, graph, windows
from sre.remediation.audit import remediation_dict
from sre.remediation.inbox_view import InboxAlert, read_inbox
from sre.store.remediation import Remediation, RemediationEvent

router = APIRouter(prefix="/api", tags=["remediation"], dependencies=[require(Role.read)])


@router.get("/remediations", response_model=list[RemediationOut])
def list_remediations(request: Request, limit: int = Query(50, ge=1, le=1000), outcome: str | None = None,
                      alertname: str | None = None, action: str | None = None) -> list[dict[str, Any]]:
    """Every decision, newest first: executed, dry run, stopped by which guard, failed, escalated."""
    with request.app.state.store.session() as s:
        q = select(Remediation).order_by(Remediation.id.desc()).limit(limit)
        if outcome:
            q = q.where(Remediation.outcome == outcome)
        if alertname:
            q = q.where(Remediation.alertname == alertname)
        if action:
            q = q.where(Remediation.action == action)
        return [remediation_dict(r) for r in s.scalars(q)]


@router.get("/inbox", response_model=list[InboxAlert])
def alert_inbox(request: Request, limit: int = Query(50, ge=1, le=1000),
                state: str | None = Query(None, pattern="^(pending|claimed|done)$",
                                          description="pending: not yet routed; claimed: a worker holds it; done."),
                status: str | None = Query(None, pattern="^(firing|resolved)$"),
                alertname: str | None = None) -> list[InboxAlert]:
    """The alerts the webhook stored, newest first, by processing state, status and name."""
    return read_inbox(request.app.state.store, state=state, status=status, alertname=alertname, limit=limit)


@router.get("/remediations/breaker", response_model=BreakerOut)
def breaker_status(request: Request) -> dict[str, Any]:
    """The global circuit breaker: open or closed, and its counts in the window."""
    st = breaker.status(request.app.state.store, request.app.state.cfg.remediation.breaker)
    return {"open": st.open, "opened_at": st.opened_at.isoformat() if st.opened_at else None, "reason": st.reason,
            "reset_at": st.reset_at.isoformat() if st.reset_at else None, "reset_by": st.reset_by,
            "actions_in_window": st.actions_in_window, "failures_in_window": st.failures_in_window}


@router.get("/remediations/windows", response_model=list[WindowOut])
def maintenance_windows(request: Request, include_ended: bool = False) -> list[dict[str, Any]]:
    """Maintenance windows open or planned (and the recurring ones open now)."""
    cfg = request.app.state.cfg
    return [w.to_dict() for w in windows.listing(request.app.state.store, cfg, include_ended=include_ended)]


@router.get("/remediations/{remediation_id}/graph.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}}})
def remediation_graph(request: Request, remediation_id: int) -> Response:
    """The alert's expression and the verification query over the last hour, the action marked (PNG)."""
    with request.app.state.store.session() as s:
        if s.get(Remediation, remediation_id) is None:
            raise HTTPException(404, f"no remediation {remediation_id}")
    try:
        g = graph.render(request.app.state.cfg, request.app.state.store, remediation_id)
    except graph.GraphError as exc:
        raise HTTPException(503, f"no graph: {exc}") from None
    return Response(g.png, media_type="image/png")


@router.get("/remediations/{remediation_id}", response_model=RemediationDetail)
def show_remediation(request: Request, remediation_id: int) -> dict[str, Any]:
    """One decision with its timeline of events."""
    with request.app.state.store.session() as s:
        r = s.get(Remediation, remediation_id)
        if r is None:
            raise HTTPException(404, f"no remediation {remediation_id}")
        events = list(s.scalars(select(RemediationEvent).where(RemediationEvent.remediation_id == remediation_id)
                                .order_by(RemediationEvent.id)))
        return remediation_dict(r, events)
