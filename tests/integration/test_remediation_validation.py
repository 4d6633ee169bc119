"""Alert labels are data: escaped in verify queries, validated before any guard, never widening a target.

Against the sandbox's real Prometheus, Alertmanager and PostgreSQL, with the fake Kubernetes API
(the rig of test_remediation_worker).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from sre.remediation import breaker
from sre.remediation.runbook import render_query, render_template
from sre.remediation.verify import holds
from sre.sandbox import Stack
from tests.integration.test_remediation_worker import _restart_patches, _rig
from tests.remediation_support import alert, write_runbook

pytestmark = pytest.mark.slow

# The payload that once made a verification hold with nothing fixed: it closes the string and the
# selector, then ORs in a vector that always exists.
INJECTION = 'nosuchdb"}) < 300 or vector(1) or max(up{a="'
VERIFY = ('max(pg_stat_activity_max_tx_duration{cluster="{{ labels.cluster }}", node="{{ labels.node }}", '
          'datname="{{ labels.datname }}", state="idle in transaction"}) < 300')


def _idle_runbook(runbooks: Path, within: str = "3s") -> None:
    write_runbook(runbooks, "PostgresIdleInTransaction", "postgres.terminate_idle_in_transaction",
                  target={"cluster": "{{ labels.cluster }}", "node": "{{ labels.node }}"},
                  params={"idle_for": "1h", "datname": "{{ labels.datname }}"},
                  guards={"only_clusters": ["main"], "cooldown": "0s", "max_per_day": 50},
                  verify={"query": VERIFY, "within": within})


def _pg_alert(fingerprint: str, **labels: str) -> dict[str, object]:
    return alert("PostgresIdleInTransaction", fingerprint=fingerprint,
                 **{"cluster": "main", "node": "east1", "datname": "postgres", **labels})


def test_an_injected_label_fails_verification_and_escalates(sandbox: Stack, sandbox_config_path: Path,
                                                            tmp_path: Path, httpserver: HTTPServer) -> None:
    for rig in _rig(sandbox, sandbox_config_path, tmp_path, httpserver):
        labels = {"cluster": "main", "node": "east1", "datname": INJECTION}
        # The payload is real: pasted into the query as text, Prometheus says the condition holds.
        assert holds(rig.cfg, render_template(VERIFY, labels)) is True
        _idle_runbook(rig.runbooks)
        rig.deliver(_pg_alert("ii01", datname=INJECTION))
        rig.drain()
        [r] = rig.remediations()
        assert r.outcome == "executed" and r.result["terminated"] == 0
        assert (r.state, r.verified_at) == ("verify_failed", None)
        assert r.verify_query == render_query(VERIFY, labels) and '\\"}) < 300 or vector(1)' in r.verify_query
        kinds = [k for k, _ in rig.events(r.id)]
        assert "verified" not in kinds and "verify_error" not in kinds  # Prometheus parsed it: one string
        assert [e["kind"] for e in rig.escalated()] == ["verify_failed"]


def test_unknown_targets_are_refused_before_the_guards_and_leave_the_breaker_closed(
        sandbox: Stack, sandbox_config_path: Path, tmp_path: Path, httpserver: HTTPServer) -> None:
    for rig in _rig(sandbox, sandbox_config_path, tmp_path, httpserver,
                    breaker={"max_actions": 20, "max_failures": 2, "window": "10m"}):
        _idle_runbook(rig.runbooks)
        write_runbook(rig.runbooks, "GatewayMemoryHigh", guards={"cooldown": "0s"})
        for i in range(5):
            rig.deliver(_pg_alert(f"uu0{i}", node="nosuchnode"))
        rig.deliver(_pg_alert("uu10", cluster="nosuchcluster"), _pg_alert("uu11", datname=""),
                    alert(fingerprint="uu12", namespace="Messaging_NS"),
                    alert(fingerprint="uu13", deployment="ws-gateway/../../secrets"))
        rig.drain()
        refused = rig.remediations()
        assert [(r.outcome, r.guard, r.acted) for r in refused] == [("refused", "validation", False)] * 9
        assert all("cluster main has no node 'nosuchnode'" in r.reason for r in refused[:5])
        assert "cluster 'nosuchcluster' is not in the inventory" in refused[5].reason
        assert "datname" in refused[6].reason  # "" never means every database
        assert "namespace" in refused[7].reason and "deployment" in refused[8].reason
        assert rig.kube.requests == [] and [e["kind"] for e in rig.escalated()] == ["runbook"] * 9
        assert not breaker.status(rig.store, rig.cfg.remediation.breaker).open
        # The next good alert acts: nothing was counted as a failure.
        rig.deliver(alert(fingerprint="uu20"))
        rig.drain()
        assert rig.remediations()[-1].outcome == "executed" and len(_restart_patches(rig.kube)) == 1


def test_a_silence_matches_exactly_the_alert(sandbox: Stack, sandbox_config_path: Path, tmp_path: Path,
                                             httpserver: HTTPServer) -> None:
    for rig in _rig(sandbox, sandbox_config_path, tmp_path, httpserver):
        write_runbook(rig.runbooks, "NoisyAlert", "alertmanager.silence")
        labels = alert("NoisyAlert", fingerprint="ss01", pod=".*", instance="a|b")["labels"]
        rig.deliver(alert("NoisyAlert", fingerprint="ss01", pod=".*", instance="a|b"))
        rig.drain()
        [r] = rig.remediations()
        sil = rig.silence(r.silence_id)
        assert {(m["name"], m["value"]) for m in sil["matchers"]} == set(labels.items())  # type: ignore[union-attr]
        assert all(m["isEqual"] and not m["isRegex"] for m in sil["matchers"])
