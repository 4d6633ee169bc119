"""Every alert the sandbox can fire, made to fire by a real fault, through the real exporters,
Prometheus (the shipped rules at the test-time timings of sre.sandbox.timing.SANDBOX) and
Alertmanager; the automated runbooks closed from fault to verified fix; and the live lint.

One stack for the module (tests.alert_loop.closed_loop). Independent faults are injected
together. The tests run in file order: the breaker opens (and is reset) after the closed loops
that must act, and the last three stop servers for good.

Closed by their automated runbooks, from fault to verified fix: PostgresIdleInTransaction,
PostgresLongRunningTransaction, PostgresConnectionsNearMax (a pool leaking idle transactions),
BackupOlderThanRpo (backup.take), ApiEventLoopLagHigh and WebsocketDeliveryLatencyHigh
(kubernetes.scale through the fake Kubernetes API), ReplicationCheckFailing / SreJobStale
(job.run, one run for both; a stopped replica, restarted). BackupVerificationFailing's job.run
cannot fix its fault (versioning suspended): its verification fails, SreRemediationFailing and
SreRemediationBreakerOpen fire.

Fired here: ReplicaLagHigh, ReplicaLagBytesHigh, ReplicaDisconnected (PostgreSQL and Redis),
RedisReplicaLinkDown, RedisMemoryNearMax, RedisEvictions, RedisSnapshotStale,
TlsCertificateExpiringSoon, EndpointProbeFailing, the API (5xx, 429, 401, latency, event loop) and
WebSocket alerts and SLO burns the simulator drives, PrometheusTargetDown, SreWebhookErrors,
SreJobErrors, BackupOlderThanRpo, BackupVerificationFailing, DrNotReady,
DrEstimateBeyondObjective, PrometheusRuleEvaluationFailures, PrometheusNotificationsFailing,
SreRemediationFailing, SreRemediationBreakerOpen; ReplicationCheckFailing and SreJobStale (a
stopped replica, which must not be a PostgresPrimaryDown); PostgresPrimaryDown, SreDown,
SreSchedulerNotRunning and AlertmanagerNotificationsFailing (a stopped primary and service); last,
PrometheusNotConnectedToAlertmanagers (read in Prometheus: it has no Alertmanager to send it to).

Not fired here, and why (docs/alerts.md keeps the same list):
- KubePodCrashLooping, KubeDeploymentReplicasUnavailable, KubeHpaMaxedOut, KubeNodeNotReady,
  ApiCpuSaturated, WebsocketGatewayMemoryHigh: kube-state-metrics and cAdvisor need a Kubernetes
  cluster; there is none here.
- NodeFilesystemAlmostFull: filling a real filesystem of the machine is not a test's to do, and
  tmpfs is excluded by the rule.
- FailoverDrillFailed, FailoverDrillOverdue: published by the drill.failover job of a staging
  service (its outcomes are tested in tests/integration/test_drill_*); overdue needs 35 days.
- IngressRateLimitedSurge: no ingress controller in the sandbox.

BackupWalGap and BackupPitrFailing fire in tests/e2e/test_backup_alerts_fire.py (a pgBackRest
repository that lost a segment; this stack has no stanza, whose archive would be judged against
this config's 3 s RPO).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sre.adapters.s3 import client as s3_client
from sre.content import alerts_dir, content_dir
from sre.local.procs import wait_until
from sre.provision.dashboards_validate import for_live, live_check
from sre.provision.grafana import sources_for
from sre.provision.prometheus import desired_files
from tests.alert_loop import (
    NAMESPACE,
    REPLICAS,
    Loop,
    app_slow,
    app_trouble,
    closed_loop,
    dead_alertmanager,
    failing_probe,
    failing_rule,
    idle_in_transaction,
    leaked_pool,
    long_running_query,
    redis_full,
    redis_link_cut,
    replay_paused,
    replica_cut_and_behind,
    unauthorised_webhook_posts,
    versioning_suspended,
)
from tests.cli import sre

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    with closed_loop(tmp_path_factory.mktemp("loop")) as env:
        yield env


def _wait_seen(loop: Loop, expected: list[tuple[str, dict[str, str]]], since: float, timeout: float) -> None:
    def missing() -> list[str]:
        return [f"{name}{labels}" for name, labels in expected if loop.watch.seen(name, since, **labels) is None]

    try:
        wait_until(lambda: not missing(), timeout=timeout, interval=0.2, what="every expected alert in Alertmanager")
    except TimeoutError:
        rows = [(r["id"], r["alertname"], r["state"], r["outcome"], r["guard"], r["reason"])
                for r in loop.api("/api/remediations?limit=30")]
        pytest.fail(f"never reached Alertmanager: {missing()}; remediations: {rows}")


def test_live_lint_and_dashboards_find_a_series_for_every_selector(loop: Loop) -> None:
    assert loop.stack.prometheus is not None
    wait_until(lambda: loop.query('sre_backup_verify_success{job="sre", check="backup.freshness"}'),
               timeout=20, interval=0.2, what="the backup freshness job scraped")
    # The shipped runbooks (the service reads a copy at test timings).
    lint = sre("alerts", "lint", "--live", "--config", str(loop.cfg_path), "--runbooks-dir", str(content_dir("runbooks")),
               "--output", "json")
    report = json.loads(lint.stdout)
    assert lint.returncode == 0, [f["message"] for f in report["findings"]]
    # What the sandbox lacks is listed with its reason, nothing else is.
    assert {f["rule"] for f in report["expected_absent"]} >= {"KubeNodeNotReady", "ApiCpuSaturated"}
    live = live_check(sources_for(loop.cfg), loop.stack.prometheus.url, absent=loop.cfg.alerts.live_absent,
                      require_all=True)
    assert live["failed"] == []
    # Instant queries: a scrape that timed out on a busy machine leaves a gap; ask those again.
    empty = {q["expr"] for q in live["empty_required"]}

    def all_answered() -> bool:
        empty.difference_update({expr for expr in list(empty) if loop.query(for_live(expr))})
        return not empty

    try:
        wait_until(all_answered, timeout=20, interval=0.5, what="data for every dashboard query")
    except TimeoutError:
        pytest.fail(f"no data for: {sorted(empty)}")
    assert live["queries"] > 150 and live["empty_other"] == [] and live["expected_empty"]


def _remediation(loop: Loop, alertname: str) -> dict[str, Any] | None:
    rows = [r for r in loop.api("/api/remediations") if r["alertname"] == alertname and r["outcome"] == "executed"]
    return rows[0] if rows else None


def _verified(loop: Loop, alertname: str, timeout: float = 40) -> dict[str, Any]:
    try:
        return wait_until(lambda: (r := _remediation(loop, alertname)) and r["state"] == "verified" and r,
                          timeout=timeout, interval=0.2, what=f"{alertname} fixed and verified")
    except TimeoutError:
        rows = [(r["id"], r["alertname"], r["state"], r["outcome"], r["guard"], r["reason"])
                for r in loop.api("/api/remediations?limit=30")]
        pytest.fail(f"{alertname} not fixed and verified; remediations: {rows}")


def test_postgres_sessions_closed_loop_from_fault_to_verified_fix(loop: Loop) -> None:
    """A forgotten transaction on the primary and a report running for minutes on the replica
    (two targets: each runbook's target lock and cooldown are per node)."""
    assert loop.stack.postgres is not None
    pg = loop.stack.postgres
    with idle_in_transaction(pg.primary.dsn) as idle, long_running_query(pg.replica.dsn) as slow:
        fault_at = time.time()
        done = wait_until(lambda: all((r := _remediation(loop, n)) and r["state"] == "verified"
                                      for n in ("PostgresIdleInTransaction", "PostgresLongRunningTransaction")),
                          timeout=40, interval=0.2, what="both remediations verified")
        assert done
        with pytest.raises(psycopg.OperationalError):  # the server terminated the forgotten session
            idle.execute("SELECT 1")
        wait_until(lambda: "error" in slow, timeout=5, what="the long query's end")
        assert slow["error"] == "QueryCanceled"
    for name, node in (("PostgresIdleInTransaction", "east1"), ("PostgresLongRunningTransaction", "west1")):
        labels = {"cluster": "main", "node": node, "datname": "postgres"}
        assert loop.watch.seen(name, fault_at, **labels)
        # Resolved: gone from Prometheus's alerts and from Alertmanager's active ones.
        wait_until(lambda n=name, lb=labels: not loop.firing_in_prometheus(n) and not loop.watch.active(n, **lb),
                   timeout=20, interval=0.2, what=f"{name} resolved")
        rem = _remediation(loop, name)
        assert rem is not None
        detail = loop.api(f"/api/remediations/{rem['id']}")
        kinds = [e["kind"] for e in detail["events"]]
        assert kinds[:3] == ["decided", "silenced", "executed"] and "verified" in kinds, kinds
        # The audit holds each moment, in order: fired, acted, done, verified. (resolved_at follows
        # Alertmanager's resolved notification, held back while the remediation's silence runs:
        # docs/remediation.md, "Silence".)
        moments = [rem["starts_at"], rem["started_at"], rem["finished_at"], rem["verified_at"]]
        assert all(moments) and moments == sorted(moments), moments
        assert rem["labels"]["alertname"] == name and rem["runbook"]


def _scale_requests(loop: Loop, deployment: str) -> list[Any]:
    return loop.kube.requests_to("PATCH", rf"/namespaces/{NAMESPACE}/deployments/{deployment}/scale$")


def _audit_in_order(loop: Loop, rem: dict[str, Any]) -> list[str]:
    """The remediation's events; its moments (fired, acted, done, verified) are in order."""
    moments = [rem["starts_at"], rem["started_at"], rem["finished_at"], rem["verified_at"]]
    assert all(moments) and moments == sorted(moments), moments
    return [e["kind"] for e in loop.api(f"/api/remediations/{rem['id']}")["events"]]


def _resolved(loop: Loop, name: str, timeout: float = 30, **labels: str) -> None:
    """Gone from Prometheus's alerts and from Alertmanager's active ones."""
    wait_until(lambda: not loop.firing_in_prometheus(name, **labels) and not loop.watch.active(name, **labels),
               timeout=timeout, interval=0.2, what=f"{name} resolved")


def test_scale_runbooks_closed_loop_through_the_kubernetes_api(loop: Loop) -> None:
    """The API's event loop lags and the gateway delivers slowly (the simulator): each scale runbook
    adds a replica through the Kubernetes API (the fake). The fake runs no pods, so the test plays
    the cluster: once a Deployment has its new replica, the simulator's symptom eases, and the
    runbook's verification sees it through Prometheus."""
    stack = loop.stack
    assert stack.appsim is not None
    relief = {"ApiEventLoopLagHigh": ("api", {"api": {"event_loop_lag_p99_seconds": 0.01}}),
              "WebsocketDeliveryLatencyHigh": ("websocket-gateway", {"gateway": {"delivery_latency_seconds": 0.05}})}
    with app_slow(stack):
        fault_at = time.time()
        for deployment, eased in relief.values():
            wait_until(lambda d=deployment: _scale_requests(loop, d), timeout=40, interval=0.2,
                       what=f"deployment {deployment} scaled")
            stack.appsim.control(eased)
        rems = {name: _verified(loop, name) for name in relief}
    for name, (deployment, _) in relief.items():
        assert loop.watch.seen(name, fault_at, namespace=NAMESPACE)
        [patch] = _scale_requests(loop, deployment)
        assert patch.body == {"spec": {"replicas": REPLICAS + 1}}
        assert patch.headers["user-agent"].startswith("OpenAPI-Generator")  # the real kubernetes client
        dep = loop.kube.deployment(NAMESPACE, deployment)
        assert dep is not None and dep["spec"]["replicas"] == REPLICAS + 1
        rem = rems[name]
        assert rem["action"] == "kubernetes.scale" and rem["result"]["from"] == REPLICAS
        kinds = _audit_in_order(loop, rem)
        assert kinds[:3] == ["decided", "silenced", "executed"] and "verified" in kinds, kinds
        _resolved(loop, name, namespace=NAMESPACE)


def test_independent_faults_fire_their_alerts_together(loop: Loop) -> None:
    stack = loop.stack
    assert stack.postgres and stack.appsim and stack.exporters
    with contextlib.ExitStack() as faults:
        since = time.time()
        pool = faults.enter_context(leaked_pool(stack.postgres.primary.dsn, 80))
        faults.enter_context(replica_cut_and_behind(stack))
        faults.enter_context(redis_link_cut(stack))
        faults.enter_context(redis_full(stack))
        probe = faults.enter_context(failing_probe(stack))
        faults.enter_context(app_trouble(stack))
        stack.exporters.by_job("node")[0].stop()
        unauthorised_webhook_posts(loop.service.url)
        expected: list[tuple[str, dict[str, str]]] = [
            ("PostgresConnectionsNearMax", {"cluster": "main", "node": "east1"}),
            ("ReplicaLagHigh", {"cluster": "main", "replica": "west1"}),
            ("ReplicaLagBytesHigh", {"cluster": "main", "replica": "west1"}),
            ("ReplicaDisconnected", {"cluster": "main", "replica": "west1"}),
            ("ReplicaDisconnected", {"cluster": "cache", "replica": "replica"}),
            ("RedisReplicaLinkDown", {"job": "redis", "node": "replica"}),
            ("RedisMemoryNearMax", {"job": "redis", "node": "primary"}),
            ("RedisEvictions", {}),
            ("TlsCertificateExpiringSoon", {"instance": stack.appsim.tls_url}),
            ("EndpointProbeFailing", {"instance": probe}),
            ("ApiHighErrorRatio", {"namespace": "messaging"}),
            ("ApiLatencyP99High", {"namespace": "messaging"}),
            ("ApiEventLoopLagHigh", {"pod": "api-sim-0"}),
            ("ApiRateLimitedSurge", {"namespace": "messaging", "route": "/messages"}),
            ("ApiAuthFailuresHigh", {"namespace": "messaging"}),
            ("ApiAvailabilityFastBurn", {}), ("ApiAvailabilitySlowBurn", {}),
            ("ApiLatencyFastBurn", {}), ("ApiLatencySlowBurn", {}),
            ("WebsocketDeliveryLatencyHigh", {"namespace": "messaging"}),
            ("WebsocketDeliveryFastBurn", {}), ("WebsocketDeliverySlowBurn", {}),
            ("WebsocketDisconnectRateHigh", {"namespace": "messaging"}),
            ("WebsocketConnectionsDropped", {"namespace": "messaging"}),
            ("PrometheusTargetDown", {"job": "node"}),
            ("SreWebhookErrors", {}),
        ]
        _wait_seen(loop, expected, since, timeout=40)
        # Closed by its runbook: the leaked sessions terminated, connections back under 80%.
        rem = _verified(loop, "PostgresConnectionsNearMax")
        assert rem["verified_at"] > rem["finished_at"] > rem["started_at"] > rem["starts_at"]
        assert stack.postgres.primary.sql(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pool-leak'") == [(0,)]
        with pytest.raises(psycopg.OperationalError):
            pool[0].execute("SELECT 1")
    # ReplicaDisconnected's runbook only tells a person: its escalation reached the receiver.
    wait_until(lambda: any(e.get("kind") == "notify" and e.get("alertname") == "ReplicaDisconnected"
                           for e in loop.escalations.payloads), timeout=20, interval=0.2,
               what="ReplicaDisconnected escalated")
    # The backup taken at start is older than the tight RPO of the test config within seconds;
    # its runbook took a new one, which the freshness check then found in the bucket.
    assert loop.watch.seen("BackupOlderThanRpo", cluster="main")
    rem = _verified(loop, "BackupOlderThanRpo")
    taken = rem["result"]
    s3 = s3_client(loop.cfg.aws)
    assert s3.head_object(Bucket=taken["bucket"], Key=taken["key"])["ContentLength"] == taken["size"]


Expected = list[tuple[str, dict[str, str]]]
PAIR = {"from": "us-east-1", "to": "eu-west-1"}

# Each row: what goes wrong, the fault (a context manager on the loop; nullcontext for a fault
# present since the start), and the alerts it fires given what the fault yields. The longest chain
# first (a backups.verify run, its verification window, the breaker).
SERVICE_FAULTS: list[tuple[str, Callable[[Loop], AbstractContextManager[Any]], Callable[[Any], Expected]]] = [
    ("versioning suspended on the backup bucket: its job.run runbook cannot fix that, its verification "
     "fails, the breaker (max_failures 1 here) opens",
     lambda lp: versioning_suspended(lp.cfg, lp.cfg.backups["main"].bucket),
     lambda _: [("BackupVerificationFailing", {"check": "bucket.versioning"}),
                ("SreRemediationFailing", {"action": "job.run"}), ("SreRemediationBreakerOpen", {})]),
    ("replay paused on the replica, the primary writing on",
     lambda lp: replay_paused(lp.stack),
     lambda _: [("DrEstimateBeyondObjective", {**PAIR, "cluster": "main"})]),
    ("a rule group whose rule fails at every evaluation",
     lambda lp: failing_rule(lp.stack),
     lambda group: [("PrometheusRuleEvaluationFailures", {"rule_group": group})]),
    ("Prometheus sending to a second Alertmanager that is not there",
     lambda lp: dead_alertmanager(lp.stack),
     lambda dead: [("PrometheusNotificationsFailing", {"alertmanager": f"http://{dead}/api/v2/alerts"})]),
    ("since the start: the Redis snapshot taken then is older than its max_age of seconds",
     lambda lp: contextlib.nullcontext(), lambda _: [("RedisSnapshotStale", {"set": "cache"})]),
    ("since the start: no failover drill of the pair has passed (the failover path is unmeasured)",
     lambda lp: contextlib.nullcontext(), lambda _: [("DrNotReady", PAIR)]),
    ("since the start: the elk.reconcile job's Elasticsearch does not answer",
     lambda lp: contextlib.nullcontext(), lambda _: [("SreJobErrors", {"exported_job": "elk.reconcile"})]),
]


def test_service_backup_dr_and_monitoring_faults_fire_their_alerts(loop: Loop) -> None:
    # The breaker opens at the first failed remediation here: none may have failed before.
    failed = [(r["id"], r["alertname"], r["state"], r["reason"]) for r in loop.api("/api/remediations?limit=100")
              if r["outcome"] == "failed" or r["state"] == "verify_failed"]
    assert not failed and loop.api("/api/remediations/breaker")["open"] is False, failed
    with contextlib.ExitStack() as faults:
        since = time.time()
        expected: Expected = []
        for _what, fault, alerts in SERVICE_FAULTS:
            expected += alerts(faults.enter_context(fault(loop)))
        _wait_seen(loop, expected, since, timeout=75)
        # The failed verification was escalated, and the breaker holds automation back for a person.
        rem = next(r for r in loop.api("/api/remediations?limit=50")
                   if r["alertname"] == "BackupVerificationFailing" and r["outcome"] == "executed")
        assert rem["state"] == "verify_failed" and rem["action"] == "job.run"
        assert any(e.get("kind") == "verify_failed" and e.get("remediation_id") == rem["id"]
                   for e in loop.escalations.payloads)
        assert loop.api("/api/remediations/breaker")["open"] is True
        # DR: the replica's lag is the data at risk now, beyond the 3 s RPO of the test config; the
        # pair is not ready for want of a passed drill.
        [rpo] = loop.query('sre_dr_estimated_rpo_seconds{job="sre", cluster="main"}')
        assert float(rpo["value"][1]) > 3
        assert loop.query('sre_dr_reasons{job="sre", what="drills", severity="not_ready"} > 0')
    # A person closes the breaker; the service's gauge follows and the page resolves.
    reset = sre("remediation", "breaker", "reset", "--config", str(loop.cfg_path), "--by", "on-call")
    assert reset.returncode == 0, reset.stderr
    _resolved(loop, "SreRemediationBreakerOpen")


def test_a_stopped_replica_is_not_a_primary_down(loop: Loop) -> None:
    assert loop.stack.postgres is not None
    since = time.time()
    before = max((r["id"] for r in loop.api("/api/remediations?limit=1")), default=0)
    loop.stack.postgres.replica.stop()
    # Three scrapes in a row (3 s apart) say pg_up 0 for west1: several evaluations of a rule
    # with for: 0s.
    wait_until(lambda: loop.query('max_over_time(pg_up{node="west1"}[8s]) == 0 '
                                  'and count_over_time(pg_up{node="west1"}[8s]) >= 3'),
               timeout=30, interval=0.2, what="west1 down for three scrapes")
    _wait_seen(loop, [("ReplicationCheckFailing", {"cluster": "main", "replica": "west1"}),
                      ("SreJobStale", {"exported_job": "replicas.check"})], since, timeout=30)
    assert not loop.firing_in_prometheus("PostgresPrimaryDown")
    assert loop.watch.seen("PostgresPrimaryDown", since) is None
    # The job.run runbook ran the check once more (one run for both alerts: one target, one lock);
    # the replica comes back (restarted, as the runbook expects of a transient), and the
    # verification sees the check succeed.
    def rerun() -> dict[str, Any] | None:
        return next((r for r in loop.api("/api/remediations?limit=50")
                     if r["action"] == "job.run" and r["outcome"] == "executed"
                     and r["alertname"] in ("ReplicationCheckFailing", "SreJobStale") and r["id"] > before), None)

    try:
        rem = wait_until(rerun, timeout=30, interval=0.2, what="the check run again by job.run")
    except TimeoutError:
        rows = [(r["id"], r["alertname"], r["state"], r["outcome"], r["guard"], r["reason"])
                for r in loop.api("/api/remediations?limit=30") if r["id"] > before]
        pytest.fail(f"no job.run executed; remediations since the replica stopped: {rows}")
    runs = [r for r in loop.api("/api/runs?kind=replicas.check&limit=100") if r["trigger"] == "remediation"]
    assert any(r["id"] == rem["result"]["run_id"] and r["kind"] == "replicas.check" for r in runs)
    loop.stack.postgres.replica.start()
    rem = _verified(loop, rem["alertname"])
    assert "verified" in _audit_in_order(loop, rem)
    _resolved(loop, "ReplicationCheckFailing", cluster="main", replica="west1")


def test_a_stopped_primary_and_a_stopped_service_page(loop: Loop) -> None:
    assert loop.stack.postgres is not None
    since = time.time()
    loop.stack.postgres.primary.stop()
    loop.service.stop()
    # No replica of the service runs, so none holds the scheduler either.
    _wait_seen(loop, [("PostgresPrimaryDown", {"cluster": "main", "node": "east1"}), ("SreDown", {}),
                      ("SreSchedulerNotRunning", {}),
                      # Alertmanager's deliveries to the stopped service now fail.
                      ("AlertmanagerNotificationsFailing", {"integration": "webhook"})], since, timeout=40)
    assert loop.watch.seen("PostgresPrimaryDown", since, node="west1") is None
    assert Path(loop.cfg_path).exists()


def test_prometheus_without_an_alertmanager_says_so(loop: Loop) -> None:
    """Last: with no Alertmanager to send to, the alert can only be read in Prometheus itself."""
    assert loop.stack.prometheus is not None
    loop.stack.prometheus.set_alertmanagers([])
    wait_until(lambda: loop.firing_in_prometheus("PrometheusNotConnectedToAlertmanagers", alertstate="firing"),
               timeout=30, interval=0.2, what="PrometheusNotConnectedToAlertmanagers firing in Prometheus")


# What this module cannot fire, and why (docs/alerts.md says the same); the last test holds every
# other shipped alert to having been seen.
NOT_FIRED_HERE = {
    **dict.fromkeys(("KubePodCrashLooping", "KubeDeploymentReplicasUnavailable", "KubeHpaMaxedOut", "KubeNodeNotReady",
                     "ApiCpuSaturated", "WebsocketGatewayMemoryHigh"),
                    "kube-state-metrics and cAdvisor need a Kubernetes cluster"),
    "NodeFilesystemAlmostFull": "a real filesystem of the machine would have to fill (tmpfs is excluded)",
    "FailoverDrillFailed": "published by the drill.failover job of a staging service",
    "FailoverDrillOverdue": "needs 35 days without a passed drill",
    "IngressRateLimitedSurge": "no ingress controller in the sandbox",
    "BackupWalGap": "fired in tests/e2e/test_backup_alerts_fire.py (a pgBackRest stanza)",
    "BackupPitrFailing": "fired in tests/e2e/test_backup_alerts_fire.py (a pgBackRest stanza)",
}


def test_every_shipped_alert_fired_or_listed_with_its_reason(loop: Loop, request: pytest.FixtureRequest) -> None:
    """After the module's faults: each alert of the rendered tree was seen (in Alertmanager, or in
    Prometheus for the one that has no Alertmanager), or is listed above with its reason."""
    module = request.node.module
    ran = {item.name for item in request.session.items if item.module is module}
    if ran != {name for name in vars(module) if name.startswith("test_")}:
        pytest.skip("holds only after every test of the module has run")
    shipped = {str(rule["alert"]) for f in desired_files(alerts_dir(loop.cfg), loop.cfg.alerts.runbook_base_url)
               for group in f.data["groups"] for rule in group.get("rules") or [] if "alert" in rule}
    seen = {name for name, _labels in loop.watch.first} | {a["metric"]["alertname"] for a in loop.query("ALERTS")}
    assert not set(NOT_FIRED_HERE) - shipped, "listed but not shipped"
    assert not set(NOT_FIRED_HERE) & seen, f"listed as not fired here, yet seen: {set(NOT_FIRED_HERE) & seen}"
    assert shipped - seen == set(NOT_FIRED_HERE), sorted(shipped - seen - set(NOT_FIRED_HERE))
