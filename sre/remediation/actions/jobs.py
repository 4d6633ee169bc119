"""job.run: run one of sre's own scheduled jobs once now (a stale or failing check, measured again).

Refused while a run of the same job is in progress (the scheduler's, or another replica's): two
copies of a restore test or of a drill must never run together. A run in progress is waited for
a little first (WAIT_FOR_RUNNING): a check that runs every few seconds is often running when its
alert arrives, and a refusal would count as a failed remediation towards the breaker. The run is
recorded like any other (`runs`, trigger `remediation`), so its CheckResults and metrics update
as usual.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import Field
from sqlalchemy import select

from sre.errors import SreError
from sre.jobs import JOBS, effective_jobs, run_job
from sre.remediation.actions import Action, ActionContext, ActionError, ActionRefused, Params
from sre.results import JobContext
from sre.store.base import utcnow
from sre.store.runs import Run

if TYPE_CHECKING:
    from sre.config import SreConfig

# A run still `running` after this long belongs to a process that died: it no longer blocks.
RUNNING_FOR_AT_MOST = timedelta(hours=6)
# How long a run in progress is waited for before the action is refused (well inside the
# engine's action budget): a quick check finishes in it, a restore test or a drill does not.
WAIT_FOR_RUNNING = 15.0


class JobParams(Params):
    job: str = Field(min_length=1, description="The job's name, as in `jobs:` (replicas.check, backups.verify...).")


class RunJob(Action):
    name = "job.run"
    params_model = JobParams

    def target(self, p: JobParams) -> str:
        return f"job/{p.job}"

    def check_target(self, p: JobParams, cfg: SreConfig) -> str | None:
        if p.job not in JOBS:
            return f"no job {p.job!r} (known: {', '.join(sorted(JOBS))})"
        if p.job not in effective_jobs(cfg):
            return f"job {p.job} is not enabled here (jobs.{p.job} in sre.yaml)"
        return None

    def describe(self, p: JobParams) -> str:
        return f"would run job {p.job} once now (recorded in runs with trigger remediation), unless a run is going on"

    def run(self, p: JobParams, ctx: ActionContext) -> dict[str, Any]:
        if ctx.store is None:
            raise ActionError("job.run needs the state store")
        store = ctx.store

        def running() -> Any:
            with store.session() as s:
                return s.execute(select(Run.id, Run.started).where(
                    Run.kind == p.job, Run.status == "running", Run.started > utcnow() - RUNNING_FOR_AT_MOST)
                    .order_by(Run.id.desc()).limit(1)).first()

        deadline = time.monotonic() + WAIT_FOR_RUNNING
        while (busy := running()) is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        if busy is not None:
            raise ActionRefused(f"job {p.job} is running now (run #{busy.id} since "
                                f"{busy.started:%H:%M:%S}Z): not a second copy")
        jctx = JobContext(cfg=ctx.cfg, store=ctx.store, trigger="remediation")
        try:
            outcome = run_job(p.job, jctx)
        except SreError as exc:
            raise ActionError(f"job {p.job}: {exc}") from None
        if outcome.status == "error":
            raise ActionError(f"job {p.job} ended in error (run #{jctx.run_id}): "
                              f"{outcome.summary.get('error', 'see the run')}")
        return {"job": p.job, "run_id": jctx.run_id, "status": outcome.status}
