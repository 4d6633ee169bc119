"""Drills that test the alerting, against a Prometheus and an Alertmanager of this module's own:
the shipped rules (each `for:` rendered as at most 1 s, a test-time rendering override; the
shipped files are not touched; evaluation every second), a PostgreSQL pair of the module's own
with a postgres_exporter per node (job `postgres`, scraped every 3 s as in the sandbox), the
service's replication check exporting its metrics as job `sre`, and the remediation worker.
Alertmanager notifies a recording receiver: what it records is who was paged.

The unplanned drill expects the defaults: PostgresPrimaryDown (from the exporter's `pg_up`) and
ReplicaDisconnected (from the service's own replication metrics)."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import select

from sre.adapters.prometheus import PrometheusClient
from sre.api.app import create_app
from sre.checks.replication import check_postgres
from sre.config import SreConfig, load_config
from sre.content import alerts_dir
from sre.drills import lock
from sre.drills.failover import DrillRequest, FailoverDrill, run_drill
from sre.drills.history import get_from
from sre.hashing import content_hash
from sre.local.procs import free_port, wait_until
from sre.provision.prometheus import RulesDirTarget, desired_files
from sre.provision.target import apply, plan
from sre.remediation.guards import drill as drill_guard
from sre.remediation.worker import RemediationWorker
from sre.sandbox import Stack
from sre.sandbox.exporters import Exporters
from sre.store import Store, open_store
from sre.store.drills import DrillReport
from sre.store.remediation import Remediation
from tests.cli import SRE
from tests.drill_env import DrillEnv, assert_topology, start_drill_env
from tests.receiver import WebhookReceiver
from tests.remediation_support import payload, silences

pytestmark = pytest.mark.slow

FOR_CAP = 1.0
STAND_IN_ALERTS = ("SreDown", "SreSchedulerNotRunning")
MARGIN = 10.0  # postgres_exporter is scraped every 3 s and answers in about 1 s once its server is down
EXPECTED = ["PostgresPrimaryDown", "ReplicaDisconnected"]
BASE_URL = "https://runbooks.example.com"


class _Only(Collector):
    """The service's sre_replication_* families of cluster main as its /metrics shows them, and its
    scheduler running (the job runs under it); nothing else of this test process. Tests run before
    in the same worker leave other clusters' series in the process-wide registry, some failing."""

    def collect(self) -> Iterable[Any]:
        for family in REGISTRY.collect():
            if family.name.startswith("sre_replication_"):
                family.samples = [s for s in family.samples if s.labels.get("cluster") == "main"]
                yield family
        yield GaugeMetricFamily("sre_scheduler_running", "1 while this process runs the scheduler.", value=1)


class ReplicationJob:
    """The service's replicas.check job every 0.25 s, its metrics scraped by Prometheus as job `sre`."""

    def __init__(self, cfg: SreConfig) -> None:
        self.cfg = cfg
        registry = CollectorRegistry()
        registry.register(_Only())
        self.port = free_port()
        self.server, self.thread = start_http_server(self.port, addr="127.0.0.1", registry=registry)
        self._stop = threading.Event()
        self.loop = threading.Thread(target=self._run, daemon=True)
        self.loop.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            check_postgres(self.cfg, "main")
            self._stop.wait(0.25)

    def close(self) -> None:
        self._stop.set()
        self.loop.join(timeout=10)
        self.server.shutdown()


