"""Leader failover: time from SIGKILL of the leading `sre serve` replica to the first scheduled job
run on the replica that takes over, median of 5.

Three real `sre serve` processes share a PostgreSQL state database on the sandbox primary, with
the default leader settings (heartbeat 1 s, retry 1 s) and one cheap job every second
(state.prune). Each trial kills the leader at a random point of a slot and reads the start time
of the first run by another replica from the `runs` table; a fresh replica then replaces the
killed one. The figure includes waiting for the next slot when the killed leader had already
run the current one.

Baseline, measured in the same run: one replica alone, killed and started again (what a single
pod restart costs, before Kubernetes's own restart delay), to its first run. Anchor: Patroni's
default leader key TTL, 30 s, the time a comparable lease-based leader takes to expire.

Goal: median under 5 s. Exit 1 when missed.

    .venv/bin/python bench/leader_failover.py [--trials 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sre.local.procs import wait_until  # noqa: E402
from sre.sandbox import Stack  # noqa: E402
from sre.sandbox.replicas import Member, Replicas  # noqa: E402

JOB = "state.prune"
EVERY = 1.0
GOAL_SECONDS = 5.0
PATRONI_TTL = 30.0


def first_run_after(reps: Replicas, t_kill: float, other_than: str, timeout: float = 30.0) -> float:
    """Seconds from `t_kill` (wall clock) to the start of the first run by another replica."""

    def found() -> float | None:
        for r in reps.runs(JOB):
            started = r["started"].timestamp()
            if r["host"] != other_than and started > t_kill:
                return started - t_kill
        return None

    delay = wait_until(found, timeout=timeout, interval=0.02, what="a run on the new leader")
    assert delay is not None
    return delay


def kill_at_random_point(reps: Replicas, leader: Member) -> float:
    """Wait until a run of `leader`, then a random fraction of a slot; SIGKILL; return the wall time."""
    reps.wait_runs(JOB, 1, timeout=30, host=leader.name)
    target = time.time() + random.uniform(0, EVERY)
    wait_until(lambda: time.time() >= target, timeout=EVERY * 2, interval=0.005, what="the kill time")
    t_kill = time.time()
    reps.kill(leader)
    return t_kill


def failover_trials(stack: Stack, root: Path, trials: int) -> list[float]:
    reps = Replicas.start(stack, root / "three", 3, jobs={JOB: {"every": f"{EVERY}s"}})
    delays = []
    try:
        for i in range(trials):
            leader = reps.wait_leader(timeout=30)
            t_kill = kill_at_random_point(reps, leader)
            delays.append(first_run_after(reps, t_kill, leader.name))
            reps.members.remove(leader)
            reps.wait_ready(reps.add(f"r{4 + i}"))
            print(f"  failover {i + 1}: {leader.name} killed, first run on the new leader after {delays[-1]:.2f} s",
                  flush=True)
    finally:
        reps.stop()
    return delays


def restart_trials(stack: Stack, root: Path, trials: int) -> list[float]:
    reps = Replicas.start(stack, root / "one", 1, jobs={JOB: {"every": f"{EVERY}s"}})
    delays = []
    try:
        for i in range(trials):
            alone = reps.wait_leader(timeout=30)
            t_kill = kill_at_random_point(reps, alone)
            reps.members.remove(alone)
            reps.add(f"s{i + 2}")  # the same config, as a restarted pod
            delays.append(first_run_after(reps, t_kill, alone.name, timeout=60))
            print(f"  restart {i + 1}: first run after {delays[-1]:.2f} s", flush=True)
    finally:
        reps.stop()
    return delays


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    stack = Stack.start({"postgres"})
    try:
        root = Path(tempfile.mkdtemp(prefix="sre-bench-failover-"))
        started = datetime.now().strftime("%H:%M:%S")
        print(f"leader failover, {args.trials} trials each, job every {EVERY:.0f} s (started {started})", flush=True)
        failover = failover_trials(stack, root, args.trials)
        restart = restart_trials(stack, root, args.trials)
    finally:
        stack.stop()
    med, base = statistics.median(failover), statistics.median(restart)
    print(f"failover (3 replicas): median {med:.2f} s, min {min(failover):.2f}, max {max(failover):.2f}")
    print(f"baseline, single replica restarted: median {base:.2f} s, min {min(restart):.2f}, max {max(restart):.2f}")
    print(f"ratio failover / restart: {med / base:.2f}; failover / Patroni default ttl ({PATRONI_TTL:.0f} s): "
          f"{med / PATRONI_TTL:.3f}")
    ok = med < GOAL_SECONDS
    print(f"goal: median failover < {GOAL_SECONDS:.0f} s: {'met' if ok else 'MISSED'} ({med:.2f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
