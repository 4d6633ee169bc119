"""Alertmanager silences: one per remediation, so nobody is paged for an alert being fixed.

The silence matches the alert's labels exactly, lasts for the action plus its verification
window, is created by `sre` and carries the remediation's audit id in its comment. It is expired
when the alert resolves or the verification fails (a person must then hear about it).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import Field

from sre.config import Seconds
from sre.remediation.actions import Action, ActionContext, ActionError, Params

if TYPE_CHECKING:
    from sre.config import SreConfig

CREATED_BY = "sre"


def _base(cfg: SreConfig) -> tuple[str, float]:
    ep = cfg.endpoints.alertmanager
    if ep is None:
        raise ActionError("no Alertmanager configured (endpoints.alertmanager)")
    return ep.url.rstrip("/"), min(ep.timeout, 10.0)


def _time(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def create_silence(cfg: SreConfig, labels: dict[str, str], seconds: float, comment: str) -> str:
    """Silence exactly this label set for `seconds`; returns the silence id."""
    url, timeout = _base(cfg)
    now = datetime.now(UTC)
    body = {
        "matchers": [{"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in sorted(labels.items())],
        "startsAt": _time(now), "endsAt": _time(now + timedelta(seconds=max(60.0, seconds))),
        "createdBy": CREATED_BY, "comment": comment,
    }
    try:
        resp = httpx.post(f"{url}/api/v2/silences", json=body, timeout=timeout)
    except httpx.HTTPError as exc:
        raise ActionError(f"Alertmanager at {url} is unreachable: {exc.__class__.__name__}") from None
    if resp.status_code != 200:
        raise ActionError(f"Alertmanager refused the silence: {resp.status_code} {resp.text.strip()[:200]}")
    return str(resp.json()["silenceID"])


def expire_silence(cfg: SreConfig, silence_id: str) -> bool:
    """Expire a silence; True when Alertmanager expired it now, False when it was gone or already expired."""
    url, timeout = _base(cfg)
    try:
        resp = httpx.delete(f"{url}/api/v2/silence/{silence_id}", timeout=timeout)
    except httpx.HTTPError as exc:
        raise ActionError(f"Alertmanager at {url} is unreachable: {exc.__class__.__name__}") from None
    if resp.status_code == 200:
        return True
    if resp.status_code in (404, 500) and ("not found" in resp.text or "already expired" in resp.text):
        return False
    raise ActionError(f"Alertmanager refused to expire silence {silence_id}: {resp.status_code} "
                      f"{resp.text.strip()[:200]}")


class SilenceParams(Params):
    duration: Seconds | None = Field(None, gt=0, description="Default: the remediation plus verification window.")
    comment: str = ""


class Silence(Action):
    """Silence the alert and do nothing else (for alerts a person handles on their own schedule)."""

    name = "alertmanager.silence"
    per_alert = True
    params_model = SilenceParams

    def target(self, p: SilenceParams) -> str:
        return "alertmanager/silence"

    def describe(self, p: SilenceParams) -> str:
        how_long = f"{p.duration:g}s" if p.duration else "the remediation window"
        return f"would silence the alert (exactly its labels) for {how_long}, created by {CREATED_BY}"

    def run(self, p: SilenceParams, ctx: ActionContext) -> dict[str, Any]:
        seconds = p.duration or ctx.silence_seconds
        comment = f"sre remediation #{ctx.remediation_id}: {ctx.alertname}" + (f" ({p.comment})" if p.comment else "")
        return {"silence_id": create_silence(ctx.cfg, ctx.labels, seconds, comment), "seconds": seconds}
