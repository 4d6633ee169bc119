"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers. Never depends on outside systems (a restart would not help)."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """Readiness: the state store answers, the scheduler runs (when this replica schedules), not draining."""
    state = request.app.state
    checks: dict[str, bool] = {"store": state.store.ping(), "draining": not state.draining}
    sched = state.scheduler
    if sched is not None:
        checks["scheduler"] = sched.ready if hasattr(sched, "ready") else sched.running
    ok = all(checks.values())
    return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks},
                        status_code=200 if ok else 503)
