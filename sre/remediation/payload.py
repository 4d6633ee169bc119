"""Alertmanager's webhook payload, version 4, and its mapping to inbox rows.

Unknown fields (`routeLabels`, `notification_reason`, whatever a later Alertmanager adds) are
ignored, not refused: a 4xx is never retried, so refusing would drop alerts. What is validated is
what the inbox stores, so a payload that passes always fits the columns (no 5xx for bad input).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from sre.store.remediation import FINGERPRINT_LEN

_ZERO = timedelta(0)


def _pydantic_utc() -> object:
    from pydantic import TypeAdapter

    return TypeAdapter(datetime).validate_json('"2000-01-01T00:00:00Z"').tzinfo


# pydantic-core gives every "Z" time this one tzinfo object: checking identity is the cheap path.
_PYDANTIC_UTC = _pydantic_utc()


def _utc(value: datetime) -> datetime:
    # Alertmanager always sends an offset; a naive time is read as UTC rather than refused.
    tz = value.tzinfo
    if tz is _PYDANTIC_UTC or tz is UTC:
        return value
    if tz is None:
        return value.replace(tzinfo=UTC)
    if value.utcoffset() == _ZERO:
        return value
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("time out of range once converted to UTC") from None


UtcTime = Annotated[datetime, AfterValidator(_utc)]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Alert(_Lenient):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: UtcTime  # Alertmanager's field names
    endsAt: UtcTime | None = None
    generatorURL: str = ""
    fingerprint: str = Field(min_length=1, max_length=FINGERPRINT_LEN)


class WebhookPayload(_Lenient):
    version: Literal["4"]
    groupKey: str = ""
    truncatedAlerts: int = Field(0, ge=0, le=2**31)
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[Alert]


def find_nul(payload: WebhookPayload) -> list[str | int] | None:
    """Where a NUL character hides (PostgreSQL text refuses it), as a 422 location; None if nowhere.

    Only called when the raw body contains an escaped NUL: JSON has no other way to carry one.
    """
    def in_map(m: dict[str, str]) -> str | None:
        for k, v in m.items():
            if "\x00" in k or "\x00" in v:
                return k.replace("\x00", "\\u0000")
        return None

    for name in ("groupKey", "receiver", "externalURL"):
        if "\x00" in getattr(payload, name):
            return [name]
    for i, a in enumerate(payload.alerts):
        for name in ("fingerprint", "generatorURL"):
            if "\x00" in getattr(a, name):
                return ["alerts", i, name]
        for name in ("labels", "annotations"):
            key = in_map(getattr(a, name))
            if key is not None:
                return ["alerts", i, name, key]
    return None
