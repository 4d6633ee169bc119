"""A no-change `sre elk plan` over 200 policies and templates: requests made and wall time, against
the per-object strategy (one GET per object) in the same run, through the real client and the fake
Elasticsearch on loopback.

Goal: at most one list request per object kind (3: ILM policies, component templates, index
templates), and nothing planned but `unchanged` despite the server fields in every answer.
"""

from __future__ import annotations

import copy
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.fakes, when run as a script

from sre.adapters.elasticsearch import ElasticsearchAdapter
from sre.config import ElasticsearchEndpoint
from sre.provision.elasticsearch import (
    COMPONENT,
    ILM,
    INDEX,
    KINDS,
    Action,
    Desired,
    ElasticsearchTarget,
    Live,
    load_desired,
    plan,
    plan_live,
    stamp,
)
from sre.provision.plan import Plan
from sre.provision.target import apply
from tests.fakes.elasticsearch import FakeElasticsearch

N_COMPONENT, N_ILM, N_INDEX = 70, 70, 60  # 200 objects
RUNS = 7
GOAL_REQUESTS = len(KINDS)


def synthetic() -> Desired:
    """200 objects shaped like the shipped ones: each index template composes 3 components and a policy."""
    shipped = load_desired()
    comps = list(shipped.objects[COMPONENT].values())
    policies = list(shipped.objects[ILM].values())
    d = Desired()
    for i in range(N_COMPONENT):
        body = copy.deepcopy(comps[i % len(comps)])
        body["_meta"] = {"description": f"bench component {i}"}
        d.objects[COMPONENT][f"bench-{i:03d}@mappings"] = stamp(COMPONENT, body)
    for i in range(N_ILM):
        body = copy.deepcopy(policies[i % len(policies)])
        body["policy"]["_meta"] = {"description": f"bench policy {i}"}
        d.objects[ILM][f"bench-{i:03d}"] = stamp(ILM, body)
    for i in range(N_INDEX):
        body = {
            "index_patterns": [f"logs-bench.ds{i:03d}-*"], "data_stream": {}, "priority": 200 + i,
            "composed_of": [f"bench-{(i * 3 + k) % N_COMPONENT:03d}@mappings" for k in range(3)],
            "template": {"settings": {"index": {"lifecycle": {"name": f"bench-{i % N_ILM:03d}"},
                                                "number_of_shards": 1 + i % 3}}},
            "_meta": {"description": f"bench template {i}"},
        }
        d.objects[INDEX][f"logs-bench.ds{i:03d}"] = stamp(INDEX, body)
    return d


def per_object_plan(adapter: ElasticsearchAdapter, desired: Desired) -> Plan:
    """The baseline: one GET per desired object, then the same comparison."""
    start = adapter.requests
    live = Live()
    getters = {COMPONENT: adapter.get_component_template, ILM: adapter.get_ilm_policy,
               INDEX: adapter.get_index_template}
    for kind in KINDS:
        for name in desired.objects[kind]:
            body = getters[kind](name)
            if body is not None:
                live.objects[kind][name] = body
    live.requests = adapter.requests - start
    return plan(desired, live)


def main() -> int:
    desired = synthetic()
    assert desired.count() == 200
    with FakeElasticsearch.start() as fake:
        adapter = ElasticsearchAdapter.from_endpoint(ElasticsearchEndpoint(url=fake.url))
        try:
            apply(ElasticsearchTarget(adapter, desired, verify=False), plan_live(adapter, desired))
            plan_live(adapter, desired), per_object_plan(adapter, desired)  # warm connections and caches
            list_times, get_times, list_reqs, get_reqs = [], [], set(), set()
            clean = True
            for _ in range(RUNS):  # interleaved, so machine noise hits both alike
                fake.reset_requests()
                t = time.perf_counter()
                p = plan_live(adapter, desired)
                list_times.append(time.perf_counter() - t)
                list_reqs.add(len(fake.requests))
                clean &= not p.has_changes and p.requests == len(fake.requests)

                fake.reset_requests()
                t = time.perf_counter()
                q = per_object_plan(adapter, desired)
                get_times.append(time.perf_counter() - t)
                get_reqs.add(len(fake.requests))
                clean &= not q.has_changes and q.counts()[Action.unchanged.value] == 200
        finally:
            adapter.close()

    lt, gt = statistics.median(list_times), statistics.median(get_times)
    (lr,), (gr,) = list_reqs, get_reqs
    print(f"objects: {N_ILM} ILM policies, {N_COMPONENT} component templates, {N_INDEX} index templates")
    print(f"list strategy:       {lr} requests, median {lt * 1000:.1f} ms over {RUNS} runs")
    print(f"per-object GETs:     {gr} requests, median {gt * 1000:.1f} ms over {RUNS} runs")
    print(f"ratio: {gr / lr:.1f}x fewer requests, {gt / lt:.1f}x less wall time")
    print(f"phantom diffs: {'none' if clean else 'FOUND'}")
    ok = clean and lr <= GOAL_REQUESTS
    print(f"goal: no-change plan of 200 objects in at most one list request per kind ({GOAL_REQUESTS}) and no "
          f"phantom diffs: {'met' if ok else 'MISSED'} ({lr} requests, {lt * 1000:.1f} ms)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