@dataclass
class Rig:
    stack: Stack
    env: DrillEnv
    receiver: WebhookReceiver
    job: ReplicationJob
    token: str

    @property
    def am_url(self) -> str:
        assert self.stack.alertmanager
        return self.stack.alertmanager.url

    @property
    def prom_url(self) -> str:
        assert self.stack.prometheus
        return self.stack.prometheus.url

    def config(self, **alerts: Any) -> Path:
        """The module's sre.yaml with drills.alerts changed; written beside it."""
        data = yaml.safe_load(self.env.config_path.read_text())
        data["drills"]["alerts"] = {**data["drills"]["alerts"], **alerts}
        path = self.env.state_dir / f"sre-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def apply_rules(self, drop: str | None = None) -> None:
        """The shipped rules into Prometheus (for: capped), through the apply path; `drop` leaves one out.

        The alerts about the service itself are left out too: job `sre` here is a stand-in served
        from the test process, and on a loaded machine one scrape of it can miss, which with `for:`
        capped to a second pages SreDown in the middle of the drill.
        """
        assert self.stack.prometheus
        files = desired_files(alerts_dir(self.env.config()), BASE_URL, for_cap=FOR_CAP)
        left_out = {*STAND_IN_ALERTS, *([drop] if drop else [])}
        for f in files:
            for g in f.data["groups"]:
                g["rules"] = [r for r in g["rules"] if r.get("alert") not in left_out]
            f.hash = content_hash(f.data)
        rules_dir = self.stack.prometheus.rules_dir
        with RulesDirTarget(files, rules_dir, PrometheusClient(self.prom_url), check=False) as target:
            apply(target, plan(target))

    def quiet(self) -> None:
        """No alert of the drilled cluster is firing (the previous drill's have resolved)."""
        def none() -> bool:
            alerts = httpx.get(f"{self.am_url}/api/v2/alerts", timeout=5).json()
            return not [a for a in alerts if a["labels"].get("cluster") == "main"]

        wait_until(none, timeout=30, interval=0.2, what="no alert of cluster main in Alertmanager")

    def push(self, name: str, **labels: str) -> None:
        # Both times: given only endsAt, Alertmanager 0.25 takes it for startsAt too.
        now = datetime.now(UTC)
        alert = {"labels": {"alertname": name, **labels}, "startsAt": now.isoformat().replace("+00:00", "Z"),
                 "endsAt": (now + timedelta(seconds=8)).isoformat().replace("+00:00", "Z")}
        httpx.post(f"{self.am_url}/api/v2/alerts", json=[alert], timeout=5).raise_for_status()


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    stack = Stack.start({"prometheus", "alertmanager", "moto"})
    receiver = WebhookReceiver()
    env: DrillEnv | None = None
    job: ReplicationJob | None = None
    exporters: Exporters | None = None
    try:
        assert stack.prometheus and stack.alertmanager
        stack.alertmanager.set_webhook(receiver.url)
        secrets_dir = stack.root / "secrets"
        secrets_dir.mkdir(mode=0o700)
        token = uuid.uuid4().hex
        (secrets_dir / "webhook").write_text(token)
        env = start_drill_env(stack, extra={
            "endpoints": {"prometheus": {"url": stack.prometheus.url}, "alertmanager": {"url": stack.alertmanager.url}},
            "alerts": {"rules_dir": str(stack.prometheus.rules_dir), "runbook_base_url": BASE_URL},
            "webhook": {"auth": "bearer", "token": {"file": str(secrets_dir / "webhook")}},
            "drills": {"alerts": {"margin": f"{MARGIN:g}s", "poll": "0.25s", "settle": "30s", "deadline": "10m"}},
        })
        exporters = Exporters.start(stack.root / "exporters", postgres=env.pair, redis=None)
        exporters.register(stack.prometheus)
        job = ReplicationJob(env.config())
        stack.prometheus.set_scrape_targets("sre", [f"127.0.0.1:{job.port}"])
        r = Rig(stack, env, receiver, job, token)
        r.apply_rules()
        with PrometheusClient(stack.prometheus.url) as prom:
            wait_until(lambda: prom.query('sre_replication_connected{job="sre", cluster="main"} == 1'), timeout=30,
                       what="the replication metrics scraped")
            wait_until(lambda: len(prom.query('pg_up{job="postgres", cluster="main"} == 1')) == 2, timeout=30,
                       what="both postgres_exporters scraped")
            # Settled: what fires at start-up (Alertmanager not yet discovered, say) has fired or gone,
            # in an evaluation of every group made after Prometheus found Alertmanager.
            wait_until(lambda: prom.query("prometheus_notifications_alertmanagers_discovered >= 1"), timeout=30,
                       what="Alertmanager discovered")
            found = datetime.now(UTC)

            def settled() -> bool:
                evaluated = all(datetime.fromisoformat(g["lastEvaluation"]) > found for g in prom.rule_groups())
                return evaluated and not [a for a in prom.alerts() if a["state"] == "pending"]

            wait_until(settled, timeout=30, what="no alert pending after a full evaluation")
        yield r
    finally:
        if exporters is not None:
            exporters.stop()
        if job is not None:
            job.close()
        if env is not None:
            env.stop()
        receiver.close()
        stack.stop()


