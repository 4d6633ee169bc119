"""Job runs: list, show, and run a job now."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from sqlalchemy import select

from sre.api.auth import Role, require
from sre.api.models import RunDetail, RunOut
from sre.store.runs import CheckRow, Run

router = APIRouter(prefix="/api", tags=["runs"], dependencies=[require(Role.read)])


def run_dict(r: Run) -> dict[str, Any]:
    return {"id": r.id, "kind": r.kind, "target": r.target, "trigger": r.trigger, "status": r.status,
            "started": r.started.isoformat() if r.started else None,
            "finished": r.finished.isoformat() if r.finished else None, "summary": r.summary, "host": r.host}


@router.get("/runs", response_model=list[RunOut])
def list_runs(request: Request, kind: str | None = None, limit: int = Query(50, ge=1, le=1000)) -> list[dict[str, Any]]:
    """Job runs, newest first (optionally of one job)."""
    with request.app.state.store.session() as s:
        q = select(Run).order_by(Run.id.desc()).limit(limit)
        if kind:
            q = q.where(Run.kind == kind)
        return [run_dict(r) for r in s.scalars(q)]


@router.get("/runs/{run_id}", response_model=RunDetail)
def show_run(request: Request, run_id: int) -> dict[str, Any]:
    """One run with the results it stored."""
    with request.app.state.store.session() as s:
        r = s.get(Run, run_id)
        if r is None:
            raise HTTPException(404, f"no run {run_id}")
        out = run_dict(r)
        out["results"] = [
            {"check": c.check, "target": c.target, "status": c.status, "observed": c.observed,
             "message": c.message, "at": c.at.isoformat()}
            for c in s.scalars(select(CheckRow).where(CheckRow.run_id == run_id).order_by(CheckRow.id))
        ]
        return out
