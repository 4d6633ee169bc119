"""The state.prune job: the service's own history kept to `state.retention`.

A replica-lag check every 15 s writes about 6,000 runs a day; without pruning the state store
grows without bound; so would the alert inbox under a storm. Processed inbox rows go after the
same retention; audit tables (remediations and their events, drill reports) are kept.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sre.results import JobOutcome
from sre.store.base import utcnow
from sre.store.remediation import InboxRow
from sre.store.runs import Run

if TYPE_CHECKING:
    from sre.results import JobContext, JobOutcome

BATCH = 5000  # rows per statement: short transactions, no long lock on the table


def _prune(ctx: JobContext, table: Any, *where: Any) -> int:
    """Delete matching rows oldest first, BATCH at a time, until none are left or shutdown."""
    from sqlalchemy import delete, select

    deleted = 0
    while not ctx.cancelled():
        with ctx.store.session() as s:
            ids = list(s.scalars(select(table.id).where(*where).order_by(table.id).limit(BATCH)))
            if ids:
                s.execute(delete(table).where(table.id.in_(ids)))
        deleted += len(ids)
        if len(ids) < BATCH:
            break
    return deleted


def run_job(ctx: JobContext) -> JobOutcome:
    cutoff = utcnow() - timedelta(seconds=ctx.cfg.state.retention)
    # check_results go with their run (ON DELETE CASCADE).
    runs = _prune(ctx, Run, Run.started < cutoff, Run.status != "running")
    inbox = _prune(ctx, InboxRow, InboxRow.received_at < cutoff, InboxRow.state == "done")
    return JobOutcome(summary={"deleted_runs": runs, "deleted_inbox_rows": inbox, "cutoff": cutoff.isoformat()})
