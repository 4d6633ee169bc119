"""The actions the new runbooks use, through the engine against real parts: backup.take into moto's
S3 from the sandbox PostgreSQL, job.run of one of sre's own jobs (never two copies at once), and
kubernetes.scale never past a HorizontalPodAutoscaler's maximum (the fake Kubernetes API)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from sre.config import SreConfig
from sre.remediation.actions import jobs as jobs_action
from sre.remediation.engine import Engine
from sre.remediation.replay import alert_from, execute
from sre.remediation.runbook import load_runbook
from sre.store import Store, open_store
from sre.store.base import utcnow
from sre.store.remediation import Remediation
from sre.store.runs import Run
from tests.fakes.kube import FakeKube
from tests.integration.backup_fixtures import backup_env, backup_source  # noqa: F401
from tests.integration.backup_support import MakeEnv
from tests.remediation_support import DEPLOYMENT, NS, fake_cluster, kube_writes, write_runbook

pytestmark = pytest.mark.slow


def _run(cfg: SreConfig, store: Store, runbooks: Path, name: str, labels: dict[str, str],
         seconds_ago: float = 60) -> Remediation:
    """The alert fires (run by hand through the engine), then resolves: its target is free again."""
    rb = load_runbook(runbooks / f"{name}.md")
    alert = {"labels": {"alertname": name, **labels},
             "startsAt": (utcnow() - timedelta(seconds=seconds_ago)).isoformat()}
    rid = execute(cfg, store, alert_from(alert), rb, reason="test", by="test")
    assert rid is not None
    Engine(cfg, store, "test").handle(alert_from({**alert, "status": "resolved"}), rb)
    with store.session() as s:
        row = s.get(Remediation, rid)
        assert row is not None
        return row


def _with(cfg: SreConfig, runbooks: Path, **more: Any) -> SreConfig:
    data = cfg.model_dump(mode="python", exclude_unset=True)
    data["remediation"] = {"runbooks_dir": str(runbooks)}
    data.update(more)
    return SreConfig.model_validate(data)


def test_backup_take_writes_a_backup(backup_env: MakeEnv, tmp_path: Path) -> None:  # noqa: F811
    env = backup_env()
    runbooks = tmp_path / "runbooks"
    write_runbook(runbooks, "BackupStale", "backup.take", target={"backup": "{{ labels.cluster }}"},
                  verify={"query": "vector(1)", "within": "1s"})
    cfg = _with(env.cfg, runbooks)
    store = open_store(cfg)
    try:
        row = _run(cfg, store, runbooks, "BackupStale", {"cluster": "main"})
    finally:
        store.dispose()
    assert (row.outcome, row.target) == ("executed", "backup/main"), row.reason
    keys = [o["Key"] for o in env.s3.list_objects_v2(Bucket=env.bucket).get("Contents", [])]
    assert row.result["key"] in keys and row.result["size"] > 0


def test_job_run_records_its_run_and_never_runs_two_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs_action, "WAIT_FOR_RUNNING", 0.5)
    runbooks = tmp_path / "runbooks"
    write_runbook(runbooks, "JobStale", "job.run", target={"job": "state.prune"},
                  guards={"cooldown": 0, "max_per_day": 10}, verify={"query": "vector(1)", "within": "1s"})
    cfg = SreConfig.model_validate({"state": {"dir": str(tmp_path / "state")},
                                    "remediation": {"runbooks_dir": str(runbooks)}})
    store = open_store(cfg)
    try:
        first = _run(cfg, store, runbooks, "JobStale", {"instance": "a"})
        assert first.outcome == "executed", first.reason
        with store.session() as s:
            runs = list(s.scalars(select(Run).where(Run.kind == "state.prune")))
            assert [(r.id, r.trigger, r.status) for r in runs] == [(first.result["run_id"], "remediation", "ok")]
            s.add(Run(kind="state.prune", trigger="schedule", status="running", started=utcnow()))

        second = _run(cfg, store, runbooks, "JobStale", {"instance": "b"})
    finally:
        store.dispose()
    assert second.outcome == "failed" and second.reason.startswith("refused: job state.prune is running now")


def test_job_run_waits_for_a_run_in_progress_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A quick check caught running when its alert arrives: the action waits for that run, then runs
    its own (a refusal would count as a failed remediation towards the breaker)."""
    monkeypatch.setattr(jobs_action, "WAIT_FOR_RUNNING", 10.0)
    runbooks = tmp_path / "runbooks"
    write_runbook(runbooks, "JobStale", "job.run", target={"job": "state.prune"},
                  guards={"cooldown": 0, "max_per_day": 10}, verify={"query": "vector(1)", "within": "1s"})
    cfg = SreConfig.model_validate({"state": {"dir": str(tmp_path / "state")},
                                    "remediation": {"runbooks_dir": str(runbooks)}})
    store = open_store(cfg)
    try:
        with store.session() as s:
            scheduled = Run(kind="state.prune", trigger="schedule", status="running", started=utcnow())
            s.add(scheduled)
            s.flush()
            scheduled_id = scheduled.id

        def finish() -> None:
            with store.session() as s:
                row = s.get(Run, scheduled_id)
                assert row is not None
                row.status, row.finished = "ok", utcnow()

        ends = threading.Timer(1.0, finish)
        ends.start()
        t0 = time.monotonic()
        row = _run(cfg, store, runbooks, "JobStale", {"instance": "a"})
        waited = time.monotonic() - t0
        ends.join()
        with store.session() as s:
            runs = [(r.id, r.trigger, r.status) for r in s.scalars(select(Run).where(Run.kind == "state.prune")
                                                                   .order_by(Run.id))]
    finally:
        store.dispose()
    assert row.outcome == "executed", row.reason
    assert waited >= 1.0
    assert runs == [(scheduled_id, "schedule", "ok"), (row.result["run_id"], "remediation", "ok")]


def test_scale_never_goes_past_the_hpa_maximum(tmp_path: Path) -> None:
    runbooks = tmp_path / "runbooks"
    write_runbook(runbooks, "GatewaySaturated", "kubernetes.scale", params={"by": 2, "max": 10},
                  guards={"cooldown": 0, "max_per_day": 10})
    with FakeKube() as kube:
        fake_cluster(kube, replicas=3)
        kube.put({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                  "metadata": {"name": DEPLOYMENT, "namespace": NS},
                  "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": DEPLOYMENT},
                           "minReplicas": 2, "maxReplicas": 4}})
        cfg = SreConfig.model_validate({"state": {"dir": str(tmp_path / "state")}, "kubernetes": {"host": kube.url},
                                        "remediation": {"runbooks_dir": str(runbooks)}})
        store = open_store(cfg)
        labels = {"namespace": NS, "deployment": DEPLOYMENT}
        try:
            first = _run(cfg, store, runbooks, "GatewaySaturated", labels)
            second = _run(cfg, store, runbooks, "GatewaySaturated", labels, seconds_ago=30)
        finally:
            store.dispose()
        scales = [r.body["spec"]["replicas"] for r in kube_writes(kube) if r.path.endswith("/scale")]

    assert first.outcome == "executed" and (first.result["from"], first.result["to"]) == (3, 4)
    assert first.result["hpa_max"] == 4
    assert scales == [4]  # 3 + 2 would be 5: the HPA's maximum is 4
    assert second.outcome == "failed" and "HPA maximum 4" in second.reason
