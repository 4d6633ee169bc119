"""The fake Kubernetes API answers the real client as the API does: Deployments, Pods, apply."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.kube import FakeKube, label_selector_matches


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with FakeKube(token="t0ken") as fake:
        yield fake


@pytest.fixture
def api(kube: FakeKube) -> Any:
    from kubernetes import client

    conf = client.Configuration()
    conf.host = kube.url
    conf.api_key = {"authorization": "t0ken"}
    conf.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(conf)


def _deployment(name: str, replicas: int = 2) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "messaging", "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": name, "image": f"{name}:1"}]}}}}


def _pod(name: str, app: str, phase: str = "Running") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "messaging", "labels": {"app": app},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{app}-rs",
                                             "uid": f"uid-{app}-rs", "controller": True}]},
            "spec": {"containers": [{"name": app, "image": f"{app}:1"}]}, "status": {"phase": phase}}


def test_deployment_get_restart_patch_and_scale(kube: FakeKube, api: Any) -> None:
    from kubernetes.client import AppsV1Api

    kube.put(_deployment("websocket-gateway"))
    apps = AppsV1Api(api)
    dep = apps.read_namespaced_deployment("websocket-gateway", "messaging")
    assert dep.spec.replicas == 2 and dep.status.ready_replicas == 2 and dep.metadata.generation == 1

    # what `kubectl rollout restart` sends: a strategic-merge patch of a pod template annotation
    patch = {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}}}}}
    after = apps.patch_namespaced_deployment("websocket-gateway", "messaging", patch)
    assert after.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"] == "2026-01-01T00:00:00Z"
    assert after.spec.template.spec.containers[0].image == "websocket-gateway:1"
    assert after.metadata.generation == 2 and after.status.observed_generation == 2
    (req,) = kube.requests_to("PATCH", "/deployments/websocket-gateway$")
    assert req.content_type == "application/strategic-merge-patch+json" and req.body == patch

    scale = apps.patch_namespaced_deployment_scale("websocket-gateway", "messaging", {"spec": {"replicas": 5}})
    assert scale.spec.replicas == 5
    assert apps.read_namespaced_deployment_scale("websocket-gateway", "messaging").status.replicas == 5
    assert kube.deployment("messaging", "websocket-gateway")["spec"]["replicas"] == 5  # type: ignore[index]


def test_pods_list_by_label_and_delete(kube: FakeKube, api: Any) -> None:
    from kubernetes.client import CoreV1Api
    from kubernetes.client.exceptions import ApiException

    for name, app, phase in (("api-1", "api", "Running"), ("api-2", "api", "Pending"), ("ws-1", "ws", "Running")):
        kube.put(_pod(name, app, phase))
    core = CoreV1Api(api)
    pods = core.list_namespaced_pod("messaging", label_selector="app=api")
    assert sorted(p.metadata.name for p in pods.items) == ["api-1", "api-2"]
    running = core.list_namespaced_pod("messaging", label_selector="app in (api, ws)", field_selector="status.phase=Running")
    assert sorted(p.metadata.name for p in running.items) == ["api-1", "ws-1"]
    core.delete_namespaced_pod("api-1", "messaging")
    assert [p["metadata"]["name"] for p in kube.pods("messaging")] == ["api-2", "ws-1"]
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_pod("api-1", "messaging")
    assert exc.value.status == 404 and '"reason": "NotFound"' in exc.value.body.replace('":"', '": "')


def test_server_side_apply_needs_a_manager_and_conflicts_without_force(kube: FakeKube, api: Any) -> None:
    from kubernetes.client import CustomObjectsApi
    from kubernetes.client.exceptions import ApiException

    crd = CustomObjectsApi(api)
    args = ("monitoring.coreos.com", "v1", "monitoring", "prometheusrules", "r")
    body = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": "r", "labels": {"a": "1", "b": "2"}}, "spec": {"groups": []}}
    with pytest.raises(ApiException) as exc:
        crd.patch_namespaced_custom_object(*args, body, _content_type="application/apply-patch+yaml")
    assert exc.value.status == 422
    crd.patch_namespaced_custom_object(*args, body, field_manager="one", _content_type="application/apply-patch+yaml")
    other = {**body, "metadata": {"name": "r", "labels": {"a": "9"}}}
    with pytest.raises(ApiException) as exc:
        crd.patch_namespaced_custom_object(*args, other, field_manager="two", _content_type="application/apply-patch+yaml")
    assert exc.value.status == 409
    crd.patch_namespaced_custom_object(*args, other, field_manager="two", force=True,
                                       _content_type="application/apply-patch+yaml")
    # manager "one" applies again without label b: b is removed, a now belongs to "two" and stays
    less = {**body, "metadata": {"name": "r", "labels": {}}}
    got = crd.patch_namespaced_custom_object(*args, less, field_manager="one", _content_type="application/apply-patch+yaml")
    assert got["metadata"]["labels"] == {"a": "9"}
    assert crd.delete_namespaced_custom_object(*args)["status"] == "Success"


def test_unauthenticated_requests_get_401(kube: FakeKube) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    conf = client.Configuration()
    conf.host = kube.url
    with pytest.raises(ApiException) as exc:
        client.CoreV1Api(client.ApiClient(conf)).list_namespaced_pod("messaging")
    assert exc.value.status == 401


def test_injected_faults_and_label_selectors(kube: FakeKube, api: Any) -> None:
    from kubernetes.client import AppsV1Api
    from kubernetes.client.exceptions import ApiException

    kube.put(_deployment("api"))
    kube.fail_next("GET", r"/deployments/api$", 503, reason="ServiceUnavailable", message="etcd is slow")
    with pytest.raises(ApiException) as exc:
        AppsV1Api(api).read_namespaced_deployment("api", "messaging")
    assert exc.value.status == 503
    assert AppsV1Api(api).read_namespaced_deployment("api", "messaging").metadata.name == "api"
    assert label_selector_matches("app=api,tier!=db,!legacy", {"app": "api", "tier": "web"})
    assert not label_selector_matches("app notin (api)", {"app": "api"})
    assert label_selector_matches("app notin (api)", {"tier": "web"})
