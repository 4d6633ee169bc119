"""PromQL through the parser: selectors for lint, a canonical form equal to Prometheus's
re-printing (and different for a different expression), syntax errors with their position."""

from __future__ import annotations

from pathlib import Path

import pytest

from sre.rules.lint import never_matches
from sre.rules.loader import load_tree
from sre.rules.promql import PromQLSyntaxError, canonical, selectors, selectors_many

ROOT = Path(__file__).parents[2]


def test_selectors_skip_functions_grouping_labels_ranges_and_keywords() -> None:
    expr = ('sum by (job) (rate(http_request_duration_seconds_count{job="api",status_code=~"5.."}[5m])) '
            '/ on(job) group_left() sum(rate(x[1h:5m] offset 1d)) > bool 1.5e9 '
            'and absent(up{job="sre"} == 1) unless {__name__=~"foo.*"} # a comment\n'
            'or histogram_quantile(0.99, sum without (instance) (rate(b_bucket{le="+Inf"}[5m]))) > Inf')
    found = [(s.promql(), s.in_absent) for s in selectors(expr)]
    assert found == [('http_request_duration_seconds_count{job="api",status_code=~"5.."}', False), ("x", False),
                     ('up{job="sre"}', True), ('{__name__=~"foo.*"}', False), ('b_bucket{le="+Inf"}', False)]


@pytest.mark.parametrize(("ours", "prometheus"), [
    ("sum(rate(x[90m])) by (a) > 1.5e9", "sum by (a) (rate(x[1h30m])) > 1.5e+09"),
    ("x{a='b'}  # why\n  > 0x10", 'x{a="b"} > 16'),
    ("a / on(b) group_left() c", "a / on (b) group_left () c"),
    ("rate(x{}[7d])", "rate(x[1w])"),
    ('x{b="1", a="2"}', 'x{a="2",b="1"}'),
])
def test_canonical_form_ignores_reprinting(ours: str, prometheus: str) -> None:
    assert canonical(ours) == canonical(prometheus)


@pytest.mark.parametrize(("a", "b"), [
    ("x > 1", "x > 2"), ('x{a="b"}', 'x{a!="b"}'), ("a - b", "b - a"), ("a / b > 1", "b / a > 1"),
    ("sum by (a) (x)", "sum without (a) (x)"),
])
def test_canonical_form_sees_real_changes(a: str, b: str) -> None:
    assert canonical(a) != canonical(b)


@pytest.mark.parametrize(("expr", "where"), [
    ("sum(rate(x[5m])", "column 16: unclosed left parenthesis"),
    ("foo bar", "column 5:"),
    ("x ? y", "column 3:"),
    ("rate(x[5m]) > 1\n and\n foo bar", "line 3, column 6:"),
])
def test_syntax_errors_say_where(expr: str, where: str) -> None:
    with pytest.raises(PromQLSyntaxError) as caught:
        selectors(expr)
    assert where in str(caught.value)


def test_the_shipped_expressions_parse_and_their_selectors_name_metrics() -> None:
    tree = load_tree(ROOT / "alerts")
    rules = tree.rules()
    assert len(rules) > 48
    for rule in rules:
        for sel in selectors(rule.expr):
            assert sel.metric() or any(m.label == "__name__" for m in sel.matchers), (rule.name, sel)
        assert canonical(canonical(rule.expr)) == canonical(rule.expr)  # printing is a fixed point


@pytest.mark.parametrize(("expr", "why"), [
    ('up{job="a", job="b"}', "job cannot equal both 'a' and 'b'"),
    ('up{job="a", job!="a"}', "cannot both equal and differ"),
    ('up{job="api", job=~"web.*"}', "never matches the regex"),
    ('up{job="api", job!~"a.*"}', "is excluded by"),
    ('rate(http_request_duration_seconds_count{le="0.5"}[5m])', "only histogram _bucket series carry an le label"),
    ('sre_job_runs_total{job="backups.verify"}', "use exported_job='backups.verify'"),
    ('{__name__="up", __name__="down"}', "__name__ cannot equal both"),
])
def test_never_matching_selectors(expr: str, why: str) -> None:
    (sel,) = selectors(expr)
    reason = never_matches(sel, histograms=set())
    assert reason is not None and why in reason


def test_a_histograms_bare_name_never_matches() -> None:
    (sel,) = selectors("http_request_duration_seconds")
    assert "is a histogram" in str(never_matches(sel, {"http_request_duration_seconds"}))
    (ok,) = selectors('up{job="api", job=~"a.*"}')
    assert never_matches(ok, set()) is None


def test_a_batch_parses_each_shape_once_and_keeps_each_rules_own_values() -> None:
    exprs = ['rate(x{job="a#1", path=~"/v1/.*"}[5m]) > 1  # a "quoted" comment',
             "rate(x{job='b\\\\d', path=~`/v2/.*`}[5m]) > 1",
             'rate(x{job="c"}[5m]) > 1 +',
             'label_replace(up{job="d"}, "dst", "$1", "src", "(.*)")']
    first, second, broken, fourth = selectors_many(exprs)
    assert [s.promql() for s in first] == ['x{job="a#1",path=~"/v1/.*"}']  # type: ignore[union-attr]
    assert [s.promql() for s in second] == ['x{job="b\\d",path=~"/v2/.*"}']  # type: ignore[union-attr]
    assert isinstance(broken, PromQLSyntaxError) and "column 27" in str(broken)
    assert [s.promql() for s in fourth] == ['up{job="d"}']  # type: ignore[union-attr]
