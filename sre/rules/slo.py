"""SLO specs -> recording rules per window and multi-window, multi-burn-rate alerts.

The alert set is the one of the Google SRE workbook ("Alerting on SLOs", table 5-8): page when
the error budget burns 14.4x too fast over 1h (confirmed over 5m) or 6x over 6h (confirmed over
30m); open a ticket at 3x over 1d (confirmed over 2h) or 1x over 3d (confirmed over 6h). The
short window makes an alert stop soon after the burn stops.

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
```

Output is deterministic: the same spec always renders byte-for-byte the same rules (fixed
window order, thresholds computed in decimal arithmetic, no timestamps).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sre.config import format_validation_error
from sre.rules.tree import Finding, RuleFile, out_name, parse_groups

WINDOW_PLACEHOLDER = re.compile(r"\{\{\s*window\s*\}\}")


@dataclass(frozen=True)
class BurnAlert:
    severity: str
    suffix: str
    for_: str
    pairs: tuple[tuple[str, str, Decimal], ...]  # (long window, short window, burn-rate factor)


BURN_ALERTS: tuple[BurnAlert, ...] = (
    BurnAlert("page", "FastBurn", "2m", (("1h", "5m", Decimal("14.4")), ("6h", "30m", Decimal("6")))),
    BurnAlert("ticket", "SlowBurn", "15m", (("1d", "2h", Decimal("3")), ("3d", "6h", Decimal("1")))),
)
WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
ERROR_RATIO = "slo:sli_error:ratio_rate"
OBJECTIVE = "slo:objective:ratio"
BUDGET_REMAINING = "slo:error_budget:remaining_ratio"


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

    def error_ratio(self, window: str) -> str:
        def w(expr: str) -> str:
            return WINDOW_PLACEHOLDER.sub(window, expr.strip())

        if self.bad is not None:
            return f"({w(self.bad)}) / ({w(self.total)})"
        assert self.good is not None
        return f"1 - ({w(self.good)}) / ({w(self.total)})"


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


class SloFile(_Model):
    service: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    slos: list[Slo] = Field(min_length=1)


def _num(d: Decimal) -> str:
    """A decimal as PromQL reads it, without float noise (0.0144, not 0.014400000000000001)."""
    text = format(d.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _pct(d: Decimal) -> str:
    return _num(d)


def slo_groups(slo: Slo, service: str, common: dict[str, str]) -> dict[str, Any]:
    """The rule group of one SLO: error ratio per window, objective, budget left, burn alerts."""
    labels = {**common, **slo.labels, "service": service, "slo": slo.name}
    sel = f'{{slo="{slo.name}"}}'
    rules: list[dict[str, Any]] = []
    for window in (*WINDOWS, slo.window) if slo.window not in WINDOWS else WINDOWS:
        rules.append({"record": ERROR_RATIO + window, "expr": slo.sli.error_ratio(window), "labels": dict(labels)})
    budget = slo.budget
    rules.append({"record": OBJECTIVE, "expr": f"vector({_num(slo.objective / 100)})", "labels": dict(labels)})
    rules.append({"record": BUDGET_REMAINING,
                  "expr": f"1 - {ERROR_RATIO}{slo.window}{sel} / {_num(budget)}", "labels": dict(labels)})
    for ba in BURN_ALERTS:
        clauses = []
        for long, short, factor in ba.pairs:
            threshold = _num(factor * budget)
            clauses.append(f"(\n  {ERROR_RATIO}{long}{sel} > {threshold}\n  and\n"
                           f"  {ERROR_RATIO}{short}{sel} > {threshold}\n)")
        windows = " or ".join(f"{_num(f)}x over {long} and {short}" for long, short, f in ba.pairs)
        what = slo.description.rstrip(".") + ". " if slo.description else ""
        rules.append({
            "alert": slo.alert_prefix + ba.suffix,
            "expr": "\n or\n".join(clauses),
            "for": ba.for_,
            "labels": {**labels, "severity": ba.severity},
            "annotations": {
                "summary": f"{service}: SLO {slo.name} is burning its error budget "
                           f"({'fast' if ba.severity == 'page' else 'slowly but steadily'})",
                "description": (
                    f"{what}Objective {_pct(slo.objective)}% over {slo.window}. The error ratio is "
                    "{{ $value | humanizePercentage }}, above the burn-rate threshold "
                    f"({windows}): at this pace the {slo.window} error budget runs out early."
                ),
            },
        })
    return {"name": f"slo-{slo.name}", "rules": rules}


def load_slo_file(data: Any, rel: str, shown: str, findings: list[Finding]) -> tuple[RuleFile | None, list[Slo]]:
    """Validate one SLO spec file and generate its rule file; problems become findings."""
    try:
        spec = SloFile.model_validate(data)
    except ValidationError as exc:
        for problem in format_validation_error(exc):
            findings.append(Finding("slo-spec", shown, problem))
        return None, []
    groups = []
    seen: set[str] = set()
    for i, slo in enumerate(spec.slos):
        service = slo.service or spec.service
        if not service:
            findings.append(Finding("slo-spec", shown, f"slos[{i}].service: give service here or at the top"))
            continue
        if slo.name in seen:
            findings.append(Finding("slo-spec", shown, f"slos[{i}].name: {slo.name!r} is given twice"))
            continue
        seen.add(slo.name)
        slo.service = service  # readers of tree.slo_specs (dashboards) see the file-level default applied
        groups.append(slo_groups(slo, service, spec.labels))
    parsed = parse_groups({"groups": groups}, shown, findings)
    return RuleFile(rel, out_name(rel), parsed, generated=True), list(spec.slos)
