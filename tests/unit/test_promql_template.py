"""Label values in verify queries: escaped for their place in the query, or refused."""

from __future__ import annotations

import pytest

from sre.remediation.runbook import TemplateError, render_query

CASES = [
    # (template, value, rendered)
    ('up{a="{{ labels.x }}"}', "plain", 'up{a="plain"}'),
    ('up{a="{{ labels.x }}"}', 'q"}) or vector(1) or up{b="', 'up{a="q\\"}) or vector(1) or up{b=\\""}'),
    ('up{a="{{ labels.x }}"}', "back\\slash", 'up{a="back\\\\slash"}'),
    ('up{a="{{ labels.x }}"}', "two\nlines", 'up{a="two\\nlines"}'),
    ('up{a="{{ labels.x }}"}', "ünïcode", 'up{a="ünïcode"}'),
    ("up{a='{{ labels.x }}'}", "it's", "up{a='it\\'s'}"),
    ("up{a='{{ labels.x }}'}", 'say "hi"', "up{a='say \"hi\"'}"),
    ("up{a=`{{ labels.x }}`}", 'raw"\\', 'up{a=`raw"\\`}'),
    ('up{a="x\\"{{ labels.x }}"}', "y", 'up{a="x\\"y"}'),  # an escaped quote before it keeps the string open
    ("x > {{ labels.x }}", "1.5e9", "x > 1.5e9"),
    ("x > {{ labels.x }}", "-3", "x > -3"),
    ("max({{ labels.x }})", "pg_up", "max(pg_up)"),
    ('up{a="{{ labels.x }}"} # {{ labels.x }}', "v", 'up{a="v"} # v'),
]

REFUSED = [
    ("x > {{ labels.x }}", "1 or vector(1)"),
    ("max({{ labels.x }})", "up{a=\"b\"}"),
    ("up{a=`{{ labels.x }}`}", "tick`"),
    ('up{a="{{ labels.x }}"}', "nul\x00"),
    ('up{a="{{ labels.x }}"}', "bell\x07"),
]


@pytest.mark.parametrize(("template", "value", "rendered"), CASES)
def test_values_are_escaped_for_their_place(template: str, value: str, rendered: str) -> None:
    assert render_query(template, {"x": value}) == rendered


@pytest.mark.parametrize(("template", "value"), REFUSED)
def test_values_that_cannot_be_made_safe_are_refused(template: str, value: str) -> None:
    with pytest.raises(TemplateError, match="verify query"):
        render_query(template, {"x": value})


def test_a_missing_label_is_still_an_error() -> None:
    with pytest.raises(TemplateError, match="no label 'x'"):
        render_query('up{a="{{ labels.x }}"}', {})
