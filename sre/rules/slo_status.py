"""The error budget of each SLO as live Prometheus sees it, and the deploy gate built on it.

Everything comes from the recording rules the SLO specs generate (`sre.rules.slo`), read in one
instant query per call: `slo:sli_error:ratio_rate<w>` for each alert window and the SLO window,
and `slo:error_budget:remaining_ratio`. Per SLO:

- the SLI over the window (`1 - ratio_rate<window>`);
- the budget left, as a ratio and as time: the minutes of total outage the rest of the budget
  still allows (`remaining x (1 - objective) x window`);
- the burn rate over each alert window (`ratio / budget`; 1 spends the budget exactly over the
  window), beside the factor its alert fires at;
- the projected exhaustion: the remaining budget at the burn rate of the first page window
  (1h by default), `remaining x window / burn`; none when nothing burns.

The gate blocks a deploy when an SLO has less than `min_budget` of its budget left, or burns
faster than `max_burn` over both windows of its first page pair (the long one says the burn is
real, the short one that it is still going on: one bad minute does not block a deploy). An SLO
without data cannot be judged: the caller gets an error, never a pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sre.errors import UsageError
from sre.rules.slo import BUDGET_REMAINING, ERROR_RATIO, Slo
from sre.rules.slo_windows import seconds

if TYPE_CHECKING:
    from sre.adapters.prometheus import PrometheusClient


class NoData(Exception):
    """Prometheus answered, but an SLO's recording rules have no current value."""


@dataclass
class WindowBurn:
    window: str
    burn_rate: float | None
    alert: str | None = None  # page | ticket, for the long window of a pair
    factor: float | None = None  # the burn rate that alert fires at over this window

    def to_dict(self) -> dict[str, Any]:
        return {"window": self.window, "burn_rate": self.burn_rate, "alert": self.alert, "factor": self.factor}


@dataclass
class SloStatus:
    name: str
    service: str
    objective: float
    window: str
    sli: float | None = None
    budget_remaining: float | None = None  # 1 untouched, 0 spent, below 0 overspent
    budget_remaining_seconds: float | None = None
    burn: list[WindowBurn] = field(default_factory=list)
    exhaustion_seconds: float | None = None  # from now, at the current burn; None: not burning
    missing: list[str] = field(default_factory=list)

    def burn_over(self, window: str) -> float | None:
        return next((b.burn_rate for b in self.burn if b.window == window), None)

    def to_dict(self) -> dict[str, Any]:
        return {"slo": self.name, "service": self.service, "objective": self.objective, "window": self.window,
                "sli": self.sli, "budget_remaining": self.budget_remaining,
                "budget_remaining_seconds": self.budget_remaining_seconds,
                "burn": [b.to_dict() for b in self.burn], "exhaustion_seconds": self.exhaustion_seconds,
                "missing": self.missing}


def select_slos(specs: list[Slo], service: str | None) -> list[Slo]:
    """The SLOs of `service` (all without one); UsageError naming the services there are."""
    chosen = [s for s in specs if service is None or s.service == service]
    if not chosen:
        known = ", ".join(sorted({str(s.service) for s in specs})) or "none"
        raise UsageError(f"no SLO for service {service!r} in the rules tree (services with SLOs: {known})")
    return chosen


def _gate_pair(slo: Slo) -> tuple[str, str]:
    pairs = slo.windows.page or slo.windows.ticket
    return pairs[0].long, pairs[0].short


def fetch_status(prom: PrometheusClient, slos: list[Slo], at: float | None = None) -> list[SloStatus]:
    """The status of each SLO, from one instant query."""
    names = "|".join(sorted({s.name for s in slos}))
    expr = f'{{__name__=~"{ERROR_RATIO}.+|{BUDGET_REMAINING}", slo=~"{names}"}}'
    values: dict[tuple[str, str], float] = {}
    for sample in prom.query(expr, at=at):
        metric = sample.get("metric", {})
        values[(metric.get("slo", ""), metric.get("__name__", ""))] = float(sample["value"][1])
    return [status_of(slo, values) for slo in slos]


def status_of(slo: Slo, values: dict[tuple[str, str], float]) -> SloStatus:
    """One SLO's status from the current values of its recording rules, keyed (slo, metric)."""
    budget = float(slo.budget)
    window_s = seconds(slo.window)
    out = SloStatus(slo.name, str(slo.service), float(slo.objective / Decimal(100)), slo.window)

    def get(metric: str) -> float | None:
        value = values.get((slo.name, metric))
        if value is None:
            out.missing.append(metric)
        return value

    ratio = get(ERROR_RATIO + slo.window)
    out.sli = None if ratio is None else 1 - ratio
    out.budget_remaining = get(BUDGET_REMAINING)
    if out.budget_remaining is not None:
        out.budget_remaining_seconds = out.budget_remaining * budget * window_s
    factors: dict[str, tuple[str, float]] = {}
    for ba in slo.burn_alerts():
        for long, _, pair_factor in ba.pairs:
            factors.setdefault(long, (ba.kind, float(pair_factor)))
    for window in slo.alert_windows():
        win_ratio = values.get((slo.name, ERROR_RATIO + window))
        kind, factor = factors.get(window, (None, None))
        out.burn.append(WindowBurn(window, None if win_ratio is None else win_ratio / budget, kind, factor))
    current = out.burn_over(_gate_pair(slo)[0])
    if out.budget_remaining is not None and current is not None:
        if out.budget_remaining <= 0:
            out.exhaustion_seconds = 0.0
        elif current > 0:
            out.exhaustion_seconds = out.budget_remaining * window_s / current
    return out


@dataclass
class GateResult:
    reasons: list[str]
    statuses: list[SloStatus]

    @property
    def ok(self) -> bool:
        return not self.reasons

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "reasons": self.reasons, "slos": [s.to_dict() for s in self.statuses]}


def gate(slos: list[Slo], statuses: list[SloStatus], *, min_budget: float, max_burn: float) -> GateResult:
    """Whether a deploy may proceed: one reason per SLO and rule that blocks it.

    NoData when an SLO cannot be judged (its recording rules have no value): a gate that passes
    on missing data would let every deploy through while the rules are not loaded.
    """
    reasons: list[str] = []
    unknown = [f"{s.name} ({', '.join(s.missing)})" for s in statuses if s.budget_remaining is None]
    if unknown:
        raise NoData("no current value for " + "; ".join(unknown) + ": are the SLO rules loaded "
                     "(`sre alerts apply`) and the service scraped?")
    for slo, st in zip(slos, statuses, strict=True):
        assert st.budget_remaining is not None
        if st.budget_remaining < min_budget:
            reasons.append(f"{st.name}: {_pct(st.budget_remaining)} of the {st.window} error budget left, "
                           f"below the {_pct(min_budget)} floor (--min-budget {min_budget:g})")
        long, short = _gate_pair(slo)
        burn_long, burn_short = st.burn_over(long), st.burn_over(short)
        if burn_long is not None and burn_short is not None and min(burn_long, burn_short) > max_burn:
            reasons.append(f"{st.name}: burning its error budget {burn_long:.3g}x over {long} "
                           f"({burn_short:.3g}x over {short}), above --max-burn {max_burn:g}")
    return GateResult(reasons, statuses)


def _pct(ratio: float) -> str:
    return f"{ratio * 100:.3g}%"
