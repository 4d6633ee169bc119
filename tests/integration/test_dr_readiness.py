"""DR readiness against real servers: a PostgreSQL pair of its own per test, moto's S3 and Route 53,
real drills and backups; the verdicts and estimates held to what the servers really show."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from rich.console import Console
from sqlalchemy import select

from sre.adapters import s3 as s3a
from sre.checks.backups import take_backup, verify
from sre.config import SreConfig
from sre.dr.gather import recovery_points
from sre.dr.readiness import status
from sre.drills.failover import DrillRequest, run_drill
from sre.jobs import run_job
from sre.local.postgres import PgServer
from sre.local.procs import wait_until
from sre.results import JobContext, JobOutcome
from sre.sandbox import Stack
from sre.sandbox.backups import ensure_bucket, prepare
from sre.store import Store, open_store
from sre.store.drills import DrillReport
from sre.store.runs import Run
from tests.dr_support import configure, writes
from tests.drill_env import DrillEnv, EnvFactory

pytestmark = pytest.mark.slow

PAIR = ("us-east-1", "eu-west-1")


def with_backups(env: DrillEnv) -> SreConfig:
    bucket = f"dr-{uuid.uuid4().hex[:10]}"
    cfg = configure(env, backups={"main": {"cluster": "main", "bucket": bucket, "prefix": "pg/", "max_age": "1d"}})
    ensure_bucket(s3a.client(cfg.aws), bucket, "us-east-1")
    return cfg


def take_and_verify(cfg: SreConfig) -> str:
    """A real pg_dump into moto's S3, verified by checksum, its results stored as the job stores them."""
    taken = take_backup(cfg, "main")
    store = env_store(cfg)
    results = verify(cfg, "main", restore=False)
    assert all(r.status == "ok" for r in results if r.check != "backup.completeness"), results
    run_job("backups.verify", JobContext(cfg, store), lambda _ctx: JobOutcome("ok", {}, results))
    return str(taken["taken_at"])


def env_store(cfg: SreConfig) -> Store:
    return open_store(cfg)


def seed_passed_drill(cfg: SreConfig) -> None:
    with env_store(cfg).session() as s:
        s.add(DrillReport(kind="failover", cluster="main", from_region=PAIR[0], to_region=PAIR[1], mode="planned",
                          environment=cfg.environment, status="passed", finished=datetime.now(UTC),
                          rto_seconds=0.4, report={"switches": [{"dns_insync_seconds": 0.0}]}))


def verdict(cfg: SreConfig, **kw: Any) -> Any:
    return status(cfg, env_store(cfg), *PAIR, **kw)[0]


def what(pr: Any) -> set[tuple[str, str]]:
    return {(r.severity, r.what) for r in pr.reasons}


def true_lag(replica: PgServer) -> float:
    return float(replica.sql("SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())")[0][0])


def test_no_drill_then_drills_ready_and_estimate_held_to_measurement(drill_env: EnvFactory) -> None:
    env = drill_env(objectives={"rto": "5m"})
    cfg = with_backups(env)
    take_and_verify(cfg)

    first = verdict(cfg)
    assert first.verdict == "not_ready"
    assert what(first) == {("not_ready", "drills")}, first.reasons
    assert "no drill" in first.reasons[0].message
    assert first.rto.seconds is None and first.rto.terms["write_gap"] is None  # nothing invented
    assert first.rpo[0].basis == "replica" and first.rpo[0].seconds is not None and first.rpo[0].seconds < 1

    store = env_store(cfg)
    reports = []
    for _ in range(2):
        rep = run_drill(cfg, store, DrillRequest(*PAIR, failback=True, reason="dr readiness test", actor="test"))
        assert rep["status"] == "passed", rep["message"]
        reports.append(rep)
    # Each drill's preflight estimate is in its report beside what it measured.
    est0, est1 = reports[0]["estimate"], reports[1]["estimate"]
    assert est0["verdict"] == "not_ready" and est0["rto_comparable_seconds"] is None
    cmp1 = reports[1]["estimate_vs_measured"]
    assert est1["rto_comparable_seconds"] is not None and cmp1["measured_rto_seconds"] == reports[1]["rto_seconds"]
    assert cmp1["rto_agrees"], cmp1  # within 0.5 s plus the TTL term
    assert abs(cmp1["rto_difference_seconds"]) <= 0.5 + est1["rto_terms"]["dns_ttl"]
    assert est1["rpo_seconds"] is not None and cmp1["measured_rpo_rows"] == 0
    assert "## Estimate (preflight) vs measured" in Path(reports[1]["files"]["markdown"]).read_text()
    print("drill durations", [r["duration_seconds"] for r in reports])
    assert any(r["check"] == "drill.preflight.readiness" for r in reports[1]["preflight"])

    ready = verdict(cfg)
    assert ready.verdict == "ready", ready.reasons
    gaps = sorted(max(0.0, r["rto_seconds"] - (r["switches"][0]["dns_insync_seconds"] or 0)) for r in reports)
    assert ready.rto.terms["write_gap"] == pytest.approx(sum(gaps) / 2, abs=1e-3)
    assert ready.rto.seconds is not None and ready.rto.seconds > ready.rto.terms["dns_ttl"]  # type: ignore[operator]
    assert [e["drill"] for e in ready.last_estimates] == [reports[1]["id"], reports[0]["id"]]

    # The job: a stored result per pair and the metrics; then the CLI reuses what is fresh.
    out = run_job("dr.readiness", JobContext(cfg, store))
    assert out.status == "ok" and out.summary == {"us-east-1->eu-west-1": "ready"}
    labels = {"from": "us-east-1", "to": "eu-west-1"}
    assert REGISTRY.get_sample_value("sre_dr_ready", labels) == 1.0
    assert REGISTRY.get_sample_value("sre_dr_estimated_rto_seconds", labels) == ready.rto.seconds
    assert REGISTRY.get_sample_value("sre_dr_estimated_rpo_seconds", {**labels, "cluster": "main"}) is not None
    run_job("replicas.check", JobContext(cfg, store))
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "sre", "dr", "status", "-c", str(env.config_path), "-o", "json"],
                          capture_output=True, text=True, timeout=60)
    took = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc[0]["verdict"] == "ready" and doc[0]["inputs"]["replication"].startswith("stored run")
    assert doc[0]["last_estimates_vs_measured"][0]["drill"] == reports[1]["id"]
    print(f"sre dr status from stored results: {took:.2f} s")


