"""Wall time of `sre --help` against `python -c pass`, as a ratio (median of several runs).

Goal: under 6x. Heavy clients (fastapi, boto3, kubernetes, elasticsearch) must be imported only
by the commands that use them; importing them eagerly costs over 30x.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

RUNS = 15
GOAL = 6.0
SRE = str(Path(sys.executable).with_name("sre"))


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def main() -> int:
    baseline_cmd = [sys.executable, "-c", "pass"]
    sre_cmd = [SRE, "--help"]
    timed(baseline_cmd), timed(sre_cmd)  # warm the page cache
    base, sre = [], []
    for _ in range(RUNS):  # interleaved, so machine noise hits both alike
        base.append(timed(baseline_cmd))
        sre.append(timed(sre_cmd))
    b, s = statistics.median(base), statistics.median(sre)
    ratio = s / b
    print(f"python -c pass: median {b * 1000:.1f} ms over {RUNS} runs")
    print(f"sre --help:     median {s * 1000:.1f} ms over {RUNS} runs")
    print(f"ratio: {ratio:.2f}x")
    ok = ratio < GOAL
    print(f"goal: sre --help under {GOAL:.0f}x python -c pass: {'met' if ok else 'MISSED'} ({ratio:.2f}x)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
