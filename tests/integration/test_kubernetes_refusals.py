"""What sre does with each refusal the Kubernetes API makes, through the real `kubernetes` client
against the fake API server: one clear outcome per object, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sre.adapters.kube_scale import get_replicas
from sre.adapters.kubernetes import api_client
from sre.config import SreConfig, load_config
from sre.errors import UsageError
from sre.provision.prometheus import PrometheusRuleTarget
from sre.provision.target import apply, plan
from sre.remediation.actions import ActionContext, ActionError, ActionRefused
from sre.remediation.actions.kubernetes import DeletePod, PodParams, Scale, ScaleParams
from tests.cli import sre
from tests.fakes.kube import FakeKube

TOKEN = "fake-kube-token"
NS, MON = "messaging", "monitoring"
GROUP, VERSION, PLURAL = "monitoring.coreos.com", "v1", "prometheusrules"


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with FakeKube(token=TOKEN, namespaces={NS, MON}) as fake:
        yield fake


def write_config(tmp_path: Path, kube: FakeKube, **alerts: Any) -> Path:
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    path = tmp_path / "sre.yaml"
    path.write_text(yaml.safe_dump({
        "state": {"dir": str(tmp_path / "state")},
        "kubernetes": {"host": kube.url, "token": {"file": str(token)}},
        "alerts": {"prometheusrule_namespace": MON, **alerts},
    }))
    return path


@pytest.fixture
def cfg(tmp_path: Path, kube: FakeKube) -> SreConfig:
    return load_config(write_config(tmp_path, kube))


def ctx(cfg: SreConfig) -> ActionContext:
    return ActionContext(cfg=cfg, remediation_id=1, alertname="PodStuck", labels={})


def pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": name, "namespace": NS, "labels": {"app": "gw"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "gw-5d9", "uid": "rs-1",
                             "controller": True}]}, "spec": {"containers": [{"name": "gw", "image": "gw:1"}]}}


def rule(name: str, groups: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "PrometheusRule",
            "metadata": {"name": name, "namespace": MON, "labels": {"app.kubernetes.io/managed-by": "sre"},
                         "annotations": {"sre/content-hash": "0" * 12}},
            "spec": {"groups": groups}}


def test_delete_pod_refuses_when_the_pod_was_replaced_after_it_was_read(kube: FakeKube, cfg: SreConfig) -> None:
    first_uid = kube.put(pod("gw-1"))["metadata"]["uid"]

    def replace(fake: FakeKube) -> None:  # the ReplicaSet replaced it between read and delete
        del fake.objects[("", "v1", NS, "pods", "gw-1")]
        fake.put(pod("gw-1"))

    kube.before_next("DELETE", r"/pods/gw-1$", replace)
    with pytest.raises(ActionRefused, match="was replaced since it was read") as refused:
        DeletePod().run(PodParams(namespace=NS, pod="gw-1"), ctx(cfg))
    assert first_uid in str(refused.value)
    (delete,) = kube.requests_to("DELETE", r"/pods/gw-1$")
    assert delete.status == 409 and delete.body["preconditions"] == {"uid": first_uid}
    survivor = kube.get("", "v1", NS, "pods", "gw-1")
    assert survivor is not None and survivor["metadata"]["uid"] != first_uid, "the replacement is left alone"


def test_an_rbac_refusal_names_verb_resource_and_namespace(kube: FakeKube, cfg: SreConfig) -> None:
    kube.put(pod("gw-1"))
    kube.deny("delete", "pods", NS)
    with pytest.raises(ActionError) as err:
        DeletePod().run(PodParams(namespace=NS, pod="gw-1"), ctx(cfg))
    assert not isinstance(err.value, ActionRefused)
    assert 'cannot delete resource "pods" in API group "" in the namespace "messaging"' in str(err.value)
    assert kube.get("", "v1", NS, "pods", "gw-1") is not None


def test_a_deployment_at_zero_replicas_scales_from_zero(kube: FakeKube, cfg: SreConfig) -> None:
    kube.put({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "gw", "namespace": NS},
              "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "gw"}},
                       "template": {"metadata": {"labels": {"app": "gw"}}, "spec": {"containers": []}}}})
    assert get_replicas(cfg, "us-east-1", f"{NS}/gw") == 0
    done = Scale().run(ScaleParams(namespace=NS, deployment="gw", by=1, min=0, max=3), ctx(cfg))
    assert done == {"from": 0, "to": 1}
    deployment = kube.deployment(NS, "gw")
    assert deployment is not None and deployment["spec"]["replicas"] == 1


def test_a_cluster_without_the_operator_crds_is_a_clear_error(tmp_path: Path) -> None:
    with FakeKube(token=TOKEN, namespaces={MON}, crds=set()) as bare:
        with pytest.raises(UsageError, match="Prometheus Operator's CRDs are not installed"):
            plan(PrometheusRuleTarget([], api_client(load_config(write_config(tmp_path, bare))), MON))
        out = sre("alerts", "plan", "--target", "kubernetes", "--config", str(write_config(tmp_path, bare)))
        assert out.returncode == 2 and "CRDs are not installed" in out.stderr and "--target rules-dir" in out.stderr
        assert "Traceback" not in out.stderr


def test_each_refused_or_pruned_prometheusrule_fails_alone(kube: FakeKube, cfg: SreConfig) -> None:
    api = api_client(cfg)
    good = rule("sre-good", [{"name": "good", "rules": [{"record": "x:y", "expr": "vector(1)"}]}])
    invalid = rule("sre-invalid", [{"name": "bad", "rules": [{"alert": "A", "expr": "up == 0", "for": "5 minutes"}]}])
    pruned = rule("sre-pruned", [{"name": "p", "owner": "team-a", "rules": [{"record": "a:b", "expr": "up"}]}])
    target = PrometheusRuleTarget([good, invalid, pruned], api, MON)
    result = apply(target, plan(target))
    assert [r.change.name for r in result.applied] == ["sre-good"], result.failed
    failed = {r.change.name: r.message for r in result.failed}
    assert sorted(failed) == ["sre-invalid", "sre-pruned"]
    assert "422" in failed["sre-invalid"] and "spec.groups[0].rules[0].for" in failed["sre-invalid"]
    assert "dropped field(s)" in failed["sre-pruned"] and "spec.groups[name=p].owner" in failed["sre-pruned"]
    assert kube.get(GROUP, VERSION, MON, PLURAL, "sre-invalid") is None


def test_a_missing_namespace_and_an_rbac_refusal_fail_their_objects(tmp_path: Path, kube: FakeKube) -> None:
    alerts_dir = Path(__file__).parents[2] / "alerts"
    other = write_config(tmp_path, kube, prometheusrule_namespace="observability", source_dir=str(alerts_dir))
    out = sre("alerts", "apply", "--target", "kubernetes", "--config", str(other), "--output", "json")
    assert out.returncode == 1, out.stderr
    (result,) = json.loads(out.stdout)["results"]
    assert result["applied"] == [] and result["failed"]
    assert all("namespace observability does not exist" in f["message"] for f in result["failed"])

    kube.deny("patch", PLURAL, MON, group=GROUP)
    out = sre("alerts", "apply", "--target", "kubernetes", "--config",
              str(write_config(tmp_path, kube, source_dir=str(alerts_dir))), "--output", "json")
    assert out.returncode == 1, out.stderr
    (result,) = json.loads(out.stdout)["results"]
    assert result["failed"] and all('cannot patch resource "prometheusrules"' in f["message"] for f in result["failed"])
    assert "Traceback" not in out.stderr
