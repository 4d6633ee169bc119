"""promtool tests generated from an SLO spec: each burn alert fires when the error ratio spends
its share of the budget, and stays quiet just under it.

For every window pair of an alert (long window L, short window S, share s of the budget), the
error ratio that spends exactly s of the budget in L is `s x budget x slo_window / L`: computed
here from the shares and the durations, independently of the factor the rule generator wrote
into the rule. Two cases per pair, each starting with a clean stretch as long as the alert's
longest window (so the other pairs see a clean history), then a constant burn:

- at 105% of that ratio, held for L plus the alert's `for:`, the alert fires;
- at 95%, held as long, it stays quiet (unless another pair of the same alert would fire on that
  burn, which the expectation then says: the cases follow the budget model, not the rule).

The input series are built from the SLI's own selectors (the metric and label matchers of its
bad/good and total queries), so the tests run the SLO's real rules: recording rules, windows,
thresholds, `for:` and labels. Annotations are the hand-written tests' business (they render
`$value`); the generated tests load the SLO's group with its annotations taken off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sre.rules.promql import Matcher, PromQLSyntaxError, Selector, selectors
from sre.rules.slo import BASE_WINDOW, DEFAULT_SEVERITY, Slo
from sre.rules.slo_windows import AlertWindow, seconds
from sre.rules.tree import Tree

EVENTS_PER_MINUTE = 1_000_000  # large, so error counts per minute are whole numbers
ABOVE, BELOW = Decimal("1.05"), Decimal("0.95")
_OTHER_VALUES = ("200", "other", "0", "x", "ok")


class CannotGenerate(ValueError):
    """The SLI's queries do not say which series to write (e.g. two selectors in one query)."""


# ---------------------------------------------------------------- label values that (do not) match


def _regex_examples(pattern: str) -> list[str]:
    """Plausible strings a simple RE2 pattern matches (checked by the caller)."""
    body = pattern.strip("^$")
    if body.startswith("(") and body.endswith(")") and body.count("(") == 1:
        body = body[1:-1]
    out = []
    for alt in [body, *body.split("|")]:
        text = re.sub(r"\[([^\]])[^\]]*\]", r"\1", alt)
        text = text.replace(".*", "").replace(".+", "x").replace("\\.", "\x00").replace(".", "0")
        text = re.sub(r"[()?^$\\]", "", text).replace("\x00", ".")
        out.append(text)
    return out


def _holds(m: Matcher, value: str) -> bool:
    if m.op == "=":
        return value == m.value
    if m.op == "!=":
        return value != m.value
    try:
        hit = re.fullmatch(m.value, value) is not None
    except re.error:
        return False
    return hit if m.op == "=~" else not hit


def _value_for(label: str, must: list[Matcher], must_not: Matcher | None = None) -> str:
    candidates: list[str] = []
    for m in must:
        candidates += [m.value] if m.op == "=" else _regex_examples(m.value) if m.op == "=~" else []
    candidates += list(_OTHER_VALUES)
    for value in candidates:
        if all(_holds(m, value) for m in must) and (must_not is None or not _holds(must_not, value)):
            return value
    raise CannotGenerate(f"no value of label {label} satisfies {', '.join(str(m) for m in must)}"
                         + (f" and not {must_not}" if must_not else ""))


def _labels(sel: Selector, extra: tuple[Matcher, ...] = (), violate: Matcher | None = None) -> dict[str, str]:
    """Label values satisfying the selector's matchers and `extra` (all but `violate`, which fails)."""
    matchers = [m for m in (*sel.matchers, *extra) if m.label != "__name__"]
    out = {}
    for label in dict.fromkeys(m.label for m in matchers):
        must = [m for m in matchers if m.label == label]
        if violate is not None and violate.label == label:
            out[label] = _value_for(label, [m for m in must if m is not violate], violate)
        else:
            out[label] = _value_for(label, must)
    return {k: v for k, v in out.items() if v != ""}


def _only_selector(query: str, what: str) -> Selector:
    try:
        found = [s for s in selectors(query) if not s.in_absent]
    except PromQLSyntaxError as exc:
        raise CannotGenerate(f"sli.{what}: {exc}") from None
    if len(found) != 1 or found[0].metric() is None:
        raise CannotGenerate(f"sli.{what}: expected one selector with a metric name, found {len(found)}")
    return found[0]


def _series_text(sel: Selector, labels: dict[str, str]) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{sel.metric()}{{{inner}}}"


@dataclass(frozen=True)
class SeriesPlan:
    """The SLI as two counters to write: the event counter (bad events for a bad/total SLI, good
    events for a good/total one) and the other one."""

    event: str
    other: str  # the complement (same metric) or the total (another metric)
    other_is_total: bool
    event_is_bad: bool


def series_plan(slo: Slo) -> SeriesPlan:
    event_name = "bad" if slo.sli.bad is not None else "good"
    event = _only_selector(slo.sli.query(event_name, BASE_WINDOW), event_name)
    total = _only_selector(slo.sli.query("total", BASE_WINDOW), "total")
    if event.metric() != total.metric():
        return SeriesPlan(_series_text(event, _labels(event)), _series_text(total, _labels(total)), True,
                          event_name == "bad")
    own = [m for m in event.matchers if m.label != "__name__" and m not in total.matchers
           and not any(t.label == m.label for t in total.matchers)]
    if not own:
        raise CannotGenerate(f"sli.{event_name} selects the same series as sli.total")
    inside = _labels(total, extra=tuple(event.matchers))
    outside = _labels(total, extra=tuple(own), violate=own[0])
    return SeriesPlan(_series_text(event, inside), _series_text(total, outside), False, event_name == "bad")


