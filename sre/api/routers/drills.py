"""Failover drill reports: list, one report (JSON), its Markdown and its timeline chart."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse, Response

from sre.api.auth import Role, require
from sre.api.models import DrillDetail, DrillOut
from sre.drills.history import get_from, list_from

router = APIRouter(prefix="/api", tags=["drills"], dependencies=[require(Role.read)])


@router.get("/drills", response_model=list[DrillOut])
def list_drills(request: Request, status: str | None = None,
                limit: int = Query(50, ge=1, le=1000)) -> list[dict[str, Any]]:
    """Drills, newest first, with their measured RTO and RPO."""
    return list_from(request.app.state.store, limit, status)


def _get(request: Request, drill_id: int) -> dict[str, Any]:
    row = get_from(request.app.state.store, drill_id)
    if row is None:
        raise HTTPException(404, f"no drill {drill_id}")
    return row


@router.get("/drills/{drill_id}", response_model=DrillDetail)
def show_drill(request: Request, drill_id: int) -> dict[str, Any]:
    """The full report once the drill finished; while it runs, its progress so far."""
    row = _get(request, drill_id)
    row.pop("png", None)
    row.pop("markdown", None)
    return row


@router.get("/drills/{drill_id}/report.md", response_class=PlainTextResponse)
def drill_markdown(request: Request, drill_id: int) -> PlainTextResponse:
    """The report as Markdown."""
    row = _get(request, drill_id)
    if not row["markdown"]:
        raise HTTPException(404, f"drill {drill_id} has no report yet")
    return PlainTextResponse(row["markdown"], media_type="text/markdown; charset=utf-8")


@router.get("/drills/{drill_id}/timeline.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}}})
def drill_png(request: Request, drill_id: int) -> Response:
    """The timeline chart (PNG)."""
    row = _get(request, drill_id)
    if not row["png"]:
        raise HTTPException(404, f"drill {drill_id} has no timeline chart")
    return Response(row["png"], media_type="image/png")
