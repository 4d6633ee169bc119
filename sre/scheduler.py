"""APScheduler wiring: the jobs that config enables, each run recorded through `sre.jobs.run_job`.

Only the leader schedules (`sre.leader`): the scheduler starts when this replica is elected and
stops at once when it loses leadership. Every scheduled run fills one slot: an interval job's
slots sit on a grid anchored at the epoch (every replica computes the same ones), a cron job's
slot is its fire time. A slot is claimed before the run starts, once in total across replicas,
so a leader change neither doubles a run nor, within `leader.catchup`, loses one: a new leader
runs at once the current slot of a job whose previous slot ran but whose current one did not.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter

from sre.cron import crontab_trigger
from sre.jobs import effective_jobs, resolve, run_job
from sre.leader import leadership_for, replica_id
from sre.results import JobContext
from sre.store.base import utcnow
from sre.store.leader import JobSlot
from sre.store.runs import Run
from sre.telemetry import SCHEDULER_RUNNING, get_logger, log_fields

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

    from sre.config import JobConfig, SreConfig
    from sre.leader import Leadership
    from sre.store import Store

log = get_logger("sre.scheduler")

MISSED_SLOTS = Counter("sre_job_missed_slots_total", "Schedule slots no replica ran (no leader at the time).", ["job"])
CRON_MS = 60_000  # crontab's resolution: a cron slot is its minute


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class JobScheduler:
    def __init__(self, cfg: SreConfig, store: Store, leadership: Leadership | None = None) -> None:
        self.cfg = cfg
        self.store = store
        self.jobs = effective_jobs(cfg)
        self.leadership = leadership if leadership is not None else leadership_for(cfg, store)
        self._stopping = threading.Event()  # the service is shutting down
        self._cancel = threading.Event()  # running jobs should wrap up (shutdown or leadership lost)
        self._mu = threading.Lock()
        self._sched: BackgroundScheduler | None = None

    # ------------------------------------------------------------ state for /readyz and /metrics

    @property
    def running(self) -> bool:
        return self._sched is not None and self._sched.running

    @property
    def leader(self) -> bool:
        return self.leadership.is_leader

    @property
    def ready(self) -> bool:
        """A leader that schedules, or a standby still competing; not while shutting down."""
        if self._stopping.is_set() or not self.leadership.alive:
            return False
        return self.running or not self.leader

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Take part in leadership; with SQLite this starts scheduling before it returns."""
        self._stopping.clear()
        self.leadership.start(self._lead, self._follow)

    def stop(self, wait: bool = True) -> None:
        """Stop scheduling, let running jobs finish (they see `cancelled()`), then hand leadership over."""
        self._stopping.set()
        self._follow(wait=wait)
        self.leadership.stop()

    def _lead(self) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        with self._mu:
            if self._stopping.is_set() or self._sched is not None:
                return
            self._cancel.clear()
            sched = BackgroundScheduler(
                executors={"default": ThreadPoolExecutor(max_workers=4)},
                job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
                timezone="UTC",
            )
            now_ms = int(time.time() * 1000)
            for name, (_spec, jc) in self.jobs.items():
                sched.add_job(self._fire, self._trigger(jc, now_ms), args=[name], id=name, name=name)
            self.mark_interrupted()
            for name, slot_ms, missed in self.catchups(now_ms):
                sched.add_job(self.run_slot, "date", run_date=datetime.now(UTC), args=[name, slot_ms, missed],
                              id=f"{name}@catchup", name=f"{name} (catch-up)")
            sched.start()
            self._sched = sched
            SCHEDULER_RUNNING.set(1)
        log.info("scheduler started on %s with %d job(s): %s", replica_id(), len(self.jobs),
                 ", ".join(sorted(self.jobs)) or "none")

    def _follow(self, wait: bool = False) -> None:
        """Stop scheduling now. From the leadership thread, never wait: a lost leader stops at once."""
        self._cancel.set()
        with self._mu:
            sched, self._sched = self._sched, None
            SCHEDULER_RUNNING.set(0)
        if sched is not None and sched.running:
            sched.shutdown(wait=wait)
            log.info("scheduler stopped on %s", replica_id())

    # ------------------------------------------------------------ slots

    def _trigger(self, jc: JobConfig, now_ms: int) -> Any:
        from apscheduler.triggers.interval import IntervalTrigger

        if jc.every is not None:
            every_ms = max(1, round(jc.every * 1000))
            first = (now_ms // every_ms + 1) * every_ms  # the next point of the epoch-anchored grid
            return IntervalTrigger(seconds=every_ms / 1000, start_date=_dt(first), timezone=UTC)
        assert jc.cron is not None
        return crontab_trigger(jc.cron)  # Sunday is 0, as in crontab (sre.cron)

    def slot_of(self, name: str, now_ms: int) -> int:
        """The slot a run starting at `now_ms` fills."""
        jc = self.jobs[name][1]
        step = max(1, round(jc.every * 1000)) if jc.every is not None else CRON_MS
        return now_ms // step * step

    def catchups(self, now_ms: int) -> list[tuple[str, int, int]]:
        """(job, slot, slots missed before it) for each job a new leader should run at once."""
        from sqlalchemy import select


        with self.store.session() as s:
            last = {r.job: r.slot_ms for r in s.scalars(select(JobSlot).where(JobSlot.job.in_(list(self.jobs))))}
        window_ms = int(self.cfg.leader.catchup * 1000)
        out: list[tuple[str, int, int]] = []
        for name, (_spec, jc) in self.jobs.items():
            prev = last.get(name)
            if prev is None:
                continue  # never ran: its first slot comes on schedule
            if jc.every is not None:
                every_ms = max(1, round(jc.every * 1000))
                current = now_ms // every_ms * every_ms
                if prev < current <= prev + every_ms + window_ms:
                    out.append((name, current, (current - prev) // every_ms - 1))
            else:
                fires = self._missed_cron_fires(jc, prev, now_ms, window_ms)
                if fires:
                    out.append((name, fires[-1], len(fires) - 1))
        return out

    def _missed_cron_fires(self, jc: JobConfig, after_ms: int, now_ms: int, window_ms: int) -> list[int]:
        """Fire times after `after_ms` up to now, when the first of them is within the window."""
        trig = self._trigger(jc, now_ms)
        fires: list[int] = []
        t = _dt(after_ms) + timedelta(seconds=1)
        while (nxt := trig.get_next_fire_time(None, t)) is not None and _ms(nxt) <= now_ms:
            if not fires and now_ms - _ms(nxt) > window_ms:
                return []
            fires.append(_ms(nxt))
            t = nxt + timedelta(seconds=1)
        return fires

    # ------------------------------------------------------------ runs

    def _fire(self, name: str) -> None:
        self.run_slot(name, self.slot_of(name, int(time.time() * 1000)))

    def run_slot(self, name: str, slot_ms: int, missed: int = 0) -> bool:
        """Run `name` for one slot if this replica can claim it; False when another run has it."""
        if not self.leadership.claim(name, slot_ms):
            log.debug("job %s: slot %s not claimed here", name, _dt(slot_ms).isoformat())
            return False
        if missed > 0:
            MISSED_SLOTS.labels(name).inc(missed)
            log.warning("job %s: %d slot(s) before %s had no leader to run them", name, missed,
                        _dt(slot_ms).isoformat(), extra=log_fields(job=name, missed_slots=missed))
        spec, _ = self.jobs[name]
        ctx = JobContext(cfg=self.cfg, store=self.store, trigger="schedule", cancelled=self._cancel.is_set,
                         slot=_dt(slot_ms))
        run_job(name, ctx, resolve(spec.func))
        return True

    def run_now(self, name: str, trigger: str = "manual") -> None:
        """Run a job once outside the schedule (it fills no slot)."""
        spec, _ = self.jobs[name]
        ctx = JobContext(cfg=self.cfg, store=self.store, trigger=trigger, cancelled=self._stopping.is_set)
        run_job(name, ctx, resolve(spec.func))

    def mark_interrupted(self) -> int:
        """Runs left 'running' by a crash are recorded as interrupted: this replica's own, and the
        scheduled runs of a previous leader (only a leader starts those)."""
        from sqlalchemy import or_, update


        with self.store.session() as s:
            res = s.execute(
                update(Run).where(Run.status == "running", or_(Run.host == replica_id(), Run.trigger == "schedule"))
                .values(status="interrupted", finished=utcnow())
            )
            return int(getattr(res, "rowcount", 0) or 0)