def test_replay_paused_degraded_then_not_ready(drill_env: EnvFactory) -> None:
    env = drill_env(objectives={"rto": "5m", "lag_warn": "1s", "lag_fail": "4s"})
    cfg = with_backups(env)
    take_and_verify(cfg)
    seed_passed_drill(cfg)  # replication is the subject here: the drill history is a stored fact
    assert verdict(cfg, live=True).verdict == "ready"

    seen: list[tuple[str, float, float]] = []
    with writes(env.east1):
        # A replayed commit first: before one, the replica has no replay timestamp to measure lag by.
        wait_until(lambda: env.west1.sql("SELECT pg_last_xact_replay_timestamp() IS NOT NULL")[0][0], timeout=10,
                   what="a commit replayed on west1")
        env.west1.sql("SELECT pg_wal_replay_pause()")
        try:
            def observe(want: str) -> bool:
                pr = verdict(cfg, live=True)
                lag = true_lag(env.west1)
                est = pr.rpo[0].seconds
                seen.append((pr.verdict, est, lag))
                # The RPO estimate is the replica's true lag (data not yet replayed), within 1 s.
                assert est is not None and abs(est - lag) < 1.0, (est, lag)
                assert pr.rpo[0].basis == "replica"
                return bool(pr.verdict == want)

            wait_until(lambda: observe("degraded"), timeout=20, what="degraded while replay is paused")
            wait_until(lambda: observe("not_ready"), timeout=30, what="not_ready once the lag passes the budget")
            last = verdict(cfg, live=True)
            assert ("not_ready", "replication") in what(last)
            assert "pg_wal_replay_resume" in next(r.fix for r in last.reasons if r.what == "replication")
        finally:
            env.west1.sql("SELECT pg_wal_replay_resume()")
    assert [v for v, _, _ in seen].index("degraded") < [v for v, _, _ in seen].index("not_ready")
    wait_until(lambda: verdict(cfg, live=True).verdict == "ready", timeout=30, what="ready after resuming")


def test_replica_stopped_falls_back_to_the_newest_verified_backup(drill_env: EnvFactory) -> None:
    env = drill_env()
    cfg = with_backups(env)
    taken_at = datetime.fromisoformat(take_and_verify(cfg))
    env.west1.stop()
    pr = verdict(cfg, live=True)
    rpo = pr.rpo[0]
    assert pr.verdict == "not_ready" and ("not_ready", "replication") in what(pr)
    assert rpo.basis == "backup" and rpo.link == "down"
    assert "newest backup verified by checksum of set main" in rpo.detail
    assert rpo.seconds == pytest.approx((datetime.now(UTC) - taken_at).total_seconds(), abs=3)


def test_the_sandbox_backup_step_stores_its_verified_backup_for_dr_status(drill_env: EnvFactory,
                                                                          sandbox: Stack) -> None:
    """`sre up`'s backup step: `sre dr status` right after it sees the verified backup (no job run yet)."""
    env = drill_env()
    cfg = with_backups(env)
    notes = prepare(sandbox, cfg, Console(file=io.StringIO()))
    assert any(n.startswith("backup main: s3://") for n in notes), notes
    points = recovery_points(cfg, env_store(cfg))
    assert [(p.backup_set, p.check) for p in points] == [("main", "backup.restore")], points
    assert not [r for r in verdict(cfg).reasons if "no verified backup" in r.message]
    with env_store(cfg).session() as s:
        assert s.scalars(select(Run.kind).where(Run.trigger == "manual")).all() == ["backups.verify"]
