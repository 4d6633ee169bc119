"""Escalation to a person: a JSON POST to `remediation.escalation_webhook` (a chat or paging hook).

`notify` as a runbook's action escalates and does nothing else, for alerts that must never be
automated; every failed remediation, failed verification and open circuit breaker escalates the
same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
from pydantic import Field

from sre.remediation.actions import Action, ActionContext, ActionError, Params

if TYPE_CHECKING:
    from sre.config import SreConfig

TIMEOUT = 10.0


def escalate(cfg: SreConfig, message: dict[str, Any]) -> str:
    """Post `message` to the escalation webhook; returns what happened, raises ActionError on failure."""
    url = cfg.remediation.escalation_webhook
    if not url:
        raise ActionError("no escalation webhook configured (remediation.escalation_webhook)")
    try:
        resp = httpx.post(url, json=message, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        raise ActionError(f"escalation webhook unreachable: {exc.__class__.__name__}") from None
    if resp.status_code >= 300:
        raise ActionError(f"escalation webhook answered {resp.status_code}")
    return f"escalation webhook answered {resp.status_code}"


class NotifyParams(Params):
    message: str = Field("", description="Added to the escalation message.")


class Notify(Action):
    name = "notify"
    per_alert = True
    params_model = NotifyParams

    def target(self, p: NotifyParams) -> str:
        return "notify"

    def describe(self, p: NotifyParams) -> str:
        return "would escalate to the escalation webhook (no automated change)"

    def run(self, p: NotifyParams, ctx: ActionContext) -> dict[str, Any]:
        sent = escalate(ctx.cfg, {"kind": "notify", "remediation_id": ctx.remediation_id, "alertname": ctx.alertname,
                                  "labels": ctx.labels, "annotations": ctx.annotations, "message": p.message})
        return {"escalated": sent}
