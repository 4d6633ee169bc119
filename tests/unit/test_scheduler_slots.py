"""Schedule slots on a real (SQLite) store: claims are once per slot and only forward, and a new
leader catches up exactly the slot its predecessor missed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sre.config import SreConfig
from sre.leader import SoleReplica
from sre.scheduler import JobScheduler
from sre.store import Store, open_store

JOB = "state.prune"
CRON_JOB = "backups.verify"


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(SreConfig.model_validate({"state": {"dir": str(tmp_path)}}))
    yield s
    s.dispose()


def scheduler(store: Store, tmp_path: Path, catchup: str = "60s") -> JobScheduler:
    cfg = SreConfig.model_validate({
        "state": {"dir": str(tmp_path)},
        "leader": {"catchup": catchup},
        "jobs": {JOB: {"every": "15s"}, CRON_JOB: {"cron": "0 4 * * *"}},
    })
    return JobScheduler(cfg, store, SoleReplica(store))


def forget_slots(store: Store) -> None:
    from sqlalchemy import delete

    from sre.store.leader import JobSlot

    with store.session() as s:
        s.execute(delete(JobSlot))


def test_a_slot_is_claimed_once_and_never_after_a_later_one(store: Store) -> None:
    lead = SoleReplica(store)
    assert lead.claim(JOB, 30_000)
    assert not lead.claim(JOB, 30_000)  # the same slot again: another replica, a late timer
    assert not lead.claim(JOB, 15_000)  # an older slot after a newer one
    assert lead.claim(JOB, 45_000)
    assert lead.claim("other.job", 15_000)  # slots are per job


def test_interval_slots_sit_on_a_grid_anchored_at_the_epoch(store: Store, tmp_path: Path) -> None:
    sched = scheduler(store, tmp_path)
    assert sched.slot_of(JOB, ms("2030-01-01T00:00:29.999")) == ms("2030-01-01T00:00:15")
    assert sched.slot_of(JOB, ms("2030-01-01T00:00:30.000")) == ms("2030-01-01T00:00:30")
    assert sched.slot_of(CRON_JOB, ms("2030-01-01T04:00:00.250")) == ms("2030-01-01T04:00:00")


def test_a_new_leader_runs_the_slot_its_predecessor_missed(store: Store, tmp_path: Path) -> None:
    sched = scheduler(store, tmp_path)
    lead = SoleReplica(store)
    now = ms("2030-01-01T00:00:31")
    assert sched.catchups(now) == []  # never ran: the first slot comes on schedule

    lead.claim(JOB, ms("2030-01-01T00:00:30"))
    assert sched.catchups(now) == []  # the current slot already ran

    forget_slots(store)
    lead.claim(JOB, ms("2030-01-01T00:00:15"))
    assert sched.catchups(now) == [(JOB, ms("2030-01-01T00:00:30"), 0)]

    forget_slots(store)
    lead.claim(JOB, ms("2030-01-01T00:00:00"))  # one slot before had no leader either
    assert sched.catchups(now) == [(JOB, ms("2030-01-01T00:00:30"), 1)]

    forget_slots(store)
    lead.claim(JOB, ms("2029-12-31T23:00:00"))  # an outage, not a handover: wait for the schedule
    assert sched.catchups(now) == []


def test_a_missed_cron_fire_runs_only_within_the_catchup_window(store: Store, tmp_path: Path) -> None:
    sched = scheduler(store, tmp_path, catchup="5m")
    lead = SoleReplica(store)
    lead.claim(CRON_JOB, ms("2030-01-01T04:00:00"))
    assert sched.catchups(ms("2030-01-02T04:03:00")) == [(CRON_JOB, ms("2030-01-02T04:00:00"), 0)]
    assert sched.catchups(ms("2030-01-02T04:06:00")) == []  # too late: the next fire is tomorrow
    assert sched.catchups(ms("2030-01-02T03:59:00")) == []  # not due yet


def test_scheduled_runs_record_their_slot_and_the_service_alone_always_leads(store: Store, tmp_path: Path) -> None:
    from sqlalchemy import select

    from sre.store.runs import Run

    sched = scheduler(store, tmp_path)
    sched.start()
    try:
        assert sched.leader and sched.running and sched.ready
        assert sched.run_slot(JOB, ms("2030-01-01T00:00:30"))
        assert not sched.run_slot(JOB, ms("2030-01-01T00:00:30"))
    finally:
        sched.stop()
    assert not sched.ready and not sched.running
    with store.session() as s:
        runs = list(s.scalars(select(Run).where(Run.kind == JOB)))
    assert [(r.status, r.trigger, r.summary["slot"]) for r in runs] == [("ok", "schedule", "2030-01-01T00:00:30+00:00")]
