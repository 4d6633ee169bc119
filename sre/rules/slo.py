"""SLO specs -> recording rules per window and multi-window, multi-burn-rate alerts.

The alerts follow the Google SRE workbook ("Alerting on SLOs"): a page alert and a ticket alert,
each watching window pairs (a long window that measures the burn and a short one that confirms it
is still going on, so the alert stops soon after the burn stops). Each pair is defined by the
share of the error budget it watches (`sre.rules.slo_windows`): the default, for SLO windows of
28 days and longer, is the workbook's (page on 2% in 1h or 5% in 6h, ticket on 10% in 1d or 10%
in 3d).

A spec file (`alerts/slos/<name>.yaml`):

```yaml
service: api
labels: {team: platform}
slos:
  - name: api-availability
    description: Requests answered without a server error.
    objective: 99.9          # percent of good events over the window
    window: 30d
    sli:
      bad: sum(rate(http_request_duration_seconds_count{job="api", status_code=~"5.."}[{{window}}]))
      total: sum(rate(http_request_duration_seconds_count{job="api"}[{{window}}]))
    alerting:                # optional
      preset: workbook       # or windows: {page: [{budget_percent: 2, long: 1h, short: 5m}, ...], ticket: [...]}
      ticket: {enabled: false}
```

The error ratio of the SLO window itself is the mean of the 5-minute ratio over the window
(`sum_over_time / count_over_time`, as Sloth does), never a raw `rate(...[30d])` over the source
series. Output is deterministic: the same spec always renders byte-for-byte the same rules (fixed
window order, thresholds computed in decimal arithmetic, no timestamps).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from sre.config import format_validation_error
from sre.rules.slo_windows import (
    AlertWindow,
    AlertWindows,
    Preset,
    builtin_presets,
    choose_windows,
    seconds,
)
from sre.rules.slo_windows import decimal_text as _num
from sre.rules.tree import Finding, RuleFile, out_name, parse_groups

WINDOW_PLACEHOLDER = re.compile(r"\{\{\s*\.?window\s*\}\}")  # ours, and Sloth's {{.window}}
BASE_WINDOW = "5m"  # the ratio every longer SLO window is averaged from
ERROR_RATIO = "slo:sli_error:ratio_rate"
OBJECTIVE = "slo:objective:ratio"
BUDGET_REMAINING = "slo:error_budget:remaining_ratio"
DEFAULT_SEVERITY = {"page": "page", "ticket": "ticket"}


@dataclass(frozen=True)
class BurnAlert:
    kind: str  # page | ticket
    suffix: str
    for_: str
    pairs: tuple[tuple[str, str, Decimal], ...]  # (long window, short window, burn-rate factor)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Sli(_Model):
    good: str | None = Field(None, description="PromQL rate of good events; write the range as [{{window}}].")
    bad: str | None = Field(None, description="PromQL rate of bad events; write the range as [{{window}}].")
    total: str = Field(description="PromQL rate of all events; write the range as [{{window}}].")

    @model_validator(mode="after")
    def _one_of(self) -> Sli:
        if (self.good is None) == (self.bad is None):
            raise ValueError("give exactly one of good or bad, and total")
        for name in ("good", "bad", "total"):
            expr = getattr(self, name)
            if expr is not None and not WINDOW_PLACEHOLDER.search(expr):
                raise ValueError(f"{name}: write the range as [{{{{window}}}}] so each window gets its own rate")
        return self

    def query(self, name: str, window: str) -> str:
        expr = getattr(self, name)
        assert expr is not None
        return WINDOW_PLACEHOLDER.sub(window, expr.strip())

    def error_ratio(self, window: str) -> str:
        # `> 0` on the total: a window without traffic has no ratio (absent) rather than 0/0 = NaN,
        # which would poison every sum_over_time of the SLO window that contains it.
        total = f"(({self.query('total', window)}) > 0)"
        if self.bad is not None:
            return f"({self.query('bad', window)}) / {total}"
        return f"1 - ({self.query('good', window)}) / {total}"


class AlertToggle(_Model):
    enabled: bool = True
    for_: str | None = Field(None, alias="for", description="How long the condition holds before it fires.")
    labels: dict[str, str] = Field(default_factory=dict, description="Extra labels of this alert only.")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Alerting(_Model):
    preset: str | None = Field(None, description="Named alert windows: `workbook`, or a Sloth AlertWindows file "
                                                 "under alerts/slos/ (its metadata.name or file stem).")
    windows: AlertWindows | None = Field(None, description="The budget share, long and short window of each pair.")
    page: AlertToggle = Field(default_factory=AlertToggle)
    ticket: AlertToggle = Field(default_factory=AlertToggle)

    @model_validator(mode="after")
    def _not_both(self) -> Alerting:
        if self.preset is not None and self.windows is not None:
            raise ValueError("give preset or windows, not both")
        return self


class Slo(_Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="Value of the `slo` label; kebab-case.")
    alert: str | None = Field(None, pattern=r"^[A-Z][A-Za-z0-9]*$",
                              description="Alert name prefix (default: the name in CamelCase).")
    service: str | None = None
    description: str = ""
    objective: Decimal = Field(gt=0, lt=100, description="Percent of good events, e.g. 99.9.")
    window: str = Field("30d", pattern=r"^\d+[dw]$", description="The SLO window, e.g. 30d or 4w.")
    sli: Sli
    labels: dict[str, str] = Field(default_factory=dict)
    alerting: Alerting = Field(default_factory=Alerting)
    _windows: AlertWindows | None = PrivateAttr(None)

    @field_validator("objective", mode="before")
    @classmethod
    def _decimal(cls, v: Any) -> Any:
        return Decimal(str(v)) if isinstance(v, int | float) else v

    @property
    def alert_prefix(self) -> str:
        return self.alert or "".join(p.capitalize() for p in self.name.split("-"))

    @property
    def budget(self) -> Decimal:
        return (Decimal(100) - self.objective) / Decimal(100)

    @property
    def windows(self) -> AlertWindows:
        """The alert windows chosen at load time (`resolve`)."""
        if self._windows is None:
            raise RuntimeError(f"SLO {self.name}: alert windows not resolved")
        return self._windows

    def resolve(self, presets: dict[str, Preset]) -> None:
        self._windows = choose_windows(slo_window=self.window, preset=self.alerting.preset,
                                       windows=self.alerting.windows, presets=presets)

    def burn_alerts(self) -> list[BurnAlert]:
        """The enabled alerts, each with its (long, short, factor) pairs."""
        out = []
        for kind, suffix, default_for, pairs, toggle in (
            ("page", "FastBurn", "2m", self.windows.page, self.alerting.page),
            ("ticket", "SlowBurn", "15m", self.windows.ticket, self.alerting.ticket),
        ):
            if toggle.enabled:
                out.append(BurnAlert(kind, suffix, toggle.for_ or default_for,
                                     tuple((w.long, w.short, w.factor(self.window)) for w in pairs)))
        return out

    def pairs(self, kind: str) -> list[AlertWindow]:
        return list(self.windows.page if kind == "page" else self.windows.ticket)

    def alert_windows(self) -> list[str]:
        """Every window a recording rule is needed for, shortest first (5m always: the SLO window is built on it)."""
        names = {BASE_WINDOW}
        for ba in self.burn_alerts():
            for long, short, _ in ba.pairs:
                names.update((long, short))
        return sorted(names, key=lambda w: (seconds(w), w))


class SloFile(_Model):
    service: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    slos: list[Slo] = Field(min_length=1)


def window_ratio(slo: Slo) -> str:
    """The SLO window's error ratio: the mean of the 5m ratio over the window (cheap, as Sloth does)."""
    sel = f'{ERROR_RATIO}{BASE_WINDOW}{{slo="{slo.name}"}}'
    return f"sum_over_time({sel}[{slo.window}])\n/ count_over_time({sel}[{slo.window}])"


