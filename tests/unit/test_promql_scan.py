"""The PromQL scanner: selectors for lint, and a canonical form equal to Prometheus's re-printing."""

from __future__ import annotations

import pytest

from sre.rules.lint import never_matches
from sre.rules.promql import PromQLSyntaxError, canonical_tokens, selectors, tokenize


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
])
def test_canonical_tokens_ignore_reprinting(ours: str, prometheus: str) -> None:
    assert canonical_tokens(ours) == canonical_tokens(prometheus)


def test_canonical_tokens_see_real_changes() -> None:
    assert canonical_tokens("x > 1") != canonical_tokens("x > 2")
    assert canonical_tokens('x{a="b"}') != canonical_tokens('x{a!="b"}')
    with pytest.raises(PromQLSyntaxError):
        tokenize("x ? y")


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
