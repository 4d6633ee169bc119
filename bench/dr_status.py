"""Wall time of `sre dr status` on the sandbox, reusing one fresh round of stored checks, against
`sre replicas check` (one live replication round) in the same run, as a ratio.

Goal: `sre dr status` answers in under 1 s (median), the figure `docs/dr.md` promises on-call.
The ratio says what the join costs beyond one check round.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 9
GOAL = 1.0
SRE = str(Path(sys.executable).with_name("sre"))


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t


def main() -> int:
    from sre.config import load_config
    from sre.jobs import run_job
    from sre.results import JobContext
    from sre.sandbox import Stack
    from sre.sandbox.config import write_sandbox_config
    from sre.store import open_store

    stack = Stack.start({"postgres", "redis", "moto"})
    try:
        path = write_sandbox_config(stack, Path(tempfile.mkdtemp(prefix="sre-bench-dr-")) / "state")
        cfg = load_config(path)
        store = open_store(cfg)
        # The service's rounds: what `sre dr status` reuses while they are younger than their interval.
        for job in ("backups.freshness", "dr.readiness"):
            run_job(job, JobContext(cfg, store))
        baseline_cmd = [SRE, "replicas", "check", "-c", str(path), "-o", "json"]
        dr_cmd = [SRE, "dr", "status", "-c", str(path), "-o", "json"]
        base, dr = [], []
        for _ in range(RUNS):  # interleaved, so machine noise hits both alike
            run_job("replicas.check", JobContext(cfg, store))  # fresh, as the 15 s schedule keeps it
            base.append(timed(baseline_cmd))
            dr.append(timed(dr_cmd))
        store.dispose()
    finally:
        stack.stop()
    b, d = statistics.median(base), statistics.median(dr)
    print(f"sre replicas check: median {b * 1000:.0f} ms over {RUNS} runs")
    print(f"sre dr status:      median {d * 1000:.0f} ms over {RUNS} runs (max {max(dr) * 1000:.0f} ms)")
    print(f"ratio: {d / b:.2f}x")
    ok = d < GOAL
    print(f"goal: sre dr status under {GOAL:.0f} s: {'met' if ok else 'MISSED'} ({d:.2f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
