"""`POST /webhook/alertmanager`: Alertmanager's webhook, stored in the inbox before the answer.

401 without valid credentials, 413 over the body limit (checked on Content-Length and while
reading, before any parsing), 422 naming the failing field, 200 once every alert of the group is
committed, 503 only when storing failed (Alertmanager retries 5xx, never 4xx).
The body is read and validated by hand (pydantic from bytes) rather than through a FastAPI body
parameter: it is the hot path of an alert storm (bench/webhook_storm.py).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from sre.api.auth import ROLE_KEY, Credentials, Role
from sre.content import runbooks_dir
from sre.remediation import metrics as m
from sre.remediation.inbox import InboxWriter
from sre.remediation.payload import WebhookPayload, find_nul
from sre.remediation.routing import shared_runbooks
from sre.telemetry import get_logger

router = APIRouter(tags=["webhook"])
log = get_logger("sre.api.webhook")

# The role is checked inline rather than by a dependency: this is the hot path of an alert storm.
_OPENAPI = {ROLE_KEY: Role.webhook.value, "requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "description": "Alertmanager webhook payload, version 4 (unknown fields are ignored).",
    "required": ["version", "status", "alerts"]}}}}}


class _TooLarge(Exception):
    pass


def _parts(request: Request) -> tuple[Credentials, InboxWriter, int]:
    state = request.app.state
    parts: tuple[Credentials, InboxWriter, int] | None = getattr(state, "webhook_parts", None)
    if parts is None:
        cfg = state.cfg
        limit = cfg.webhook.max_body_bytes if cfg.webhook is not None else 1 << 20
        runbooks = shared_runbooks(runbooks_dir(cfg))
        runbooks.refresh()  # read them now, not on the first alert
        parts = (state.credentials,
                 InboxWriter(state.store, unrouted=runbooks.unrouted), limit)
        state.webhook_parts = parts
    return parts


async def _read_limited(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(status: int, body: dict[str, Any], t0: float, headers: dict[str, str] | None = None) -> Response:
    m.DURATION_BY_CODE[status].observe(time.perf_counter() - t0)
    return JSONResponse(body, status_code=status, headers=headers)


@router.post("/webhook/alertmanager", openapi_extra=_OPENAPI,
             responses={401: {}, 413: {}, 422: {}, 503: {"description": "storing failed: retry"}})
async def receive(request: Request) -> Response:
    """Store every alert of an Alertmanager notification in the inbox, then answer."""
    t0 = time.perf_counter()
    auth, writer, limit = _parts(request)
    if not auth.check(Role.webhook, request.headers.get("authorization")):
        return _answer(401, {"detail": "missing or wrong credentials"}, t0,
                       {"WWW-Authenticate": auth.challenge(Role.webhook)})
    declared = request.headers.get("content-length")
    too_large = {"detail": f"request body larger than {limit} bytes"}
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return _answer(413, too_large, t0, {"Connection": "close"})
    try:
        body = await _read_limited(request, limit)
    except _TooLarge:
        return _answer(413, too_large, t0, {"Connection": "close"})
    try:
        payload = WebhookPayload.model_validate_json(body)
    except ValidationError as exc:
        errors = [{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                  for e in exc.errors(include_url=False, include_input=False)]
        return _answer(422, {"detail": errors}, t0)
    if b"\\u0000" in body:
        loc = find_nul(payload)
        if loc is not None:
            return _answer(422, {"detail": [{"loc": ["body", *loc], "msg": "NUL characters are not accepted",
                                             "type": "string_nul"}]}, t0)
    alerts = payload.alerts
    try:
        await writer.write(payload)
    except Exception as exc:
        m.ALERTS_FAILED.inc(len(alerts))
        log.error("webhook: %d alert(s) not stored, answering 503 so Alertmanager retries: %s",
                  len(alerts), exc.__class__.__name__)
        return _answer(503, {"detail": "the alerts could not be stored; retry"}, t0, {"Retry-After": "5"})
    firing = sum(1 for a in alerts if a.status == "firing")
    if firing:
        m.ALERTS_FIRING.inc(firing)
    if len(alerts) - firing:
        m.ALERTS_RESOLVED.inc(len(alerts) - firing)
    if payload.truncatedAlerts:
        m.ALERTS_TRUNCATED.inc(payload.truncatedAlerts)
        log.warning("webhook: Alertmanager truncated %d alert(s) of group %s (max_alerts)",
                    payload.truncatedAlerts, payload.groupKey)
    return _answer(200, {"status": "stored", "alerts": len(alerts)}, t0)