def slo_groups(slo: Slo, service: str, common: dict[str, str],
               severity: dict[str, str] | None = None) -> dict[str, Any]:
    """The rule group of one SLO: error ratio per window, objective, budget left, burn alerts."""
    severity = {**DEFAULT_SEVERITY, **(severity or {})}
    labels = {**common, **slo.labels, "service": service, "slo": slo.name}
    sel = f'{{slo="{slo.name}"}}'
    rules: list[dict[str, Any]] = []
    windows = slo.alert_windows()
    for window in windows:
        rules.append({"record": ERROR_RATIO + window, "expr": slo.sli.error_ratio(window), "labels": dict(labels)})
    if slo.window not in windows:
        rules.append({"record": ERROR_RATIO + slo.window, "expr": window_ratio(slo), "labels": dict(labels)})
    budget = slo.budget
    rules.append({"record": OBJECTIVE, "expr": f"vector({_num(slo.objective / 100)})", "labels": dict(labels)})
    rules.append({"record": BUDGET_REMAINING,
                  "expr": f"1 - {ERROR_RATIO}{slo.window}{sel} / {_num(budget)}", "labels": dict(labels)})
    toggles = {"page": slo.alerting.page, "ticket": slo.alerting.ticket}
    for ba in slo.burn_alerts():
        clauses = []
        for long, short, factor in ba.pairs:
            threshold = _num(factor * budget)
            clauses.append(f"(\n  {ERROR_RATIO}{long}{sel} > {threshold}\n  and\n"
                           f"  {ERROR_RATIO}{short}{sel} > {threshold}\n)")
        windows_text = " or ".join(f"{_num(f)}x over {long} and {short}" for long, short, f in ba.pairs)
        what = slo.description.rstrip(".") + ". " if slo.description else ""
        rules.append({
            "alert": slo.alert_prefix + ba.suffix,
            "expr": "\n or\n".join(clauses),
            "for": ba.for_,
            "labels": {**labels, **toggles[ba.kind].labels, "severity": severity[ba.kind]},
            "annotations": {
                "summary": f"{service}: SLO {slo.name} is burning its error budget "
                           f"({'fast' if ba.kind == 'page' else 'slowly but steadily'})",
                "description": (
                    f"{what}Objective {_num(slo.objective)}% over {slo.window}. The error ratio is "
                    "{{ $value | humanizePercentage }}, above the burn-rate threshold "
                    f"({windows_text}): at this pace the {slo.window} error budget runs out early."
                ),
            },
        })
    return {"name": f"slo-{slo.name}", "rules": rules}


