"""Maintenance windows: recurring ones from config open and close on their cron; scopes match what they say."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sre.config import SreConfig
from sre.errors import UsageError
from sre.remediation.windows import Window, parse_scope, recurring_open

SUNDAY_NIGHTS = SreConfig.model_validate({"remediation": {"maintenance": [
    {"name": "db-patching", "cron": "0 2 * * 0", "duration": "2h", "cluster": "main", "reason": "minor upgrades"}]}})


@pytest.mark.parametrize(("at", "open_"), [
    (datetime(2026, 12, 6, 1, 59, tzinfo=UTC), False),  # a Sunday, just before
    (datetime(2026, 12, 6, 2, 0, tzinfo=UTC), True),
    (datetime(2026, 12, 6, 3, 59, tzinfo=UTC), True),
    (datetime(2026, 12, 6, 4, 0, tzinfo=UTC), False),  # the end is not inside
    (datetime(2026, 12, 7, 2, 30, tzinfo=UTC), False),  # a Monday
])
def test_recurring_window_follows_its_cron(at: datetime, open_: bool) -> None:
    found = recurring_open(SUNDAY_NIGHTS, at)
    assert bool(found) is open_
    if found:
        w = found[0]
        assert (w.id, w.label, w.scope, w.reason) == ("config:db-patching", "config:db-patching", "cluster=main",
                                                      "minor upgrades")
        assert w.starts_at == datetime(2026, 12, 6, 2, 0, tzinfo=UTC)


def test_scopes_cover_what_they_name() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)

    def window(kind: str, value: str = "") -> Window:
        return Window("1", kind, value, at, at, "r", "me")

    labels = {"namespace": "messaging", "cluster": "main"}
    assert window("all").covers("Any", {}, {})
    assert window("alert", "Gateway").covers("Gateway", {}, {}) and not window("alert", "Gateway").covers("X", {}, {})
    assert window("namespace", "messaging").covers("X", labels, {})
    # The action's own scope wins over the alert's labels.
    assert not window("namespace", "messaging").covers("X", labels, {"namespace": "other"})
    assert window("cluster", "main").covers("X", {}, {"cluster": "main"})


def test_parse_scope() -> None:
    assert parse_scope(None, None, None) == ("all", "")
    assert parse_scope("namespace=messaging", None, None) == ("namespace", "messaging")
    assert parse_scope(None, "Gateway", None) == ("alert", "Gateway")
    with pytest.raises(UsageError):
        parse_scope("pod=x", None, None)
    with pytest.raises(UsageError):
        parse_scope("namespace=a", "B", None)


def test_config_refuses_two_scopes_and_a_bad_cron() -> None:
    with pytest.raises(ValueError, match="at most one"):
        SreConfig.model_validate({"remediation": {"maintenance": [
            {"name": "x", "cron": "0 2 * * 0", "duration": "1h", "cluster": "a", "alert": "B"}]}})
    with pytest.raises(ValueError, match="five fields"):
        SreConfig.model_validate({"remediation": {"maintenance": [{"name": "x", "cron": "0 2 * *", "duration": "1h"}]}})
