"""Planned failover drills with failback on a private PostgreSQL 15 pair: RTO (the canary's write
gap), RPO (acknowledged rows lost) and total drill time, against the promotion itself
(pg_promote(wait => true) + CHECKPOINT, timed inside the same drill) as the in-process baseline.

Goals: median failover RTO under 1 s of write unavailability; RPO 0 rows in every run (failover and
failback). Each run switches east1 -> west1 and back, rejoining the old primary with pg_rewind.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.drill_env, when run as a script

from sre.drills.failover import DrillRequest, run_drill
from sre.sandbox import Stack
from tests.drill_env import start_drill_env

GOAL_RTO = 1.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    stack = Stack.start({"moto"})
    env = None
    rows: list[dict[str, float]] = []
    try:
        env = start_drill_env(stack)
        store = env.store()
        cfg = env.config()
        for i in range(args.runs):
            rep = run_drill(cfg, store, DrillRequest("us-east-1", "eu-west-1", failback=True, actor="bench"))
            if rep["status"] != "passed":
                print(f"run {i + 1}: drill {rep['status']}: {rep['message']}")
                return 1
            fo, fb = rep["switches"]
            row = {"rto": fo["rto_seconds"], "rto_back": fb["rto_seconds"], "rpo": fo["rpo_rows"] + fb["rpo_rows"],
                   "promote": fo["promote_seconds"], "promote_back": fb["promote_seconds"],
                   "total": rep["duration_seconds"]}
            rows.append(row)
            print(f"run {i + 1}: RTO {row['rto']:.3f} s (back {row['rto_back']:.3f} s), RPO {row['rpo']} rows, "
                  f"promotion {row['promote']:.3f} s, whole drill {row['total']:.1f} s")
    finally:
        if env is not None:
            env.stop()
        stack.stop()
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    rto_all = sorted(r["rto"] for r in rows)
    print(f"baseline: promotion (pg_promote + CHECKPOINT) median {med['promote']:.3f} s "
          f"(back {med['promote_back']:.3f} s)")
    print(f"failover RTO median {med['rto']:.3f} s (min {rto_all[0]:.3f}, max {rto_all[-1]:.3f}), "
          f"{med['rto'] / med['promote']:.1f}x the promotion; failback RTO median {med['rto_back']:.3f} s")
    print(f"RPO: {[int(r['rpo']) for r in rows]} rows lost per run (failover + failback)")
    print(f"whole drill with failback: median {med['total']:.1f} s")
    ok = med["rto"] < GOAL_RTO and all(r["rpo"] == 0 for r in rows)
    print(f"goal: median RTO < {GOAL_RTO:.0f} s and RPO 0 rows in every run: "
          f"{'met' if ok else 'MISSED'} (median RTO {med['rto']:.3f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
