"""The state store: migrations on SQLite and on the sandbox PostgreSQL; job runs recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from sre.config import load_config
from sre.jobs import run_job
from sre.results import CheckResult, JobContext, JobOutcome
from sre.store import Store
from sre.store.runs import CheckRow, Run
from sre.telemetry import JOB_LAST_SUCCESS, JOB_RUNS

pytestmark = pytest.mark.slow


def _tables(store: Store) -> set[str]:
    return set(inspect(store.engine).get_table_names())


def test_migrations_on_sqlite(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'sre.db'}")
    store.migrate()
    store.migrate()  # idempotent: a restart migrates nothing
    assert {"runs", "check_results", "alembic_version"} <= _tables(store)


def test_migrations_on_postgres(pg_store: Store) -> None:
    pg_store.migrate()
    pg_store.migrate()
    assert {"runs", "check_results", "alembic_version"} <= _tables(pg_store)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_job_run_is_recorded(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    store = Store(f"sqlite:///{tmp_path / 'sre.db'}") if backend == "sqlite" else request.getfixturevalue("pg_store")
    store.migrate()
    cfg = load_config(None, environ={})
    before = JOB_RUNS.labels("test.job", "warn")._value.get()

    def job(ctx: JobContext) -> JobOutcome:
        return JobOutcome(status="warn", summary={"replicas": 2},
                          results=[CheckResult("test.check", "main/west1", "warn", {"lag_seconds": 12.5}, "slow")])

    run_job("test.job", JobContext(cfg=cfg, store=store), job)
    with store.session() as s:
        run = s.scalars(select(Run).where(Run.kind == "test.job")).one()
        assert run.status == "warn" and run.finished is not None and run.finished >= run.started
        assert run.summary["replicas"] == 2 and run.summary["duration_seconds"] >= 0
        row = s.scalars(select(CheckRow).where(CheckRow.run_id == run.id)).one()
        assert (row.check, row.target, row.status, row.observed) == ("test.check", "main/west1", "warn",
                                                                     {"lag_seconds": 12.5})
    assert JOB_RUNS.labels("test.job", "warn")._value.get() == before + 1
    assert JOB_LAST_SUCCESS.labels("test.job")._value.get() > 0


def test_a_failing_job_is_recorded_as_error(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'sre.db'}")
    store.migrate()

    def job(ctx: JobContext) -> JobOutcome:
        raise RuntimeError("boom")

    out = run_job("test.boom", JobContext(cfg=load_config(None, environ={}), store=store), job)
    assert out.status == "error"
    with store.session() as s:
        run = s.scalars(select(Run).where(Run.kind == "test.boom")).one()
        assert run.status == "error" and "boom" in run.summary["error"]


def test_runs_left_running_by_a_crash_are_marked_interrupted(tmp_path: Path) -> None:
    import socket

    from sre.scheduler import JobScheduler

    cfg = load_config(None, environ={"SRE_STATE__DIR": str(tmp_path)})
    store = Store(cfg.state.resolved_url())
    store.migrate()
    with store.session() as s:
        s.add(Run(kind="replicas.check", status="running", summary={}, host=socket.gethostname()))
        s.add(Run(kind="replicas.check", status="running", summary={}, host="another-replica"))
    assert JobScheduler(cfg, store).mark_interrupted() == 1
    with store.session() as s:
        statuses = {r.host: r.status for r in s.scalars(select(Run))}
    assert statuses == {socket.gethostname(): "interrupted", "another-replica": "running"}
