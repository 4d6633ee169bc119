"""The fast YAML reader gives what yaml.safe_load gives; the writer's output loads back to its input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sre.rules import yamlio

ROOT = Path(__file__).parents[2]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["yes", "No", "on", "~", "null", "5m", "1e3", "0x1f", "2024-01-01", "- a", "a: b", "a #b",
                     "{{ $labels.x }}", "sum(rate(x[5m])) > 0.5", "line\nline\n", "tab\there", " lead", "é"]),
)
keys = st.one_of(st.text(min_size=1, max_size=20), st.sampled_from(["alert", "expr", "for", "true", "1", "a: b"]))
documents: Any = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)), max_leaves=25)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, documents, min_size=1, max_size=5))
def test_dump_loads_back_to_the_same_data(data: dict[str, Any]) -> None:
    text = yamlio.dump(data)
    assert yaml.safe_load(text) == data
    assert yamlio.load(text) == data


def test_load_matches_safe_load_on_every_yaml_file_of_the_project() -> None:
    paths = [p for d in ("alerts", "tests/fixtures") for p in (ROOT / d).rglob("*.y*ml")]
    assert len(paths) > 20
    for path in paths:
        text = path.read_text()
        try:
            expected = yaml.safe_load(text)
        except yaml.YAMLError:
            continue
        assert yamlio.load(text) == expected, path


def test_merge_keys_and_many_documents() -> None:
    text = "base: &b {x: 1}\nderived:\n  <<: *b\n  y: 2\n"
    assert yamlio.load(text) == yaml.safe_load(text)
    assert yamlio.load_many(["a: 1\n", "b: [x, 'y']\n"]) == [{"a": 1}, {"b": ["x", "y"]}]
    assert yamlio.load_many(["a: [\n"]) is None
