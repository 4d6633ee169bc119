"""Alertmanager silences: one per remediation, so nobody is paged for an alert being fixed.

The silence matches the alert's labels exactly, lasts for the action plus its verification
window, is created by `sre` and carries the remediation's audit id in its comment. It is expired
when the alert resolves or the verification fails (a person must then hear about it).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import Field

from sre.adapters.alertmanager import AlertmanagerClient, AlertmanagerError, Matcher
from sre.config import Seconds
from sre.errors import UnreachableError
from sre.remediation.actions import Action, ActionContext, ActionError, Params

if TYPE_CHECKING:
    from sre.config import SreConfig

CREATED_BY = "sre"


def _client(cfg: SreConfig) -> AlertmanagerClient:
    if cfg.endpoints.alertmanager is None:
        raise ActionError("no Alertmanager configured (endpoints.alertmanager)")
    return AlertmanagerClient.from_config(cfg)


def create_silence(cfg: SreConfig, labels: dict[str, str], seconds: float, comment: str) -> str:
    """Silence exactly this label set for `seconds`; returns the silence id."""
    now = datetime.now(UTC)
    matchers = [Matcher(k, v) for k, v in sorted(labels.items())]
    try:
        with _client(cfg) as am:
            return am.create_silence(matchers, now, now + timedelta(seconds=max(60.0, seconds)), CREATED_BY,
                                     comment)
    except UnreachableError as exc:
        raise ActionError(str(exc)) from None
    except AlertmanagerError as exc:
        raise ActionError(f"Alertmanager refused the silence: {exc}") from None


def expire_silence(cfg: SreConfig, silence_id: str) -> bool:
    """Expire a silence; True when Alertmanager expired it now, False when it was gone or already expired."""
    try:
        with _client(cfg) as am:
            return am.expire_silence(silence_id)
    except (UnreachableError, AlertmanagerError) as exc:
        raise ActionError(str(exc)) from None


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
