"""`--target` for a point-in-time recovery: latest, latest-minus <duration>, or an ISO time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sre.checks.pitr import pg_time, resolve_target
from sre.errors import UsageError

NOW = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)


@pytest.mark.parametrize(("spec", "expected"), [
    ("latest", None),
    ("latest-minus 5m", NOW - timedelta(minutes=5)),
    ("latest-minus=30s", NOW - timedelta(seconds=30)),
    ("latest - minus 1h", NOW - timedelta(hours=1)),
    ("2026-03-01T03:58:00Z", datetime(2026, 3, 1, 3, 58, tzinfo=UTC)),
    ("2026-03-01 03:58:00", datetime(2026, 3, 1, 3, 58, tzinfo=UTC)),  # naive: UTC
    ("2026-03-01T05:58:00+02:00", datetime(2026, 3, 1, 3, 58, tzinfo=UTC)),
])
def test_targets(spec: str, expected: datetime | None) -> None:
    assert resolve_target(spec, NOW).at == expected


@pytest.mark.parametrize("spec", ["yesterday", "latest-minus soon", "2026-03-01T05:00:00Z"])
def test_bad_or_future_targets_are_usage_errors(spec: str) -> None:
    with pytest.raises(UsageError):
        resolve_target(spec, NOW)


def test_the_target_as_postgresql_reads_it() -> None:
    assert pg_time(datetime(2026, 3, 1, 3, 58, 0, 250000, tzinfo=UTC)) == "2026-03-01 03:58:00.250000+00"
