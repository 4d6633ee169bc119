"""state.prune: old finished runs and processed inbox rows go; recent, running and pending stay."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from sre.config import load_config
from sre.results import JobContext
from sre.store import Store
from sre.store.base import utcnow
from sre.store.remediation import InboxRow
from sre.store.retention import run_job
from sre.store.runs import CheckRow, Run


def test_prune_keeps_what_is_recent_or_unfinished(tmp_path: Path) -> None:
    cfg = load_config(None, environ={"SRE_STATE__DIR": str(tmp_path), "SRE_STATE__RETENTION": "30d"})
    store = Store(cfg.state.resolved_url())
    store.migrate()
    old, new = utcnow() - timedelta(days=31), utcnow() - timedelta(days=29)
    with store.session() as s:
        for kind, started, status in (("old-ok", old, "ok"), ("old-running", old, "running"), ("new-ok", new, "ok")):
            run = Run(kind=kind, started=started, status=status, summary={})
            s.add(run)
            s.flush()
            s.add(CheckRow(run_id=run.id, check="c", target=kind, status="ok", observed={}, message=""))
        for fp, received, state in (("old-done", old, "done"), ("old-pending", old, "pending"), ("new-done", new, "done")):
            s.add(InboxRow(received_at=received, fingerprint=fp, status="firing", starts_at=old, state=state))
    out = run_job(JobContext(cfg=cfg, store=store))
    assert out.summary["deleted_runs"] == 1 and out.summary["deleted_inbox_rows"] == 1
    with store.session() as s:
        assert sorted(r.kind for r in s.scalars(select(Run))) == ["new-ok", "old-running"]
        assert sorted(c.target for c in s.scalars(select(CheckRow))) == ["new-ok", "old-running"]
        assert sorted(r.fingerprint for r in s.scalars(select(InboxRow))) == ["new-done", "old-pending"]
