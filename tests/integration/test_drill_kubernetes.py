"""The kubernetes backend: an observed drill loses the primary's pod through the (fake) Kubernetes
API and measures the recovery the HA layer in the cluster performs. The fake plays the cluster:
when the primary's pod is deleted, an "operator" thread stops that PostgreSQL, promotes the other
(a real pair of its own), moves the role label, and brings the old node back as a standby."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from sre.drills.failover import DrillRequest, run_drill
from sre.drills.nodes import members
from tests.drill_env import DrillEnv, EnvFactory, assert_topology
from tests.fakes.kube import FakeKube

pytestmark = pytest.mark.slow

NS = "db"


def pod(name: str, role: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS,
                                                            "labels": {"application": "spilo", "role": role}},
            "spec": {"containers": [{"name": "postgres", "image": "spilo"}]}, "status": {"phase": "Running"}}


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with FakeKube(namespaces={NS}) as fake:
        fake.put(pod("main-0", "master"))
        fake.put(pod("main-1", "replica"))
        yield fake


def operator(env: DrillEnv, kube: FakeKube, done: threading.Event) -> None:
    """What Patroni on Kubernetes does when the leader's pod is gone."""
    cfg = env.config()
    east1, west1 = members(cfg, "main")
    try:
        env.east1.stop("immediate")
        west1.promote()
        kube.put(pod("main-1", "master"))
        east1.rejoin(west1, stop_mode="immediate")  # the StatefulSet's new pod starts as a standby
        kube.put(pod("main-0", "replica"))
    finally:
        done.set()


def test_observed_drill_deletes_the_primary_pod_and_measures_recovery(drill_env: EnvFactory, kube: FakeKube) -> None:
    env = drill_env(kube_host=kube.url, extra={"drills": {"ha": {
        "backend": "kubernetes", "kubernetes": {"namespace": NS, "pods": {"east1": "main-0", "west1": "main-1"}}}}})
    before = kube.get("", "v1", NS, "pods", "main-0")
    assert before is not None
    done = threading.Event()
    kube.before_next("DELETE", rf"^/api/v1/namespaces/{NS}/pods/main-0$",
                     lambda fake: threading.Thread(target=operator, args=(env, fake, done), daemon=True).start())

    rep = run_drill(env.config(), env.store(), DrillRequest("us-east-1", "eu-west-1", mode="unplanned",
                                                            kind="observed", actor="test"))
    done.wait(60)

    assert rep["status"] == "passed", rep["message"]
    # The fault: the primary's pod, deleted at once, only if it is still the pod the drill looked at.
    [delete] = kube.requests_to("DELETE", rf"/namespaces/{NS}/pods/")
    assert delete.path.endswith("/main-0")
    assert delete.body["preconditions"] == {"uid": before["metadata"]["uid"],  # type: ignore[index]
                                            "resourceVersion": before["metadata"]["resourceVersion"]}  # type: ignore[index]
    assert delete.body["gracePeriodSeconds"] == 0
    assert not kube.requests_to("DELETE", "main-1") and not kube.requests_to("PATCH")
    # Recovery measured from the moment the fake reported the new primary.
    fo = rep["switches"][0]
    assert fo["ha"]["elected_ts"] > fo["last_ack_before"]["ts"]
    parts = fo["detection_seconds"] + fo["promotion_seconds"] + fo["path_back_seconds"]
    assert abs(parts - fo["rto_seconds"]) < 0.01 and fo["rpo_rows"] == 0
    assert rep["split_brain"]["verdict"] == "pass"
    assert_topology(env, env.west1, env.east1)

