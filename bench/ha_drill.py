"""Drills through Patroni 3.0 (etcd 3.4, two nodes on loopback, ttl 10 s, loop_wait 2 s,
retry_timeout 3 s), each measured by an independent canary: its own thread and connection,
a row every 50 ms through a multi-host DSN (`target_session_attrs=read-write`), never the drill's
canary, DNS record or probe.

In one run, on the same pair:
1. `patronictl switchover` alone, there and back (--runs times): the baseline write gap;
2. `sre drill failover --failback` through the patroni backend (--runs times): the drill's
   reported RTO against the independent canary's gap in the same switch, and that gap against
   the bare switchover's;
3. one observed drill (the leader's Patroni and PostgreSQL SIGKILLed): the drill's detection +
   promotion against the independent canary's gap.

Goals: the drill's reported RTO within 50 ms of the independent gap (median); the drill adds at
most 10% to the bare switchover's gap (medians); observed detection + promotion within 100 ms of
the independent gap.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.ha_env, when run as a script

from sre.drills.canary import Canary
from sre.drills.failover import DrillRequest, run_drill
from sre.store import open_store
from tests.ha_env import HaEnv, start_ha_env

GOAL_RTO_AGREEMENT = 0.050
GOAL_OVERHEAD = 0.10
GOAL_PHASES = 0.100


def gap(canary: Canary, start: float, end: float) -> float:
    """The longest time between consecutive acknowledged writes that straddle [start, end]."""
    acks = [a.at for a in canary.snapshot()]
    before = [t for t in acks if t <= start]
    inside = [t for t in acks if start < t <= end]
    after = [t for t in acks if t > end]
    series = before[-1:] + inside + after[:1]
    return max((b - a for a, b in itertools.pairwise(series)), default=float("nan"))


def patronictl_switchover(env: HaEnv, leader: str, candidate: str) -> None:
    conf = env.pair.node(leader).config_path
    subprocess.run(["patronictl", "-c", str(conf), "switchover", "--leader", leader, "--candidate", candidate,
                    "--force"], check=True, capture_output=True, text=True, timeout=120)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    env = start_ha_env()
    canary = Canary(lambda: (env.multi_host_dsn(), "multi-host"), "bench_ha_canary", -1, 0.05)
    bare: list[float] = []
    drill_gap: list[float] = []
    agreement: list[float] = []
    try:
        env.settle()
        canary.prepare()
        canary.start()
        canary.wait_for(lambda a: len(a) >= 5, 10, "canary warm-up")
        for i in range(args.runs):
            for leader, cand in (("east1", "west1"), ("west1", "east1")):
                t0 = time.time()
                patronictl_switchover(env, leader, cand)
                env.settle(cand)
                g = gap(canary, t0, time.time())
                bare.append(g)
                print(f"patronictl switchover {leader} -> {cand} ({i + 1}): independent gap {g:.3f} s")
        cfg = env.config()
        store = open_store(cfg)
        for i in range(args.runs):
            t0 = time.time()
            rep = run_drill(cfg, store, DrillRequest("us-east-1", "eu-west-1", failback=True, actor="bench"))
            env.settle()
            if rep["status"] != "passed":
                print(f"drill {i + 1}: {rep['status']}: {rep['message']}")
                return 1
            for sw in rep["switches"]:
                window = (sw["last_ack_before"]["ts"] - 1.0, sw["first_ack_after"]["ts"] + 1.0)
                g = gap(canary, *window)
                drill_gap.append(g)
                agreement.append(abs(sw["rto_seconds"] - g))
                print(f"drill {rep['id']} {sw['name']}: reported RTO {sw['rto_seconds']:.3f} s, independent gap "
                      f"{g:.3f} s (difference {abs(sw['rto_seconds'] - g) * 1000:.0f} ms)")
            assert t0  # the drill's whole duration is in its report
        rep = run_drill(cfg, store, DrillRequest("us-east-1", "eu-west-1", mode="unplanned", kind="observed",
                                                 failback=True, actor="bench"))
        env.settle()
        fo = rep["switches"][0]
        if fo.get("detection_seconds") is None:
            print(f"observed drill {rep['id']}: {rep['status']}: {rep['message']}")
            return 1
        observed_gap = gap(canary, fo["last_ack_before"]["ts"] - 1.0, fo["first_ack_after"]["ts"] + 1.0)
        phases = fo["detection_seconds"] + fo["promotion_seconds"]
        print(f"observed drill {rep['id']}: detection {fo['detection_seconds']:.3f} s + promotion "
              f"{fo['promotion_seconds']:.3f} s = {phases:.3f} s (path back {fo['path_back_seconds']:.3f} s, "
              f"RTO {fo['rto_seconds']:.3f} s); independent gap {observed_gap:.3f} s")
    finally:
        canary.stop()
        env.stop()
    med_bare, med_drill, med_agree = statistics.median(bare), statistics.median(drill_gap), statistics.median(agreement)
    overhead = med_drill / med_bare - 1
    phase_diff = abs(phases - observed_gap)
    print(f"baseline: patronictl switchover alone, independent gap median {med_bare:.3f} s "
          f"(min {min(bare):.3f}, max {max(bare):.3f}, {len(bare)} switches)")
    print(f"sre drill through the patroni backend: independent gap median {med_drill:.3f} s "
          f"({overhead * 100:+.1f}% on the bare switchover); reported RTO vs independent gap: median difference "
          f"{med_agree * 1000:.0f} ms (max {max(agreement) * 1000:.0f} ms)")
    print(f"observed drill: detection + promotion vs independent gap: {phase_diff * 1000:.0f} ms apart")
    ok = med_agree <= GOAL_RTO_AGREEMENT and overhead <= GOAL_OVERHEAD and phase_diff <= GOAL_PHASES
    print(f"goal: reported RTO within {GOAL_RTO_AGREEMENT * 1000:.0f} ms of the independent gap, drill gap at most "
          f"+{GOAL_OVERHEAD * 100:.0f}% on patronictl switchover, observed detection + promotion within "
          f"{GOAL_PHASES * 1000:.0f} ms of the independent gap: {'met' if ok else 'MISSED'} "
          f"({med_agree * 1000:.0f} ms, {overhead * 100:+.1f}%, {phase_diff * 1000:.0f} ms)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
