"""Failover drills end to end on a PostgreSQL pair of their own: real promotion, real pg_rewind,
moto's Route 53, the fake Kubernetes API; RTO and RPO from the canary's acknowledged writes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from sre.drills.failover import DrillRequest, FailoverDrill, run_drill
from sre.local.procs import wait_until
from tests.drill_env import EnvFactory, assert_topology, streaming
from tests.fakes.grafana import FakeGrafana
from tests.fakes.kube import FakeKube

pytestmark = pytest.mark.slow

# The standby region runs small until it takes over; a drill scales it to production size.
DEPLOYMENTS = {"eu-west-1": {"messaging-euw1/api": 4, "messaging-euw1/ws-gateway": 3},
               "us-east-1": {"messaging-use1/api": 4, "messaging-use1/ws-gateway": 3}}


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with FakeKube() as fake:
        for ns, replicas in (("messaging-euw1", 1), ("messaging-use1", 4)):
            for name in ("api", "ws-gateway"):
                fake.put({"apiVersion": "apps/v1", "kind": "Deployment",
                          "metadata": {"name": name, "namespace": ns},
                          "spec": {"replicas": replicas if name == "api" else replicas - 1,
                                   "selector": {"matchLabels": {"app": name}}}})
        yield fake


def test_planned_drill_end_to_end(drill_env: EnvFactory, kube: FakeKube) -> None:
    grafana = FakeGrafana().start()
    env = drill_env(kube_host=kube.url, deployments=DEPLOYMENTS, grafana=(grafana.url, "test-token"))
    cfg = env.config()
    rep = run_drill(cfg, env.store(), DrillRequest("us-east-1", "eu-west-1", reason="quarterly drill",
                                                   actor="test"))

    assert rep["status"] == "passed", rep["message"]
    # RTO: measured from acknowledged canary writes, a real gap, well under a second here.
    assert rep["rto_seconds"] is not None and 0 < rep["rto_seconds"] < 5
    fo = rep["switches"][0]
    assert fo["first_ack_after"]["target"] == env.target(env.west1)
    assert fo["last_ack_before"]["ts"] < fo["first_ack_after"]["ts"]
    # RPO: planned means nothing acknowledged is missing, and the replica replayed the final LSN.
    assert rep["rpo_rows"] == 0 and fo["lsn_gap_bytes"] == 0 and fo["acknowledged_before"] >= 5
    assert {(v["objective"], v["pass"]) for v in rep["verdicts"]} == {("RTO", True), ("RPO", True), ("split-brain", True)}

    # The switch happened: west1 takes writes, east1 follows it, the record leads to west1.
    assert_topology(env, env.west1, env.east1)
    # The target region was scaled to production size through the Kubernetes API (scale subresource).
    patches = kube.requests_to("PATCH", r"^/apis/apps/v1/namespaces/messaging-euw1/deployments/[^/]+/scale$")
    assert sorted((r.path.split("/")[-2], r.body["spec"]["replicas"]) for r in patches) == [("api", 4),
                                                                                            ("ws-gateway", 3)]
    assert kube.deployment("messaging-euw1", "api")["spec"]["replicas"] == 4  # type: ignore[index]
    assert not kube.requests_to("PATCH", "messaging-use1")
    # Every write the canary saw acknowledged is on the new primary.
    acked = [a[0] for a in rep["canary"]["acks"]]
    rows = {r[0] for r in env.west1.sql("SELECT n FROM sre_drill_canary WHERE drill_id = %s", [rep["id"]])}
    assert set(acked) <= rows

    # The report: files, the state store, metrics.
    files = rep["files"]
    assert json.loads(Path(files["json"]).read_text())["status"] == "passed"
    md = Path(files["markdown"]).read_text()
    assert "PASSED" in md and "| failover | RTO |" in md and "quarterly drill" in md
    assert Path(files["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from sre.drills.history import get_from

    row = get_from(env.store(), rep["id"])
    assert row is not None and row["status"] == "passed" and row["png"] and row["rto_seconds"] == rep["rto_seconds"]
    assert REGISTRY.get_sample_value("sre_drill_last_rto_seconds", {"cluster": "main"}) == rep["rto_seconds"]
    assert REGISTRY.get_sample_value("sre_drill_last_rpo_rows", {"cluster": "main"}) == 0
    assert (REGISTRY.get_sample_value("sre_drill_last_success_timestamp_seconds", {"cluster": "main"}) or 0) > 0
    # One Grafana annotation spanning the drill, with its verdict, RTO and RPO.
    grafana.stop()
    [note] = grafana.annotations
    assert note["tags"] == ["sre", "drill", "main", "passed"]
    assert abs(note["time"] - (rep["finished_ts"] - rep["duration_seconds"]) * 1000) <= 2
    assert note["timeEnd"] == int(rep["finished_ts"] * 1000) and note["time"] < note["timeEnd"]
    assert f"RTO {rep['rto_seconds']:.2f}s" in note["text"] and "RPO 0 rows" in note["text"]


def test_failback_restores_the_original_topology(drill_env: EnvFactory, kube: FakeKube) -> None:
    env = drill_env(kube_host=kube.url, deployments=DEPLOYMENTS)
    rep = run_drill(env.config(), env.store(), DrillRequest("us-east-1", "eu-west-1", failback=True))

    assert rep["status"] == "passed", rep["message"]
    assert [s["name"] for s in rep["switches"]] == ["failover", "failback"]
    assert all(s["rpo_rows"] == 0 and s["rto_seconds"] is not None for s in rep["switches"])
    steps = [e["step"] for e in rep["timeline"] if e["kind"] == "run"]
    assert steps.index("rejoin") < steps.index("failback.fence") < steps.index("failback.rejoin")
    # The original topology: east1 primary behind the record, west1 streaming from it.
    assert_topology(env, env.east1, env.west1)
    # ... through a slot of its own, and the replica check agrees it is healthy.
    slots = env.east1.sql("SELECT slot_name, active FROM pg_replication_slots")
    assert slots == [("west1", True)]
    from sre.checks.replication import check_postgres

    results = wait_until(lambda: [r for r in check_postgres(env.config(), "main") if r.status == "ok"], timeout=30,
                         what="replication check ok")
    assert results[0].observed["connected"] is True


def test_unplanned_drill_reports_the_rows_it_lost(drill_env: EnvFactory) -> None:
    env = drill_env()

    def cut_the_link(drill: FailoverDrill) -> None:
        # The region is about to be lost: first the replica stops receiving, while the primary
        # keeps acknowledging writes that will never reach it.
        env.west1.sql("ALTER SYSTEM SET primary_conninfo = ''")
        env.west1.sql("SELECT pg_reload_conf()")
        wait_until(lambda: not streaming(env.east1, env.west1), timeout=15, what="replication cut")
        assert drill.canary is not None
        seen = len(drill.canary.snapshot())
        drill.canary.wait_for(lambda acks: len(acks) >= seen + 6, 10, "writes after the cut")

    rep = run_drill(env.config(), env.store(), DrillRequest("us-east-1", "eu-west-1", mode="unplanned",
                                                            hooks={"before:fence": cut_the_link}))
    fo = rep["switches"][0]
    assert rep["mode"] == "unplanned" and fo["mode"] == "unplanned"
    # Honest loss: at least the writes acknowledged after the cut, each one named, and exactly the
    # acknowledged rows the new primary lacks.
    assert rep["rpo_rows"] >= 6 and len(fo["lost"]) == rep["rpo_rows"]
    present = {r[0] for r in env.west1.sql("SELECT n FROM sre_drill_canary WHERE drill_id = %s", [rep["id"]])}
    before = [a[0] for a in rep["canary"]["acks"] if a[1] < fo["first_ack_after"]["ts"]]
    assert sorted(n for n in before if n not in present) == fo["lost"]
    assert fo["lsn_gap_bytes"] > 0 and fo["rpo_seconds"] > 0
    rpo = next(v for v in rep["verdicts"] if v["objective"] == "RPO")
    assert rpo["unit"] == "s" and rpo["pass"] is True  # 300 s objective: a loss within it
    md = Path(rep["files"]["markdown"]).read_text()
    assert f"**{rep['rpo_rows']} rows** lost" in md
    # The stopped primary came back as a standby of the new one (its lost rows rewound away).
    assert_topology(env, env.west1, env.east1)


def test_the_scheduled_job_runs_the_same_drill_with_failback(drill_env: EnvFactory) -> None:
    from sre.drills.history import get_from
    from sre.jobs import run_job
    from sre.results import JobContext

    env = drill_env()  # environment: staging
    cfg, store = env.config(), env.store()
    outcome = run_job("drill.failover", JobContext(cfg=cfg, store=store, trigger="schedule"))
    assert outcome.status == "ok", outcome.summary
    row = get_from(store, outcome.summary["drill_id"])
    assert row is not None and row["status"] == "passed" and row["trigger"] == "schedule" and row["failback"]
    assert_topology(env, env.east1, env.west1)
