"""The state.prune job: the service's own history kept to `state.retention`.

A replica-lag check every 15 s writes about 6,000 runs a day; without pruning the state store
grows without bound. Audit tables (remediations, drill reports) are not touched here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sre.jobs import JobContext, JobOutcome

BATCH = 5000  # rows per statement: short transactions, no long lock on the table


def run_job(ctx: JobContext) -> JobOutcome:
    from sqlalchemy import delete, select

    from sre.jobs import JobOutcome
    from sre.store.base import utcnow
    from sre.store.runs import Run

    cutoff = utcnow() - timedelta(seconds=ctx.cfg.state.retention)
    deleted = 0
    while not ctx.cancelled():
        with ctx.store.session() as s:
            ids = list(s.scalars(select(Run.id).where(Run.started < cutoff, Run.status != "running")
                                 .order_by(Run.id).limit(BATCH)))
            if ids:
                # check_results go with their run (ON DELETE CASCADE).
                s.execute(delete(Run).where(Run.id.in_(ids)))
        deleted += len(ids)
        if len(ids) < BATCH:
            break
    return JobOutcome(summary={"deleted_runs": deleted, "cutoff": cutoff.isoformat()})
