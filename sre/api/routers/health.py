"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sre.api.models import Healthz
from sre.leader import replica_id

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Healthz)
def healthz() -> dict[str, str]:
    """Liveness: the process answers. Never depends on outside systems (a restart would not help)."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """Readiness: the state store answers, not draining, and the scheduler runs if this replica
    leads (a standby is ready too: every replica serves webhooks). `leader` says which it is."""
    state = request.app.state
    checks: dict[str, bool] = {"store": state.store.ping(), "draining": not state.draining}
    body: dict[str, object] = {"replica": replica_id()}
    sched = state.scheduler
    if sched is not None:
        checks["scheduler"] = sched.ready
        body["leader"] = sched.leader
    ok = all(checks.values())
    return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks, **body},
                        status_code=200 if ok else 503)
