"""Alertmanager's peers deliver the same alert to every replica: three `sre serve` processes on one
PostgreSQL state database store it three times and remediate it once (a real silence in the
sandbox's Alertmanager)."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from sre.local.procs import wait_until
from sre.sandbox import Stack
from sre.sandbox.replicas import Replicas

pytestmark = pytest.mark.slow

ALERT = "SreReplicatedDelivery"

RUNBOOK = f"""\
---
alert: {ALERT}
severity: ticket
remediation:
  action: alertmanager.silence
  params: {{duration: 10m, comment: delivered to every replica}}
  guards: {{cooldown: 1m, max_per_day: 5}}
---
# {ALERT}

## What it means
A test alert that every replica receives.

## Fix
Nothing: the remediation silences it.
"""


@pytest.fixture
def replicas(sandbox: Stack, tmp_path: Path) -> Iterator[Replicas]:
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / f"{ALERT}.md").write_text(textwrap.dedent(RUNBOOK))
    reps = Replicas.start(sandbox, tmp_path / "replicas", 3,
                          extra={"remediation": {"dry_run": False, "runbooks_dir": str(runbooks)}})
    try:
        yield reps
    finally:
        reps.stop()


def payload(fingerprint: str, starts_at: str) -> dict[str, Any]:
    labels = {"alertname": ALERT, "severity": "warning", "test_run": fingerprint}
    return {
        "version": "4", "status": "firing", "receiver": "sre", "groupKey": f'{{}}:{{alertname="{ALERT}"}}',
        "truncatedAlerts": 0, "groupLabels": {"alertname": ALERT}, "commonLabels": labels,
        "commonAnnotations": {}, "externalURL": "http://alertmanager.invalid",
        "alerts": [{"status": "firing", "labels": labels, "annotations": {"summary": "test"},
                    "startsAt": starts_at, "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "",
                    "fingerprint": fingerprint}],
    }


def silences_for(alertmanager_url: str, fingerprint: str) -> list[dict[str, Any]]:
    listed = httpx.get(f"{alertmanager_url}/api/v2/silences").json()
    return [s for s in listed if s["status"]["state"] == "active"
            and {"name": "test_run", "value": fingerprint, "isRegex": False, "isEqual": True} in s["matchers"]]


def test_the_same_alert_to_every_replica_is_remediated_once(sandbox: Stack, replicas: Replicas) -> None:
    assert sandbox.alertmanager is not None
    token = (replicas.root / "secrets" / "webhook-token").read_text().strip()
    fingerprint = f"{int(datetime.now(UTC).timestamp() * 1000):x}"
    body = payload(fingerprint, datetime.now(UTC).isoformat().replace("+00:00", "Z"))

    def post(url: str) -> int:
        r = httpx.post(f"{url}/webhook/alertmanager", json=body, headers={"Authorization": f"Bearer {token}"},
                       timeout=10)
        return r.status_code

    with ThreadPoolExecutor(3) as pool:
        assert list(pool.map(post, [m.url for m in replicas.members])) == [200, 200, 200]

    def all_processed() -> bool:
        rows = replicas.sql("SELECT state FROM alert_inbox WHERE fingerprint = %s", [fingerprint])
        return len(rows) == 3 and all(state == "done" for (state,) in rows)

    wait_until(all_processed, timeout=30, interval=0.1, what="the three deliveries processed")
    acted = replicas.sql("SELECT id, outcome FROM remediations WHERE fingerprint = %s AND acted", [fingerprint])
    assert len(acted) == 1, acted
    rid = acted[0][0]
    wait_until(lambda: silences_for(sandbox.alertmanager.url, fingerprint), timeout=10,  # type: ignore[union-attr]
               what="the silence in Alertmanager")
    silenced_by = {int(m.group(1)) for s in silences_for(sandbox.alertmanager.url, fingerprint)
                   if (m := re.search(r"sre remediation #(\d+)", s["comment"]))}
    assert silenced_by == {rid}
    # The two other deliveries each say why they did not act: a duplicate of the acting record,
    # or (when one arrived while the first held the target's lock) a record stopped by the lock.
    duplicates = replicas.sql("SELECT count(*) FROM remediation_events WHERE remediation_id = %s AND kind = 'duplicate'",
                              [rid])[0][0]
    # (A second such delivery is noted as "repeated" on that same record.)
    locked = replicas.sql(
        "SELECT count(*) + (SELECT count(*) FROM remediation_events e JOIN remediations r ON r.id = e.remediation_id "
        "WHERE r.fingerprint = %s AND r.guard = 'lock' AND e.kind = 'repeated') "
        "FROM remediations WHERE fingerprint = %s AND NOT acted AND guard = 'lock'", [fingerprint, fingerprint])[0][0]
    assert duplicates + locked == 2, (duplicates, locked)
