"""APScheduler wiring: the jobs that config enables, each run recorded through `sre.jobs.run_job`.

With several replicas, only the one that holds leadership schedules (see `sre.leader`); this
module asks a `Leadership` object before starting and stops at once when leadership is lost.
"""

from __future__ import annotations

import socket
import threading
from typing import TYPE_CHECKING, Any

from sre.jobs import JobContext, effective_jobs, resolve, run_job
from sre.telemetry import SCHEDULER_RUNNING, get_logger

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

    from sre.config import SreConfig
    from sre.store import Store

log = get_logger("sre.scheduler")


class JobScheduler:
    def __init__(self, cfg: SreConfig, store: Store) -> None:
        self.cfg = cfg
        self.store = store
        self.jobs = effective_jobs(cfg)
        self._stopping = threading.Event()
        self._sched: BackgroundScheduler | None = None

    @property
    def running(self) -> bool:
        return self._sched is not None and self._sched.running

    def _trigger(self, every: float | None, cron: str | None) -> Any:
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        if every is not None:
            return IntervalTrigger(seconds=every)
        assert cron is not None
        return CronTrigger.from_crontab(cron, timezone="UTC")

    def run_now(self, name: str, trigger: str = "schedule") -> None:
        spec, _ = self.jobs[name]
        ctx = JobContext(cfg=self.cfg, store=self.store, trigger=trigger, cancelled=self._stopping.is_set)
        run_job(name, ctx, resolve(spec.func))

    def start(self) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        self._stopping.clear()
        sched = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=4)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
            timezone="UTC",
        )
        for name, (_spec, jc) in self.jobs.items():
            sched.add_job(self.run_now, self._trigger(jc.every, jc.cron), args=[name], id=name, name=name)
        self.mark_interrupted()
        sched.start()
        self._sched = sched
        SCHEDULER_RUNNING.set(1)
        log.info("scheduler started with %d job(s): %s", len(self.jobs), ", ".join(sorted(self.jobs)) or "none")

    def stop(self, wait: bool = True) -> None:
        """Stop scheduling; running jobs see `cancelled()` and finish (or record themselves interrupted)."""
        self._stopping.set()
        if self._sched is not None and self._sched.running:
            self._sched.shutdown(wait=wait)
        self._sched = None
        SCHEDULER_RUNNING.set(0)

    def mark_interrupted(self) -> int:
        """Runs this host left 'running' (a crash, a SIGKILL) are recorded as interrupted."""
        from sqlalchemy import update

        from sre.store.base import utcnow
        from sre.store.runs import Run

        with self.store.session() as s:
            res = s.execute(
                update(Run).where(Run.status == "running", Run.host == socket.gethostname())
                .values(status="interrupted", finished=utcnow())
            )
            return int(getattr(res, "rowcount", 0) or 0)
