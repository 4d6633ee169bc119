"""Soak: `sre serve` on the PostgreSQL store under a steady mixed load, watched for growth.

The load, at fixed rates for the whole run: grouped notifications (20 alerts) and single alerts
to the webhook, a tenth of them for a runbook that automates a fix (dry run, so every guard and
the audit run, and nothing outside is touched), the `replicas.check` job every 2 s against the
sandbox primary and replica, and API reads (`/api/remediations`, `/api/runs`, `/metrics`) with
their roles' tokens. Every 5 s the service's resident memory, open file descriptors and its
PostgreSQL connections are sampled.

The baseline is the same process after its first minute (warm caches, pools filled): the figure
is the growth from there to the end. Goals: resident memory grows under 10% (last sample against
the first after the warm-up), file descriptors and connections stay flat (the median of the last
minute within 10%, and at most 3, of the median of the minute after the warm-up: a socket open for
one sample is not growth; the maximum is printed too), p99 of every request under 50 ms, and every
answered alert in the inbox. Exit 1 when a goal is missed.

    .venv/bin/python bench/soak.py [--duration 600] [--warmup 60]
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
SRE = str(Path(sys.executable).parent / "sre")
GROUP = 20
RATES = {"grouped": 2.0, "single": 10.0, "read": 4.0}  # per second
AUTOMATED = "SoakGatewayMemoryHigh"
GOAL_RSS_GROWTH = 0.10
GOAL_FLAT = 0.10
GOAL_FLAT_ABS = 3
GOAL_P99_MS = 50.0


@dataclass
class Sample:
    at: float
    rss_kib: int
    fds: int
    connections: int


@dataclass
class Load:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    answered_alerts: int = 0
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.latencies.setdefault(kind, []).append(seconds)


def _alert(n: int, run: str) -> dict[str, Any]:
    automated = n % 10 == 0
    name = AUTOMATED if automated else "SoakUnrouted"
    return {"status": "firing", "startsAt": "2024-05-01T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "labels": {"alertname": name, "namespace": "messaging", "deployment": f"ws-{n % 50}",
                       "pod": f"ws-{n}", "severity": "ticket"},
            "annotations": {"summary": "soak"}, "generatorURL": "http://prometheus/graph",
            "fingerprint": f"{run}{n:012x}"}


def _payload(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"version": "4", "status": "firing", "receiver": "sre", "groupKey": "{}:{}", "truncatedAlerts": 0,
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am",
            "alerts": alerts}


def _every(rate: float, stop: threading.Event, fn: Any) -> None:
    """Call fn() `rate` times a second on a fixed schedule (late calls do not pile up)."""
    interval = 1.0 / rate
    next_at = time.monotonic()
    while not stop.is_set():
        fn()
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        else:
            next_at = time.monotonic()


def run_load(url: str, tokens: dict[str, str], stop: threading.Event, load: Load) -> list[threading.Thread]:
    run = f"{os.getpid():x}"
    counter = iter(range(10**12))
    counter_lock = threading.Lock()

    def next_n() -> int:
        with counter_lock:
            return next(counter)

    def poster(size: int, kind: str) -> Any:
        client = httpx.Client(base_url=url, timeout=10, headers={"Authorization": f"Bearer {tokens['webhook']}"})

        def post() -> None:
            alerts = [_alert(next_n(), run) for _ in range(size)]
            t0 = time.perf_counter()
            try:
                resp = client.post("/webhook/alertmanager", content=json.dumps(_payload(alerts)),
                                   headers={"Content-Type": "application/json"})
            except httpx.HTTPError as exc:
                load.failures.append(f"{kind}: {exc.__class__.__name__}")
                return
            load.record(kind, time.perf_counter() - t0)
            if resp.status_code == 200:
                with load.lock:
                    load.answered_alerts += size
            else:
                load.failures.append(f"{kind}: {resp.status_code}")
        return post

    reads = [("/api/remediations?limit=20", "read"), ("/api/runs?limit=20", "read"), ("/metrics", "metrics")]
    read_client = httpx.Client(base_url=url, timeout=10)
    turn = iter(range(10**12))

    def read() -> None:
        path, role = reads[next(turn) % len(reads)]
        t0 = time.perf_counter()
        try:
            resp = read_client.get(path, headers={"Authorization": f"Bearer {tokens[role]}"})
        except httpx.HTTPError as exc:
            load.failures.append(f"read {path}: {exc.__class__.__name__}")
            return
        load.record("read", time.perf_counter() - t0)
        if resp.status_code != 200:
            load.failures.append(f"read {path}: {resp.status_code}")

    jobs = [(RATES["grouped"], poster(GROUP, "grouped")), (RATES["single"], poster(1, "single")),
            (RATES["read"], read)]
    threads = [threading.Thread(target=_every, args=(rate, stop, fn), daemon=True) for rate, fn in jobs]
    for t in threads:
        t.start()
    return threads


def sample(pid: int, pg: Any, db: str) -> Sample:
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    conns = pg.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [db])[0][0]
    return Sample(time.monotonic(), rss, fds, int(conns))


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000 if ordered else float("nan")


def write_config(stack: Any, workdir: Path, state_url: str) -> tuple[Path, dict[str, str]]:
    from sre.sandbox.config import write_sandbox_config

    path = write_sandbox_config(stack, workdir / "state")
    data = yaml.safe_load(path.read_text())
    runbooks = workdir / "runbooks"
    runbooks.mkdir()
    (runbooks / f"{AUTOMATED}.md").write_text(
        "---\n" + yaml.safe_dump({"alert": AUTOMATED, "severity": "ticket", "remediation": {
            "action": "kubernetes.rollout_restart",
            "target": {"namespace": "{{ labels.namespace }}", "deployment": "{{ labels.deployment }}"},
            "guards": {"cooldown": "30s", "max_per_day": 1000, "only_namespaces": ["messaging"]},
            "verify": {"query": "vector(1)", "within": "10s"}}}) + "---\n# Soak\n")
    data["state"]["url"] = state_url
    data["remediation"] = {"dry_run": True, "runbooks_dir": str(runbooks)}
    data["jobs"] = {"replicas.check": {"every": "2s"}}
    path.write_text(yaml.safe_dump(data))
    tokens = {"webhook": Path(data["webhook"]["token"]["file"]).read_text().strip()}
    for role in ("read", "metrics"):
        tokens[role] = Path(data["api"]["tokens"][role][0]["file"]).read_text().strip()
    return path, tokens


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of load (default 600)")
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds before the baseline sample (default 60)")
    args = ap.parse_args()
    from sre.local.procs import free_port, wait_until
    from sre.sandbox import Stack

    workdir = Path(tempfile.mkdtemp(prefix="sre-bench-soak-"))
    stack = Stack.start({"postgres"})
    proc: subprocess.Popen[bytes] | None = None
    stop = threading.Event()
    load = Load()
    samples: list[Sample] = []
    try:
        pg = stack.postgres
        assert pg is not None
        db = f"sre_soak_{os.getpid()}"
        pg.primary.sql(f"CREATE DATABASE {db}")
        cfg_path, tokens = write_config(stack, workdir, pg.primary.url(database=db))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = workdir / "serve.log"
        proc = subprocess.Popen([SRE, "serve", "--config", str(cfg_path), "--port", str(port)],
                                stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_until(lambda: httpx.get(f"{url}/readyz", timeout=1).status_code == 200, timeout=60,
                   what="sre serve ready")
        t0 = time.monotonic()
        threads = run_load(url, tokens, stop, load)
        baseline: Sample | None = None
        while time.monotonic() - t0 < args.duration:
            time.sleep(5)
            if proc.poll() is not None:
                raise SystemExit(f"sre serve exited {proc.returncode}; log: {log}")
            s = sample(proc.pid, pg.primary, db)
            samples.append(s)
            if baseline is None and s.at - t0 >= args.warmup:
                baseline = s
        stop.set()
        for t in threads:
            t.join(15)
        # Let the inbox catch the last answers (they were committed before the 200 anyway).
        inbox = int(pg.primary.sql("SELECT count(*) FROM alert_inbox", database=db)[0][0])
        decisions = int(pg.primary.sql("SELECT count(*) FROM remediations", database=db)[0][0])
        runs = int(pg.primary.sql("SELECT count(*) FROM runs", database=db)[0][0])
    finally:
        stop.set()
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    assert baseline is not None, "the run was shorter than the warm-up"
    end = samples[-1]
    after = [s for s in samples if s.at >= baseline.at]
    first_minute = [s for s in after if s.at < baseline.at + 60] or [baseline]
    last_minute = [s for s in samples if s.at >= end.at - 60]
    rss_growth = end.rss_kib / baseline.rss_kib - 1
    max_fds, max_conns = max(s.fds for s in after), max(s.connections for s in after)
    all_latencies = [v for vs in load.latencies.values() for v in vs]
    overall_p99 = p99(all_latencies)
    print(f"duration {args.duration:.0f} s, warm-up {args.warmup:.0f} s, {len(samples)} samples")
    for kind, values in sorted(load.latencies.items()):
        print(f"  {kind:<8} {len(values):>7} requests  p50 {sorted(values)[len(values) // 2] * 1000:6.1f} ms  "
              f"p99 {p99(values):6.1f} ms  max {max(values) * 1000:7.1f} ms")
    print(f"  rss      {baseline.rss_kib / 1024:7.1f} MiB after warm-up, {end.rss_kib / 1024:7.1f} MiB at the end "
          f"(max {max(s.rss_kib for s in after) / 1024:.1f}): growth {rss_growth:+.1%}")
    print(f"  fds      {baseline.fds} after warm-up, {end.fds} at the end, max {max_fds}")
    print(f"  pg conns {baseline.connections} after warm-up, {end.connections} at the end, max {max_conns}")
    print(f"  alerts answered {load.answered_alerts}, in the inbox {inbox}; decisions {decisions}; job runs {runs}; "
          f"failed requests {len(load.failures)}")
    missed = []
    if rss_growth >= GOAL_RSS_GROWTH:
        missed.append(f"rss grew {rss_growth:.1%}")
    for what, attr in (("fds", "fds"), ("connections", "connections")):
        base = statistics.median(getattr(s, attr) for s in first_minute)
        last = statistics.median(getattr(s, attr) for s in last_minute)
        print(f"  {what}: median {base:g} in the minute after warm-up, {last:g} in the last minute")
        if last > base + max(GOAL_FLAT_ABS, base * GOAL_FLAT):
            missed.append(f"{what} rose from a median of {base:g} to {last:g}")
    if not overall_p99 < GOAL_P99_MS:
        missed.append(f"p99 {overall_p99:.1f} ms")
    if inbox < load.answered_alerts:
        missed.append(f"{load.answered_alerts - inbox} answered alert(s) missing from the inbox")
    if load.failures:
        missed.append(f"{len(load.failures)} failed request(s), first: {load.failures[0]}")
    for m in missed:
        print(f"MISSED {m}")
    print(f"goal: rss growth after warm-up < {GOAL_RSS_GROWTH:.0%} ({rss_growth:+.1%}), fds and PostgreSQL "
          f"connections flat, p99 < {GOAL_P99_MS:.0f} ms ({overall_p99:.1f}), every answered alert in the inbox: "
          f"{'met' if not missed else 'MISSED'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
