"""The pure parts of drills through the HA layer: split-brain windows, Patroni recommendations, and
the readiness detection term taken from an observed drill."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sre.config import SreConfig
from sre.dr.facts import DrillFact
from sre.dr.gather import detection
from sre.drills.recommend import patroni
from sre.drills.splitbrain import Window, overlaps


@pytest.mark.parametrize(("windows", "expected"), [
    # A clean switch: the old primary's last acceptance before the new one's first.
    ([Window("a", 0.0, 5.0), Window("b", 5.2, 9.0)], []),
    # The same node twice (demoted and promoted back) is no split brain.
    ([Window("a", 0.0, 5.0), Window("a", 6.0, 9.0)], []),
    # Both accepting from 4.0 to 5.0.
    ([Window("a", 0.0, 5.0), Window("b", 4.0, 9.0)], [(("a", "b"), 4.0, 5.0)]),
    # One acceptance of b inside a's window is enough.
    ([Window("b", 3.0, 3.0), Window("a", 0.0, 5.0)], [(("a", "b"), 3.0, 3.0)]),
])
def test_overlapping_acceptance_windows_are_split_brain(windows: list[Window],
                                                        expected: list[tuple[tuple[str, str], float, float]]) -> None:
    assert [(o.nodes, o.start, o.end) for o in overlaps(windows)] == expected


PATRONI_DEFAULTS = {"ttl": 30.0, "loop_wait": 10.0, "retry_timeout": 10.0}


def test_a_missed_rto_names_ttl_and_settings_that_meet_it() -> None:
    measured = {"rto_seconds": 31.0, "detection_seconds": 30.2, "promotion_seconds": 0.5, "path_back_seconds": 0.3}
    rec = patroni(measured, PATRONI_DEFAULTS, rto_objective=15.0)
    assert rec is not None and rec["dominant"] == "ttl"
    new = rec["suggested"]
    assert new["ttl"] + new["loop_wait"] + rec["other_seconds"] <= 15.0
    assert new["loop_wait"] + 2 * new["retry_timeout"] <= new["ttl"]
    assert "ttl" in rec["message"] and "patronictl edit-config" in rec["message"]


def test_no_recommendation_when_met_and_none_possible_when_the_rest_is_too_slow() -> None:
    met = {"rto_seconds": 12.0, "detection_seconds": 11.0, "promotion_seconds": 0.5, "path_back_seconds": 0.5}
    assert patroni(met, PATRONI_DEFAULTS, rto_objective=60.0) is None
    slow = {"rto_seconds": 40.0, "detection_seconds": 30.0, "promotion_seconds": 6.0, "path_back_seconds": 4.0}
    rec = patroni(slow, PATRONI_DEFAULTS, rto_objective=12.0)
    assert rec is not None and rec["suggested"] is None and "no Patroni setting" in rec["message"]


def test_readiness_detection_comes_from_the_last_observed_drill(tmp_path: Path) -> None:
    cfg = SreConfig()
    now = datetime.now(UTC)
    planned = DrillFact(7, "us-east-1", "eu-west-1", "passed", now, 0.3, 0.01)
    observed = DrillFact(5, "us-east-1", "eu-west-1", "failed", now, 11.8, 0.01, mode="unplanned",
                         detection_seconds=10.9)
    seconds, basis = detection(cfg, [planned, observed])
    assert seconds == 10.9 and "observed drill 5" in basis
    seconds, basis = detection(cfg, [planned])
    assert "for:" in basis


def ha_config(backend: str) -> SreConfig:
    return SreConfig.model_validate({
        "postgres": {"clusters": {"main": {
            "primary": {"name": "east1", "region": "us-east-1", "dsn": {"env": "PG_EAST1"}},
            "replicas": [{"name": "west1", "region": "eu-west-1", "dsn": {"env": "PG_WEST1"}}]}}},
        "dns": {"zone": "example.internal.", "records": {"db": "db.example.internal."},
                "node_targets": {"east1": "10.0.0.1:5432", "west1": "10.1.0.1:5432"}},
        "drills": {"ha": {"backend": backend,
                          "patroni": {"members": {"east1": {"url": "http://e:8008"}, "west1": {"url": "http://w:8008"}}},
                          "kubernetes": {"namespace": "db", "pods": {"east1": "main-0", "west1": "main-1"}}}},
    })


def test_the_dry_run_of_an_observed_patroni_drill_loses_and_watches() -> None:
    from sre.drills.failover import DrillRequest, plan

    p = plan(ha_config("patroni"), DrillRequest("us-east-1", "eu-west-1", mode="unplanned", kind="observed",
                                                failback=True))
    assert p["backend"] == "patroni" and p["kind"] == "observed"
    steps = [s["step"] for s in p["steps"]]
    assert steps[steps.index("lose"):] == ["lose", "recover", "dns", "scale", "verify", "rejoin",
                                           "failback.switchover", "failback.dns", "failback.scale",
                                           "failback.verify", "failback.rejoin"]
    planned = plan(ha_config("patroni"), DrillRequest("us-east-1", "eu-west-1", mode="unplanned"))
    assert [s["step"] for s in planned["steps"]][-8:-4] == ["hold", "lose", "failover", "release"]


@pytest.mark.parametrize(("backend", "kind", "mode", "refusal"), [
    ("local", "observed", "unplanned", "needs an HA layer"),
    ("kubernetes", "orchestrated", "planned", "only loses pods"),
    ("patroni", "observed", "planned", "unplanned by nature"),
])
def test_requests_a_backend_cannot_serve_are_refused_before_anything_is_contacted(
        backend: str, kind: str, mode: str, refusal: str) -> None:
    from sre.drills.failover import DrillRequest, validate
    from sre.errors import UsageError

    with pytest.raises(UsageError, match=refusal):
        validate(ha_config(backend), DrillRequest("us-east-1", "eu-west-1", mode=mode, kind=kind), execute=False,
                 yes=False)


def kube_backend(kube_url: str, **conf: object) -> Any:
    from sre.drills.ha.kubernetes import KubernetesControl
    from sre.drills.nodes import members

    cfg = ha_config("kubernetes")
    cfg.kubernetes.host = kube_url
    cfg.drills.ha.kubernetes = cfg.drills.ha.kubernetes.model_copy(update=conf)  # type: ignore[union-attr]
    return KubernetesControl(cfg, "main", members(cfg, "main"))


def test_scale_to_zero_loses_the_primary_and_restores_its_replicas() -> None:
    from tests.fakes.kube import FakeKube

    with FakeKube(namespaces={"db"}) as kube:
        for name, role in (("main-0", "master"), ("main-1", "replica")):
            kube.put({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "db",
                                                                      "labels": {"role": role}}})
        kube.put({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "main-east1", "namespace": "db"},
                  "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "main"}}}})
        ha = kube_backend(kube.url, fault="scale_to_zero", statefulsets={"east1": "main-east1"})
        assert ha.leader() == "east1"
        east1 = ha.members["east1"]
        assert ha.lose(east1)["replicas_before"] == 1
        assert kube.get("apps", "v1", "db", "statefulsets", "main-east1")["spec"]["replicas"] == 0  # type: ignore[index]
        assert ha.restore(east1)["replicas"] == 1
        assert kube.get("apps", "v1", "db", "statefulsets", "main-east1")["spec"]["replicas"] == 1  # type: ignore[index]
        assert not kube.requests_to("DELETE")


def test_a_pod_that_is_no_longer_the_primary_is_not_deleted() -> None:
    from sre.drills.ha.base import HaError
    from tests.fakes.kube import FakeKube

    with FakeKube(namespaces={"db"}) as kube:
        for name, role in (("main-0", "replica"), ("main-1", "master")):
            kube.put({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "db",
                                                                      "labels": {"role": role}}})
        ha = kube_backend(kube.url)
        with pytest.raises(HaError, match="no longer the primary"):
            ha.lose(ha.members["east1"])
        assert not kube.requests_to("DELETE")
