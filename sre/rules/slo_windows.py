"""The error-budget model of burn-rate alerts: each alert window watches a share of the budget.

A window pair (long, short) fires when the error ratio over both is above `factor x budget`,
where the factor is the burn rate that spends `share` of the SLO window's budget in exactly the
long window:

    factor = share x slo_window / long_window

The Google SRE workbook's table (page on 2% of the budget in 1h or 5% in 6h; ticket on 10% in
1d or 10% in 3d) gives 14.4/6/3/1 for a 30-day SLO and 13.44/5.6/2.8/0.93 for a 28-day one.
Those shares are the default only for windows of 28 days and longer: on a 7-day window the same
shares would page on 2% of a small budget, and there is no single convention for short windows,
so an SLO shorter than 28 days must name its shares (inline, or a preset). Presets are the
built-in `workbook`, or a Sloth `AlertWindows` file (`apiVersion: sloth.slok.dev/v1`) under
`alerts/slos/`, named by its `metadata.name` or its file stem.

Factors are computed in decimal arithmetic from durations in seconds, so the same spec always
renders the same thresholds (13.44, never 13.439999999999998).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Context, Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sre.config import format_validation_error

SLOTH_API = "sloth.slok.dev/v1"
DEFAULT_MIN_WINDOW_DAYS = 28  # the workbook's shares are the default from this SLO window up
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_FACTOR_CONTEXT = Context(prec=4)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def seconds(duration: str) -> int:
    """'5m' -> 300. Only whole units: SLO and alert windows are never fractional."""
    m = _DURATION.match(duration.strip())
    if not m:
        raise ValueError(f"expected a duration such as 5m, 1h, 3d or 4w, got {duration!r}")
    return int(m.group(1)) * _UNIT_SECONDS[m.group(2)]


def _duration(value: Any) -> Any:
    if isinstance(value, str):
        seconds(value)
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AlertWindow(_Model):
    """One window pair of a burn alert and the share of the budget it watches."""

    budget_percent: Decimal = Field(gt=0, le=100, description="Percent of the SLO window's budget spent in `long`.")
    long: str = Field(description="The long window, e.g. 1h: the burn is measured over it.")
    short: str = Field(description="The short window, e.g. 5m: confirms the burn is still going on.")

    _check_long = field_validator("long", "short")(_duration)

    @field_validator("budget_percent", mode="before")
    @classmethod
    def _decimal(cls, v: Any) -> Any:
        return Decimal(str(v)) if isinstance(v, int | float) else v

    def factor(self, slo_window: str) -> Decimal:
        """The burn rate that spends `budget_percent` of the budget in the long window.

        Rounded to 4 significant digits: 10% of a 28d budget in 3d is 0.9333..., and a threshold
        of 28 digits helps no one (the rounding moves the share by less than 0.01%).
        """
        exact = self.budget_percent / 100 * Decimal(seconds(slo_window)) / Decimal(seconds(self.long))
        return _FACTOR_CONTEXT.plus(exact).normalize()


class AlertWindows(_Model):
    """The window pairs of the page and the ticket alert (two each, as in the workbook)."""

    page: list[AlertWindow] = Field(min_length=1, max_length=4)
    ticket: list[AlertWindow] = Field(min_length=1, max_length=4)


def _pair(share: str, long: str, short: str) -> AlertWindow:
    return AlertWindow(budget_percent=Decimal(share), long=long, short=short)


WORKBOOK = AlertWindows(
    page=[_pair("2", "1h", "5m"), _pair("5", "6h", "30m")],
    ticket=[_pair("10", "1d", "2h"), _pair("10", "3d", "6h")],
)
BUILTIN_PRESETS: dict[str, AlertWindows] = {"workbook": WORKBOOK}


@dataclass(frozen=True)
class Preset:
    name: str
    windows: AlertWindows
    slo_period: str | None  # the SLO window the preset was made for (None: any)
    source: str  # where it comes from, for messages


def builtin_presets() -> dict[str, Preset]:
    return {name: Preset(name, w, None, "built in") for name, w in BUILTIN_PRESETS.items()}


# ---------------------------------------------------------------- Sloth AlertWindows files


class _SlothWindow(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    errorBudgetPercent: Decimal = Field(gt=0, le=100)
    shortWindow: str
    longWindow: str


class _SlothQuickSlow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quick: _SlothWindow
    slow: _SlothWindow


class _SlothSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sloPeriod: str
    page: _SlothQuickSlow
    ticket: _SlothQuickSlow


class _SlothAlertWindows(BaseModel):
    model_config = ConfigDict(extra="forbid")
    apiVersion: str
    kind: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: _SlothSpec


def is_sloth_alert_windows(data: Any) -> bool:
    return isinstance(data, dict) and data.get("kind") == "AlertWindows" and data.get("apiVersion") == SLOTH_API


def load_sloth_alert_windows(data: Any, stem: str, source: str) -> tuple[Preset | None, list[str]]:
    """A Sloth `AlertWindows` document as a preset; or the problems, each `key: what is wrong`."""
    try:
        doc = _SlothAlertWindows.model_validate(data)
        seconds(doc.spec.sloPeriod)

        def conv(w: _SlothWindow) -> AlertWindow:
            return AlertWindow(budget_percent=w.errorBudgetPercent, long=w.longWindow, short=w.shortWindow)

        windows = AlertWindows(page=[conv(doc.spec.page.quick), conv(doc.spec.page.slow)],
                               ticket=[conv(doc.spec.ticket.quick), conv(doc.spec.ticket.slow)])
    except ValidationError as exc:
        return None, format_validation_error(exc)
    except ValueError as exc:
        return None, [f"spec.sloPeriod: {exc}"]
    name = str(doc.metadata.get("name") or stem)
    return Preset(name, windows, doc.spec.sloPeriod, source), []


# ---------------------------------------------------------------- choosing the windows of an SLO


class NoDefaultShares(ValueError):
    """A short SLO window without named shares: the workbook's would be wrong for it."""


