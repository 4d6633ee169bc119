"""Prometheus exposition of the default registry."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sre.api.auth import Role, require

router = APIRouter(tags=["metrics"], dependencies=[require(Role.metrics)])


@router.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
