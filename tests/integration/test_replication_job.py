"""The replica check as the scheduled job (stored results) and as `sre replicas check`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from sre.config import SreConfig
from sre.jobs import run_job
from sre.local.procs import free_port, wait_until
from sre.results import JobContext, JobOutcome
from sre.sandbox import Stack
from sre.store import open_store
from sre.store.runs import CheckRow, Run
from tests.integration.replication_support import pg_cluster

pytestmark = pytest.mark.slow


def sre(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sre", *args], capture_output=True, text=True, timeout=60,
                          check=False)


def test_job_stores_one_result_per_replica(sandbox: Stack, sandbox_config: SreConfig) -> None:
    store = open_store(sandbox_config)
    try:
        runs: list[JobOutcome] = []

        def ok_run() -> bool:
            runs.append(run_job("replicas.check", JobContext(cfg=sandbox_config, store=store)))
            return runs[-1].status == "ok"

        wait_until(ok_run, timeout=15, what="an ok job run")
        outcome = runs[-1]
        assert outcome.summary["replicas"] == 2 and outcome.summary["fail"] == 0
        with store.session() as s:
            run = s.scalars(select(Run).where(Run.kind == "replicas.check").order_by(Run.id.desc())).first()
            assert run is not None and run.status == "ok"
            rows = s.scalars(select(CheckRow).where(CheckRow.run_id == run.id)).all()
            by_target = {r.target: r for r in rows}
        assert set(by_target) == {"main/west1", "cache/replica"}
        assert by_target["main/west1"].check == "replication.postgres"
        assert by_target["cache/replica"].check == "replication.redis"
        assert by_target["main/west1"].observed["lag_bytes"] == 0
    finally:
        store.dispose()


def test_cli_reports_json_and_exit_codes(sandbox: Stack, sandbox_config_path: Path, tmp_path: Path) -> None:
    ok = sre("replicas", "check", "--config", str(sandbox_config_path), "--cluster", "main", "--output", "json")
    assert ok.returncode == 0, ok.stderr
    [result] = json.loads(ok.stdout)
    assert result["target"] == "main/west1" and result["status"] == "ok"

    table = sre("replicas", "check", "--config", str(sandbox_config_path))
    assert table.returncode == 0, table.stderr
    assert "main/west1" in table.stdout and "cache/replica" in table.stdout

    assert sandbox.postgres is not None
    data = yaml.safe_load(sandbox_config_path.read_text())
    data["postgres"]["clusters"]["gone"] = pg_cluster(
        tmp_path / "secrets", ("east1", "us-east-1", sandbox.postgres.primary.dsn),
        [("west1", "eu-west-1", f"host=127.0.0.1 port={free_port()} user=postgres")])
    broken = tmp_path / "sre.yaml"
    broken.write_text(yaml.safe_dump(data))
    failing = sre("replicas", "check", "--config", str(broken), "--output", "json")
    assert failing.returncode == 1
    statuses = {r["target"]: r["status"] for r in json.loads(failing.stdout)}
    assert statuses == {"main/west1": "ok", "gone/west1": "fail", "cache/replica": "ok"}
    assert failing.stderr.strip() == "error: 1 of 3 replica(s) failing: gone/west1"

    unknown = sre("replicas", "check", "--config", str(broken), "--cluster", "nope")
    assert unknown.returncode == 2 and "no PostgreSQL cluster or Redis pair named 'nope'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