def choose_windows(*, slo_window: str, preset: str | None, windows: AlertWindows | None,
                   presets: dict[str, Preset]) -> AlertWindows:
    """The alert windows of one SLO: inline shares, a named preset, or the workbook's (28d and up)."""
    if windows is not None:
        return windows
    if preset is not None:
        found = presets.get(preset)
        if found is None:
            known = ", ".join(sorted(presets))
            raise ValueError(f"alerting.preset: no preset {preset!r} (known: {known}; a Sloth AlertWindows "
                             "file under alerts/slos/ adds one)")
        if found.slo_period is not None and seconds(found.slo_period) != seconds(slo_window):
            raise ValueError(f"alerting.preset: {preset!r} ({found.source}) is made for a {found.slo_period} "
                             f"SLO window, this SLO's window is {slo_window}")
        return found.windows
    if seconds(slo_window) < DEFAULT_MIN_WINDOW_DAYS * 86400:
        factors = "/".join(decimal_text(w.factor(slo_window)) for w in (*WORKBOOK.page, *WORKBOOK.ticket))
        raise NoDefaultShares(
            f"window {slo_window} is shorter than {DEFAULT_MIN_WINDOW_DAYS}d, so there is no default: the "
            f"workbook's budget shares (2% in 1h, 5% in 6h, 10% in 1d, 10% in 3d) would give burn factors "
            f"{factors} and page on 2% of a small budget; name the shares (alerting.windows) or a preset "
            "(alerting.preset, e.g. a Sloth AlertWindows file for this window)")
    return WORKBOOK


def decimal_text(d: Decimal) -> str:
    """A decimal as PromQL reads it, without float noise (0.0144, not 0.014400000000000001)."""
    text = format(d.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
