"""The jobs the service can schedule, and the one way a job run is recorded.

A job is a function `run(ctx: JobContext) -> JobOutcome`, named here by import path so the
registry costs nothing to import. Config `jobs.<name>` enables it or changes its trigger;
`run_job` records the run in the store and in the `sre_job_*` metrics, whoever calls it
(the scheduler, the CLI, the API).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sre.config import JobConfig
from sre.leader import replica_id
from sre.results import CheckResult, JobContext, JobOutcome, worst
from sre.store.base import utcnow
from sre.store.runs import CheckRow, Run
from sre.telemetry import JOB_DURATION, JOB_LAST_SUCCESS, JOB_RUNS, get_logger, log_fields

if TYPE_CHECKING:
    from sre.config import JobConfig, SreConfig
    from sre.store import Store

log = get_logger("sre.jobs")


@dataclass
class JobSpec:
    func: str  # "module:function"
    every: float | None = None
    cron: str | None = None
    enabled_by_default: bool = False
    only_environments: list[str] = field(default_factory=list)
    description: str = ""


# The defaults; config `jobs.<name>` overrides trigger and enablement.
JOBS: dict[str, JobSpec] = {
    "replicas.check": JobSpec("sre.checks.replication:run_job", every=15, enabled_by_default=True,
                              description="Replica lag and link checks for PostgreSQL and Redis."),
    "backups.freshness": JobSpec("sre.checks.backups:run_freshness_job", every=3600, enabled_by_default=True,
                                 description="Backup freshness, completeness and bucket posture."),
    "backups.verify": JobSpec("sre.checks.backups:run_verify_job", cron="0 4 * * *", enabled_by_default=True,
                              description="Full backup verification down to a real restore."),
    "backups.canary": JobSpec("sre.checks.pitr_canary:run_job", every=5, enabled_by_default=True,
                              description="A canary row on each WAL-archived cluster's primary (PITR proof)."),
    "drill.failover": JobSpec("sre.drills.failover:run_job", cron="0 3 1 * *", only_environments=["staging"],
                              description="Planned failover drill with failback (staging only)."),
    "alerts.reconcile": JobSpec("sre.provision.reconcile:run_alerts", every=300,
                                description="Plan (and apply if configured) alert rules: the rules directory "
                                            "or PrometheusRule objects."),
    "dashboards.reconcile": JobSpec("sre.provision.reconcile:run_dashboards", every=300,
                                    description="Plan (and apply if configured) Grafana dashboards."),
    "state.prune": JobSpec("sre.store.retention:run_job", every=21600, enabled_by_default=True,
                           description="Delete finished job runs and their check results older than state.retention."),
    "dr.readiness": JobSpec("sre.dr.readiness:run_job", every=60, enabled_by_default=True,
                            description="DR readiness of every region pair: verdict, RPO and RTO estimates."),
    "elk.reconcile": JobSpec("sre.provision.reconcile:run_elk", every=900,
                             description="Plan (and apply if configured) Elasticsearch policies and templates."),
}


def effective_jobs(cfg: SreConfig) -> dict[str, tuple[JobSpec, JobConfig]]:
    """The jobs this config enables, with their final trigger."""
    out: dict[str, tuple[JobSpec, JobConfig]] = {}
    for name, spec in JOBS.items():
        override = cfg.jobs.get(name)
        if override is None:
            if not spec.enabled_by_default:
                continue
            jc = JobConfig(every=spec.every, cron=spec.cron, only_environments=spec.only_environments)
        else:
            jc = override
        if not jc.enabled:
            continue
        if jc.every is None and jc.cron is None:  # enabled without a trigger: the job's default one
            if spec.every is None and spec.cron is None:
                from sre.config import ConfigError

                raise ConfigError([f"jobs.{name}: give every or cron (this job has no default trigger)"])
            jc = jc.model_copy(update={"every": spec.every, "cron": spec.cron})
        envs = jc.only_environments or spec.only_environments
        if envs and cfg.environment not in envs:
            continue
        out[name] = (spec, jc)
    for name in cfg.jobs:
        if name not in JOBS:
            from sre.config import ConfigError

            raise ConfigError([f"jobs.{name}: unknown job (known: {', '.join(sorted(JOBS))})"])
    return out


def resolve(func: str) -> Callable[[JobContext], JobOutcome]:
    module, _, attr = func.partition(":")
    fn: Callable[[JobContext], JobOutcome] = getattr(importlib.import_module(module), attr)
    return fn


def run_job(name: str, ctx: JobContext, fn: Callable[[JobContext], JobOutcome] | None = None) -> JobOutcome:
    """Run one job and record it: a `runs` row, its CheckResults, and the sre_job_* metrics."""
    if fn is None:
        fn = resolve(JOBS[name].func)
    with ctx.store.session() as s:
        slot = {"slot": ctx.slot.isoformat()} if ctx.slot is not None else {}
        run = Run(kind=name, trigger=ctx.trigger, status="running", summary=slot, host=replica_id())
        s.add(run)
        s.flush()
        ctx.run_id = run.id
    t0 = time.monotonic()
    status = "error"
    outcome = JobOutcome(status="error")
    try:
        outcome = fn(ctx)
        status = outcome.status
    except KeyboardInterrupt:
        status = "interrupted"
        outcome = JobOutcome(status=status, summary={"error": "interrupted"})
        raise
    except Exception as exc:  # a job failing must not take the scheduler down
        log.exception("job %s failed", name, extra=log_fields(job=name))
        outcome = JobOutcome(status="error", summary={"error": f"{exc.__class__.__name__}: {exc}"})
        status = "error"
    finally:
        elapsed = time.monotonic() - t0
        if ctx.cancelled() and status == "error":
            status = "interrupted"
        JOB_RUNS.labels(name, status).inc()
        JOB_DURATION.labels(name).observe(elapsed)
        if status in ("ok", "warn"):
            JOB_LAST_SUCCESS.labels(name).set(time.time())
        with ctx.store.session() as s:
            row = s.get(Run, ctx.run_id)
            if row is not None:
                row.status = status
                row.finished = utcnow()
                row.summary = {**outcome.summary, "duration_seconds": round(elapsed, 3), **slot}
        if outcome.results:
            store_results(ctx.store, outcome.results, ctx.run_id)
        log.info("job %s finished: %s in %.2fs", name, status, elapsed,
                 extra=log_fields(job=name, status=status, duration_seconds=round(elapsed, 3), run_id=ctx.run_id))
    outcome.status = status
    return outcome


def record_run(cfg: SreConfig, kind: str, results: list[CheckResult], *, trigger: str = "manual",
               summary: dict[str, Any] | None = None) -> None:
    """Keep checks run outside the scheduler (`sre backup verify`, `sre up`) as a run of job `kind`,
    stored exactly as the job's own run would be, so readers of the store (sre dr) see them."""
    # Imported here: the registry above must stay cheap to import (CLI start-up).
    from sre.store import open_store

    store = open_store(cfg)
    try:
        run_job(kind, JobContext(cfg, store, trigger=trigger),
                fn=lambda _ctx: JobOutcome(status=worst([r.status for r in results]), results=results,
                                           summary=summary if summary is not None else {"checks": len(results)}))
    finally:
        store.dispose()


def store_results(store: Store, results: list[CheckResult], run_id: int | None = None) -> None:
    with store.session() as s:
        s.add_all(
            CheckRow(run_id=run_id, check=r.check, target=r.target, status=r.status,
                     observed=r.observed, message=r.message, at=r.at)
            for r in results
        )