def load_slo_file(data: Any, rel: str, shown: str, findings: list[Finding], *,
                  presets: dict[str, Preset] | None = None,
                  severity: dict[str, str] | None = None) -> tuple[RuleFile | None, list[Slo]]:
    """Validate one native SLO spec file and generate its rule file; problems become findings."""
    try:
        spec = SloFile.model_validate(data)
    except ValidationError as exc:
        for problem in format_validation_error(exc):
            findings.append(Finding("slo-spec", shown, problem))
        return None, []
    return build_rule_file(spec, rel, shown, findings, presets=presets, severity=severity)


def build_rule_file(spec: SloFile, rel: str, shown: str, findings: list[Finding], *,
                    presets: dict[str, Preset] | None = None,
                    severity: dict[str, str] | None = None) -> tuple[RuleFile | None, list[Slo]]:
    """The rule file of a validated spec (native, or converted from Sloth or OpenSLO)."""
    presets = presets if presets is not None else builtin_presets()
    groups = []
    seen: set[str] = set()
    kept: list[Slo] = []
    for i, slo in enumerate(spec.slos):
        service = slo.service or spec.service
        if not service:
            findings.append(Finding("slo-spec", shown, f"slos[{i}].service: give service here or at the top"))
            continue
        if slo.name in seen:
            findings.append(Finding("slo-spec", shown, f"slos[{i}].name: {slo.name!r} is given twice"))
            continue
        try:
            slo.resolve(presets)
        except ValueError as exc:
            findings.append(Finding("slo-spec", shown, f"slos[{i}] ({slo.name}): {exc}"))
            continue
        seen.add(slo.name)
        slo.service = service  # readers of tree.slo_specs (dashboards) see the file-level default applied
        groups.append(slo_groups(slo, service, spec.labels, severity))
        kept.append(slo)
    parsed = parse_groups({"groups": groups}, shown, findings)
    return RuleFile(rel, out_name(rel), parsed, generated=True), kept
