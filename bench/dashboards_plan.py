"""A no-change `sre dashboards plan` over 500 dashboards: requests made and wall time, against the
per-dashboard-GET strategy (grizzly's: fetch each dashboard and compare) in the same run, through
the real `grafana-client` and the fake Grafana HTTP API on loopback.

The dashboards are the shipped ones cloned (real sizes: 10-60 KB of JSON each) into 500 uids across
nested folders, applied first; then both strategies plan with nothing changed, interleaved.

Goals: at most 1 request per 1,000 dashboards listed (rounded up: one request for these 500), and
at least 50x faster than per-dashboard GETs.
"""

from __future__ import annotations

import copy
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.fakes, when run as a script

from sre.adapters.grafana import Grafana
from sre.provision.dashboards import Desired, FolderSpec, Sources, comparable, finalize, load
from sre.provision.grafana import GrafanaTarget
from sre.provision.plan import Action
from sre.provision.target import apply, plan
from tests.fakes.grafana import FakeGrafana

N = 500
RUNS = 5
CONCURRENCY = 4  # the same bound for both strategies
GOAL_PER_1000 = 1
GOAL_SPEEDUP = 50.0
TOKEN = "bench-token"
FOLDERS = [("Bench",), ("Bench", "Databases"), ("Bench", "Services"), ("Teams",), ("Teams", "Payments"),
           ("Teams", "Messaging"), ("Teams", "Messaging", "Realtime"), ("Edge",)]


def synthetic() -> Sources:
    shipped = load().dashboards
    out = []
    for i in range(N):
        template = shipped[i % len(shipped)]
        body = copy.deepcopy(template.body)
        body["uid"] = f"bench-{i:04d}"
        body["title"] = f"{template.title} #{i:04d}"
        folder = FolderSpec(FOLDERS[i % len(FOLDERS)])
        final, digest = finalize(body, folder.path)
        out.append(Desired(uid=body["uid"], title=body["title"], folder=folder, body=final, source="bench",
                           hash=digest, tags=list(final["tags"])))
    folders = sorted({FolderSpec(f[:n]) for f in FOLDERS for n in range(1, len(f) + 1)},
                     key=lambda f: (len(f.path), f.path))
    return Sources(out, folders)


def per_dashboard_gets(g: Grafana, sources: Sources) -> tuple[int, int]:
    """The baseline: GET every dashboard and compare it with the code. (requests, changes)"""
    from concurrent.futures import ThreadPoolExecutor

    def one(d: Desired) -> bool:
        live = g.get_dashboard(d.uid)["dashboard"]
        return comparable(live) != comparable(d.body)

    before = g.requests.count
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        changed = sum(pool.map(one, sources.dashboards))
    return g.requests.count - before, changed


def main() -> int:
    sources = synthetic()
    size = sum(len(str(d.body)) for d in sources.dashboards) / N / 1024
    with FakeGrafana(tokens={TOKEN: "Editor"}) as fake:
        g = Grafana(fake.url, token=TOKEN)
        t = time.perf_counter()
        target = GrafanaTarget(g, sources, concurrency=CONCURRENCY)
        result = apply(target, plan(target))
        setup = time.perf_counter() - t
        assert result.ok and len(fake.dashboards) == N, result.failed[:3]
        listed = len(fake.dashboards) + len(fake.folders)

        ours, base, our_requests, base_requests = [], [], [], []
        for _ in range(RUNS):  # interleaved, so machine noise hits both alike
            t = time.perf_counter()
            p = plan(target)
            ours.append(time.perf_counter() - t)
            our_requests.append(p.requests)
            assert not p.has_changes, p.counts()
            assert len(p.of(Action.unchanged)) == N + len(sources.folders)

            t = time.perf_counter()
            requests, changed = per_dashboard_gets(g, sources)
            base.append(time.perf_counter() - t)
            base_requests.append(requests)
            assert changed == 0, f"{changed} phantom diffs in the baseline"

    o, b = statistics.median(ours), statistics.median(base)
    req, breq = max(our_requests), max(base_requests)
    allowed = math.ceil(listed / 1000) * GOAL_PER_1000
    speedup = b / o
    print(f"{N} dashboards ({size:.0f} KB of JSON each on average) in {len(sources.folders)} nested folders; "
          f"{listed} folders and dashboards listed; applied in {setup:.1f}s")
    print(f"one paged search (sre dashboards plan): {req} request(s), median {o * 1000:.1f} ms over {RUNS} runs")
    print(f"one GET per dashboard (baseline, {CONCURRENCY} at once): {breq} requests, median {b * 1000:.1f} ms")
    print(f"requests: {breq / req:.0f}x fewer; wall time: {speedup:.1f}x faster; phantom diffs: none")
    ok = req <= allowed and speedup >= GOAL_SPEEDUP
    print(f"goal: <= {GOAL_PER_1000} request per 1,000 listed ({req} for {listed}, allowed {allowed}) and "
          f">= {GOAL_SPEEDUP:.0f}x faster than per-dashboard GETs ({speedup:.1f}x): {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