# ---------------------------------------------------------------- cases and the promtool test file


def burn_ratio(slo: Slo, pair: AlertWindow) -> Decimal:
    """The error ratio that spends the pair's share of the budget in its long window."""
    return pair.budget_percent / 100 * slo.budget * seconds(slo.window) / seconds(pair.long)


def _window_ratio(ratio: Decimal, burn_minutes: int, window: str) -> Decimal:
    minutes = seconds(window) // 60
    return ratio * min(burn_minutes, minutes) / minutes


def _fires(slo: Slo, kind: str, ratio: Decimal, burn_minutes: int, step: int) -> bool:
    """Whether, by the budget model, some pair of the alert sees both windows over its threshold
    (a window shorter than 3 samples has no rate, so its pair cannot fire)."""
    for pair in slo.pairs(kind):
        if seconds(pair.short) // 60 < 3 * step:
            continue
        threshold = burn_ratio(slo, pair)
        if all(_window_ratio(ratio, burn_minutes, w) > threshold for w in (pair.long, pair.short)):
            return True
    return False


def _counter(segments: list[tuple[int, int]]) -> str:
    """promtool series values: for each (increment per step, steps), a run of that increment."""
    parts, value, first = [], 0, True
    for inc, steps in segments:
        if first:  # the first run starts at 0 and has `steps` increments after it
            parts.append(f"0+{inc}x{steps}")
            value, first = inc * steps, False
        else:
            parts.append(f"{value + inc}+{inc}x{steps - 1}")
            value += inc * steps
    return " ".join(parts)


def _step_minutes(pair: AlertWindow) -> int:
    """A sample every 1, 5, 15 or 60 minutes: as coarse as leaves the pair's short window 5
    samples. promtool evaluates the rules at every step over days of history, so this is what
    keeps a ticket pair's test (3 clean days, then two burns of 3 days) under a second."""
    shortest = seconds(pair.short) // 60
    return next((step for step in (60, 15, 5) if shortest >= 5 * step), 1)


def generated_tests(slo: Slo, labels: dict[str, str],
                    severity: dict[str, str] | None = None) -> dict[str, tuple[str, dict[str, Any]]]:
    """The promtool test documents of `slo`: name (`page-1h`) -> (alert, document without rule_files).

    One test per window pair, on one timeline: a clean stretch as long as the alert's longest
    window, then the burn at 95% (checked quiet at its end), then at 105% (checked firing at its
    end); each burn lasts the long window plus `for:` plus two steps.
    """
    severity = {**DEFAULT_SEVERITY, **(severity or {})}
    plan = series_plan(slo)
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for ba in slo.burn_alerts():
        alert = slo.alert_prefix + ba.suffix
        fired = [{"exp_labels": {**labels, **getattr(slo.alerting, ba.kind).labels, "severity": severity[ba.kind]}}]
        longest = max(seconds(p.long) for p in slo.pairs(ba.kind)) // 60
        for pair in slo.pairs(ba.kind):
            step = _step_minutes(pair)
            total = EVENTS_PER_MINUTE * step
            clean = -(-longest // step) + 1
            burn = -(-(seconds(pair.long) // 60 + seconds(ba.for_) // 60) // step) + 2
            bads, checks = [], []
            for n, scale in enumerate((BELOW, ABOVE)):
                bad = int((burn_ratio(slo, pair) * scale * total).to_integral_value())
                fires = _fires(slo, ba.kind, Decimal(bad) / total, burn * step, step)
                bads.append(bad)
                checks.append({"eval_time": f"{(clean + burn * (n + 1)) * step}m", "alertname": alert,
                               "exp_alerts": fired if fires else []})
            event = [(0 if plan.event_is_bad else total, clean)]
            event += [(b if plan.event_is_bad else total - b, burn) for b in bads]
            if plan.other_is_total:
                other = [(total, clean), (total, burn), (total, burn)]
            else:
                other = [(total - inc, steps) for inc, steps in event]
            test = {
                "name": f"{slo.name} {ba.kind}: {pair.budget_percent}% of the budget in {pair.long} "
                        f"(95% then 105% of that burn)",
                "interval": f"{step}m",
                "input_series": [{"series": plan.event, "values": _counter(event)},
                                 {"series": plan.other, "values": _counter(other)}],
                "alert_rule_test": checks,
            }
            out[f"{ba.kind}-{pair.long}"] = (alert, {"evaluation_interval": f"{step}m", "tests": [test]})
    return out


def test_group(group: dict[str, Any], alert: str) -> dict[str, Any]:
    """The SLO's rule group as a generated test loads it: the alert under test without its
    annotations, and the recording rules its expression reads (the others only cost time)."""
    rule = next(r for r in group["rules"] if r.get("alert") == alert)
    used = {r["record"] for r in group["rules"] if "record" in r and r["record"] + "{" in rule["expr"]}
    rules = [r for r in group["rules"] if r.get("record") in used]
    return {**group, "rules": [*rules, {k: v for k, v in rule.items() if k != "annotations"}]}


def generated_alerts(tree: Tree) -> set[str]:
    """The alerts the generated tests cover (firing and quiet): every enabled SLO alert."""
    return {slo.alert_prefix + ba.suffix for slo in tree.slo_specs for ba in slo.burn_alerts()}
