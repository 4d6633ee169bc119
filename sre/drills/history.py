"""Reading recorded drills back (CLI, API)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sre.errors import UsageError
from sre.store import open_store
from sre.store.drills import DrillReport

if TYPE_CHECKING:
    from sre.config import SreConfig
    from sre.store import Store
    from sre.store.drills import DrillReport


def summary(r: DrillReport) -> dict[str, Any]:
    return {"id": r.id, "kind": r.kind, "cluster": r.cluster, "from_region": r.from_region, "to_region": r.to_region,
            "mode": r.mode, "failback": r.failback, "environment": r.environment, "trigger": r.trigger,
            "reason": r.reason, "actor": r.actor, "status": r.status,
            "started": r.started.isoformat() if r.started else None,
            "finished": r.finished.isoformat() if r.finished else None,
            "rto_seconds": r.rto_seconds, "rpo_rows": r.rpo_rows, "rpo_bytes": r.rpo_bytes}


def list_from(store: Store, limit: int = 20, status: str | None = None) -> list[dict[str, Any]]:
    from sqlalchemy import select


    q = select(DrillReport).order_by(DrillReport.id.desc()).limit(limit)
    if status:
        q = q.where(DrillReport.status == status)
    with store.session() as s:
        return [summary(r) for r in s.scalars(q)]


def get_from(store: Store, drill_id: int) -> dict[str, Any] | None:
    with store.session() as s:
        r = s.get(DrillReport, drill_id)
        if r is None:
            return None
        return {**summary(r), "report": r.report, "markdown": r.markdown, "png": r.png}


def list_drills(cfg: SreConfig, limit: int = 20) -> list[dict[str, Any]]:
    return list_from(open_store(cfg), limit)


def get_drill(cfg: SreConfig, drill_id: int) -> dict[str, Any]:
    row = get_from(open_store(cfg), drill_id)
    if row is None:
        raise UsageError(f"no drill {drill_id} (see `sre drill list`)")
    row.pop("png", None)
    return row