def _drill_silences(am_url: str, drill_id: int) -> list[dict[str, Any]]:
    return [s for s in silences(am_url) if s["comment"].startswith(f"sre drill #{drill_id} ")]


def _paged(receiver: WebhookReceiver, since: float) -> set[str]:
    """Alert names Alertmanager notified as firing since `since`."""
    return {a["labels"]["alertname"] for a in receiver.alerts()
            if a["status"] == "firing" and datetime.fromisoformat(a["startsAt"]).timestamp() >= since - 1}


def _remediate(cfg: SreConfig, store: Store, token: str, alert: dict[str, Any]) -> Remediation:
    """Deliver one alert through the webhook and let the worker decide about it."""
    worker, client = RemediationWorker(cfg, store), TestClient(create_app(cfg, store))
    with client:
        resp = client.post("/webhook/alertmanager", json=payload(alert), headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200, resp.text

        def decided() -> Remediation | None:
            worker.run_once()
            with store.session() as s:
                return s.scalar(select(Remediation).where(Remediation.fingerprint == alert["fingerprint"]))

        return wait_until(decided, timeout=20, interval=0.1, what="the worker's decision")


def _idle_alert(fingerprint: str) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {"status": "firing", "fingerprint": fingerprint, "startsAt": now, "endsAt": "0001-01-01T00:00:00Z",
            "labels": {"alertname": "PostgresIdleInTransaction", "cluster": "main", "node": "east1",
                       "datname": "postgres", "severity": "ticket"},
            "annotations": {"summary": "idle in transaction"}, "generatorURL": ""}


def test_an_unplanned_drill_proves_its_alerts_fire_in_time_and_pages_nobody(rig: Rig, tmp_path: Path) -> None:
    rig.quiet()
    cfg = rig.env.config()
    store = rig.env.store()
    # A worker with a store of its own: it learns of the drill only from Alertmanager's silences.
    other_cfg = cfg.model_copy(update={"state": cfg.state.model_copy(update={"dir": tmp_path, "url": None})})
    other_store = open_store(other_cfg)
    during: dict[str, Any] = {}

    def in_the_drill(drill: FailoverDrill) -> None:
        during["silences"] = _drill_silences(rig.am_url, drill.drill_id)
        rig.push("DrillProbeUnexpected", cluster="main", severity="page")  # unexpected on purpose: it pages
        during["same_store"] = _remediate(cfg, store, rig.token, _idle_alert(f"d{drill.drill_id}a"))
        during["own_store"] = _remediate(other_cfg, other_store, rig.token, _idle_alert(f"d{drill.drill_id}b"))

    t0 = time.time()
    rep = run_drill(cfg, store, DrillRequest("us-east-1", "eu-west-1", mode="unplanned", failback=True,
                                             actor="alice@laptop", hooks={"before:alerts": in_the_drill}))
    assert rep["status"] == "passed", rep["message"]
    assert rep["verdict"] == {"switch": "pass", "alerting": "pass"}
    al = rep["alerting"]

    # Each expected alert fired after the fault, within for: (1 s) + evaluation (1 s) + margin.
    assert [e["alertname"] for e in al["expected"]] == EXPECTED
    for e in al["expected"]:
        assert e["pass"] and e["rule_loaded"] is True, e
        assert (e["for_seconds"], e["interval_seconds"], e["margin_seconds"]) == (FOR_CAP, 1.0, MARGIN)
        assert 0 < e["detection_seconds"] <= e["bound_seconds"] == FOR_CAP + 1.0 + MARGIN
        assert e["labels"]["cluster"] == "main"
    assert al["expected"][0]["labels"]["node"] == "east1" and al["expected"][1]["labels"]["replica"] == "west1"
    assert REGISTRY.get_sample_value("sre_drill_alert_detection_seconds",
                                     {"cluster": "main", "alertname": "ReplicaDisconnected"}) == \
        al["expected"][1]["detection_seconds"]

    # One silence during the drill, scoped to the cluster and the expected and may-fire alerts,
    # saying which drill and who; expired after it.
    [sil] = during["silences"]
    matchers = {m["name"]: m for m in sil["matchers"]}
    assert matchers["cluster"]["value"] == "main" and not matchers["cluster"]["isRegex"]
    assert matchers["alertname"]["isRegex"] and set(EXPECTED) <= set(matchers["alertname"]["value"].split("|"))
    assert sil["status"]["state"] == "active" and sil["createdBy"] == "alice@laptop"
    assert sil["comment"].startswith(f"sre drill #{rep['id']} by alice@laptop: failover of main east1")
    ends = datetime.fromisoformat(sil["endsAt"]).timestamp()
    assert t0 + 590 < ends < time.time() + 610
    [after] = [s for s in silences(rig.am_url) if s["id"] == sil["id"]]
    assert after["status"]["state"] == "expired"
    assert al["silences"][0]["removal"] == "expired"

    # Nobody was paged but for the alert made unexpected on purpose, which the report lists.
    wait_until(lambda: "DrillProbeUnexpected" in _paged(rig.receiver, t0), timeout=15, what="the probe paged")
    assert _paged(rig.receiver, t0) == {"DrillProbeUnexpected"}
    assert [u["alertname"] for u in al["unexpected"]] == ["DrillProbeUnexpected"]
    assert al["unexpected"][0]["paged"] is True

    # The remediation worker kept its hands off the drilled cluster, saying which drill.
    for key, source in (("same_store", "failover us-east-1 -> eu-west-1"), ("own_store", "Alertmanager silence")):
        r = during[key]
        assert (r.outcome, r.guard, r.acted) == ("skipped", "drill", False), key
        assert f"drill #{rep['id']}" in r.reason and source in r.reason, r.reason

    # The report: both verdicts, the alert table, the marks on the picture; the topology as before.
    md = get_from(store, rep["id"])["markdown"]  # type: ignore[index]
    assert "Verdict: switch **PASS**, alerting **PASS**" in md and "## Alerting" in md
    assert "| ReplicaDisconnected (main) |" in md and "DrillProbeUnexpected" in md
    assert Path(rep["files"]["png"]).stat().st_size > 0
    assert {f["alertname"] for f in al["fired"] if f["class"] == "expected"} == set(EXPECTED)
    assert_topology(rig.env, rig.env.east1, rig.env.west1)
    other_store.dispose()


def test_an_expected_alert_whose_rule_is_gone_fails_the_alerting_verdict(rig: Rig) -> None:
    rig.quiet()
    rig.apply_rules(drop="ReplicaDisconnected")
    try:
        cfg = rig.env.config()
        rep = run_drill(cfg, rig.env.store(), DrillRequest("us-east-1", "eu-west-1", mode="unplanned", failback=True))
    finally:
        rig.apply_rules()
    assert rep["status"] == "failed"
    assert rep["verdict"] == {"switch": "pass", "alerting": "fail"}
    assert "alerting: not detected in time: ReplicaDisconnected" in rep["message"]
    gone, fired = (next(e for e in rep["alerting"]["expected"] if e["alertname"] == n)
                   for n in ("ReplicaDisconnected", "PostgresPrimaryDown"))
    assert (gone["pass"], gone["rule_loaded"], gone["detection_seconds"]) == (False, False, None)
    assert gone["verdict"] == "Prometheus runs no rule for it: it cannot fire"
    assert fired["pass"]
    # The preflight said so before the fault, and the drill did not hold the fault for it.
    [pre] = [p for p in rep["preflight"] if p["check"] == "drill.preflight.alerting"]
    assert pre["status"] == "warn" and "ReplicaDisconnected: it cannot fire" in pre["message"]
    hold = rep["alerting"]["hold"]
    assert (hold["cannot_fire"], hold["not_fired"], list(hold["fired"])) == (
        ["ReplicaDisconnected"], [], ["PostgresPrimaryDown"])
    assert_topology(rig.env, rig.env.east1, rig.env.west1)


def test_a_stop_condition_alert_aborts_the_drill_and_undoes_it(rig: Rig) -> None:
    rig.quiet()
    cfg = rig.env.config()

    def burn(drill: FailoverDrill) -> None:
        rig.push("ApiAvailabilityFastBurn", severity="page", slo="api-availability")
        assert drill.alerting is not None
        wait_until(lambda: drill.alerting.stopped_by, timeout=10, what="the watch sees the burn")  # type: ignore[union-attr]

    rep = run_drill(cfg, rig.env.store(), DrillRequest("us-east-1", "eu-west-1", stop_on=["ApiAvailabilityFastBurn"],
                                                       hooks={"after:promote": burn}))
    assert rep["status"] == "aborted" and rep["interrupted"] is False
    assert rep["stopped_by"]["alertname"] == "ApiAvailabilityFastBurn"
    assert "failover stopped: stop condition ApiAvailabilityFastBurn fired" in rep["message"]
    assert rep["undo"]["undone"] == ["promote", "fence", "canary", "silence"] and rep["undo"]["not_undone"] == []
    assert [e["step"] for e in rep["timeline"] if e["kind"] == "run"][-1] == "promote"
    assert "ApiAvailabilityFastBurn" in {f["alertname"] for f in rep["alerting"]["fired"] if f["class"] == "stop"}
    assert_topology(rig.env, rig.env.east1, rig.env.west1)
    assert all(s["status"]["state"] == "expired" for s in _drill_silences(rig.am_url, rep["id"]))


def test_sigint_removes_the_silences_too(rig: Rig) -> None:
    rig.quiet()
    # An expected alert that cannot fire here and a long margin: the drill holds its fault for a
    # minute after the switch, which is when it is interrupted.
    path = rig.config(expected={"planned": ["PostgresPrimaryDown"]}, margin="60s")
    store = rig.env.store()
    proc = subprocess.Popen([SRE, "drill", "failover", "--from", "us-east-1", "--to", "eu-west-1", "--execute",
                             "-c", str(path), "-o", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def holding() -> int | None:
            with store.session() as s:
                row = s.scalar(select(DrillReport).order_by(DrillReport.id.desc()).limit(1))
                steps = [e["step"] for e in (row.report or {}).get("timeline", [])] if row is not None else []
                return row.id if row is not None and row.status == "running" and "verify" in steps else None

        drill_id = wait_until(holding, timeout=60, interval=0.1, what="the drill holding its fault")
        [sil] = _drill_silences(rig.am_url, drill_id)
        assert sil["status"]["state"] == "active"
        assert lock.holder(store) == drill_id
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    rep = json.loads(out)
    assert rep["status"] == "aborted" and rep["interrupted"] is True
    assert rep["undo"]["undone"] == ["scale", "dns", "promote", "fence", "canary", "silence"]
    [after] = [s for s in silences(rig.am_url) if s["id"] == sil["id"]]
    assert after["status"]["state"] == "expired"
    assert_topology(rig.env, rig.env.east1, rig.env.west1)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_drill_guard_reads_a_running_drill_from_the_store(backend: str, tmp_path: Path,
                                                             request: pytest.FixtureRequest) -> None:
    store = Store(f"sqlite:///{tmp_path / 'sre.db'}") if backend == "sqlite" else request.getfixturevalue("pg_store")
    store.migrate()
    cfg = load_config(None)
    with store.session() as s:
        row = DrillReport(cluster="main", from_region="us-east-1", to_region="eu-west-1", mode="planned",
                          environment="staging", actor="bob@host", status="running", report={}, markdown="")
        s.add(row)
        s.flush()
        drill_id = int(row.id)
    lease = lock.acquire(store, drill_id)
    try:
        with store.session() as s:
            reason = drill_guard.refusal(cfg, s, {"cluster": "main"}, {})
            assert reason is not None and f"drill #{drill_id}" in reason and "bob@host" in reason
            assert drill_guard.refusal(cfg, s, {"cluster": "other"}, {}) is None
            assert drill_guard.refusal(cfg, s, {"namespace": "messaging"}, {"alertname": "X"}) is None
    finally:
        lease.release()
    with store.session() as s:
        assert drill_guard.refusal(cfg, s, {"cluster": "main"}, {}) is None
