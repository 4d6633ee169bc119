"""Test-time timings applied to copies of the shipped rules and runbooks, never to the files."""

from __future__ import annotations

from pathlib import Path

import pytest

from sre.content import content_dir
from sre.provision.prometheus import desired_files
from sre.sandbox.timing import SANDBOX, Timing, fast_rule_files, fast_runbooks

ROOT = Path(__file__).parents[2]


def _alerts(files: list) -> dict[str, dict]:
    return {r["alert"]: r for f in files for g in f.data["groups"] for r in g["rules"] if "alert" in r}


def test_the_sandbox_timing_applies_to_every_named_rule_and_leaves_the_rest_as_shipped() -> None:
    shipped = desired_files(ROOT / "alerts", "https://runbooks")
    fast = fast_rule_files(shipped, SANDBOX)
    before, after = _alerts(shipped), _alerts(fast)
    assert set(before) == set(after)
    assert {r["for"] for r in after.values()} == {"0s"}
    assert "> 2" in after["PostgresIdleInTransaction"]["expr"] and "> 300" in before["PostgresIdleInTransaction"]["expr"]
    assert after["ApiHighErrorRatio"]["expr"] == before["ApiHighErrorRatio"]["expr"]
    assert "offset 15m" not in after["WebsocketConnectionsDropped"]["expr"]
    assert [f.hash for f in fast] != [f.hash for f in shipped]


@pytest.mark.parametrize("timing", [Timing(rules={"NoSuchAlert": {"> 1": "> 2"}}),
                                    Timing(rules={"PostgresIdleInTransaction": {"> 299": "> 2"}})])
def test_a_literal_or_alert_that_is_not_there_fails_loudly(timing: Timing) -> None:
    with pytest.raises(ValueError):
        fast_rule_files(desired_files(ROOT / "alerts", "https://runbooks"), timing)


def test_runbooks_are_copied_with_their_timings(tmp_path: Path) -> None:
    out = fast_runbooks(content_dir("runbooks"), tmp_path / "rb", SANDBOX)
    text = (out / "PostgresIdleInTransaction.md").read_text()
    assert "idle_for: 2s" in text and "idle_for: 5m" not in text
    assert (out / "SreDown.md").read_text() == (content_dir("runbooks") / "SreDown.md").read_text()
    with pytest.raises(ValueError):
        fast_runbooks(content_dir("runbooks"), tmp_path / "rb2", Timing(runbooks={"SreDown": {"nope": "x"}}))
