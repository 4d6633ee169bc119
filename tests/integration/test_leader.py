"""Three `sre serve` replicas sharing a PostgreSQL state database: one leader schedules, every
slot of a job runs once in total, and leadership moves on a crash, a cut connection, a shutdown."""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from sre.local.procs import wait_until
from sre.sandbox import Stack
from sre.sandbox.replicas import Member, Replicas

pytestmark = pytest.mark.slow

JOB = "state.prune"  # one cheap statement: the job under test is the schedule, not the work
EVERY = 2.0


@pytest.fixture
def replicas(sandbox: Stack, tmp_path: Path) -> Iterator[Replicas]:
    reps = Replicas.start(sandbox, tmp_path / "replicas", 3, jobs={JOB: {"every": f"{EVERY}s"}},
                          leader={"heartbeat": "0.5s", "retry": "0.5s", "timeout": "1s"})
    try:
        yield reps
    finally:
        reps.stop()


def slots(runs: list[dict[str, Any]]) -> list[float]:
    return [datetime.fromisoformat(r["slot"]).timestamp() for r in runs]


def assert_each_slot_once(runs: list[dict[str, Any]]) -> None:
    """Every slot from the first run to the last ran exactly once: none doubled, none lost."""
    got = slots(runs)
    assert len(got) == len(set(got)), f"a slot ran twice: {runs}"
    expected = [got[0] + i * EVERY for i in range(round((got[-1] - got[0]) / EVERY) + 1)]
    assert sorted(got) == expected, f"a slot was lost: {runs}"


def wait_for_wall_clock(t: float) -> None:
    wait_until(lambda: time.time() >= t, timeout=EVERY * 3, interval=0.01, what=f"wall clock at {t:.2f}")


def next_slot_after(seconds: float) -> float:
    """The next grid point at least `seconds` from now."""
    return math.ceil((time.time() + seconds) / EVERY) * EVERY


def test_one_leader_runs_each_slot_once_and_a_crashed_leader_is_replaced(replicas: Replicas) -> None:
    first = replicas.wait_leader()
    assert all(m.readyz()["http"] == 200 for m in replicas.members)  # type: ignore[index]  # standbys serve too
    replicas.wait_runs(JOB, 4, timeout=30)
    assert {r["host"] for r in replicas.runs(JOB)} == {first.name}

    # Freeze the leader just before a slot and kill it just after: its lock connection stays open
    # while it is frozen, so nobody takes over and the slot goes unclaimed until the kill.
    slot = next_slot_after(1.0)
    wait_for_wall_clock(slot - 0.5)
    assert first.process.pid is not None
    os.kill(first.process.pid, signal.SIGSTOP)
    wait_for_wall_clock(slot + 0.5)
    killed = replicas.kill(first)

    second = replicas.wait_leader(timeout=10, other_than=first.name)
    assert time.monotonic() - killed < 10
    rows = replicas.wait_runs(JOB, 3, timeout=30, host=second.name)
    # The slot the frozen leader missed ran on the new leader at once (a catch-up), not lost.
    caught_up = next(r for r in rows if datetime.fromisoformat(r["slot"]).timestamp() == slot)
    assert caught_up["started"].timestamp() >= slot + 0.5

    # A slot may be in flight when we look; read once every run so far has finished.
    def settled() -> list[dict[str, Any]] | None:
        rows = replicas.runs(JOB)
        return rows if all(r["status"] != "running" for r in rows) else None

    runs = wait_until(settled, timeout=10, interval=0.05, what="no run of the job in flight")
    assert runs is not None
    assert_each_slot_once(runs)
    assert all(r["status"] == "ok" for r in runs), runs
    hosts = [r["host"] for r in runs]
    assert hosts == sorted(hosts, key=lambda h: h != first.name), "runs interleaved between leaders"
    assert len(replicas.leaders()) == 1


def lock_backend(replicas: Replicas, member: Member) -> int:
    rows = replicas.sql("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND application_name = %s", [f"sre-leader:{member.name}"])
    assert len(rows) == 1, rows
    return int(rows[0][0])


def test_a_leader_whose_lock_connection_is_cut_stops_at_once(replicas: Replicas) -> None:
    first = replicas.wait_leader()
    replicas.wait_runs(JOB, 2, timeout=30)

    # Cut the connection just before a slot: the leader's scheduler fires before its heartbeat
    # notices, and the claim, made on the dead connection, must fail.
    slot = next_slot_after(1.0)
    wait_for_wall_clock(slot - 0.05)
    cut_at = replicas.sql("SELECT now(), pg_terminate_backend(%s)", [lock_backend(replicas, first)])[0][0]
    t_cut = time.monotonic()
    wait_until(lambda: first.readyz() and not first.is_leader(), timeout=3, interval=0.02,
               what=f"{first.name} giving leadership up")
    assert time.monotonic() - t_cut < 2.0
    assert first.readyz()["http"] == 200  # type: ignore[index]  # a standby again, still serving

    second = replicas.wait_leader(timeout=10, other_than=first.name)
    replicas.wait_runs(JOB, 3, timeout=30, host=second.name)
    runs = replicas.runs(JOB)
    assert not [r for r in runs if r["host"] == first.name and r["started"] >= cut_at], runs
    assert_each_slot_once(runs)

    # A clean stop hands leadership over too, once its running jobs are done.
    before = len(replicas.runs(JOB))
    second.process.stop(timeout=30)
    assert second.process.proc is not None and second.process.proc.returncode == 0
    third = replicas.wait_leader(timeout=5, other_than=second.name)
    rows = replicas.wait_runs(JOB, before + 2, timeout=30)
    assert rows[-1]["host"] == third.name
    assert_each_slot_once(replicas.runs(JOB))
