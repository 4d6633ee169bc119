"""The fake Kubernetes API answers the real client as the API does: Deployments, Pods, apply."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.kube import FakeKube, label_selector_matches


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with FakeKube(token="t0ken", namespaces={"messaging", "monitoring"}) as fake:
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


def _rule(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": name, "namespace": "monitoring"}, "spec": spec}


def test_a_delete_precondition_on_uid_is_enforced(kube: FakeKube, api: Any) -> None:
    from kubernetes.client import CoreV1Api, V1DeleteOptions, V1Preconditions
    from kubernetes.client.exceptions import ApiException

    old_uid = kube.put(_pod("gw-1", "gw"))["metadata"]["uid"]
    del kube.objects[("", "v1", "messaging", "pods", "gw-1")]
    new_uid = kube.put(_pod("gw-1", "gw"))["metadata"]["uid"]  # replaced: same name, new uid
    core = CoreV1Api(api)
    with pytest.raises(ApiException) as exc:
        core.delete_namespaced_pod("gw-1", "messaging", body=V1DeleteOptions(preconditions=V1Preconditions(uid=old_uid)))
    assert exc.value.status == 409
    assert f"Precondition failed: UID in precondition: {old_uid}, UID in object meta: {new_uid}" in exc.value.body
    assert kube.get("", "v1", "messaging", "pods", "gw-1") is not None
    core.delete_namespaced_pod("gw-1", "messaging", body=V1DeleteOptions(preconditions=V1Preconditions(uid=new_uid)))
    assert kube.get("", "v1", "messaging", "pods", "gw-1") is None


def test_a_json_patch_must_be_an_array(kube: FakeKube, api: Any) -> None:
    from kubernetes.client import AppsV1Api

    kube.put(_deployment("api"))
    # The client itself turns an object body sent as JSON patch into a strategic merge patch, so
    # the raw request is sent on the client's own connection pool.
    apps = AppsV1Api(api)
    resp = api.rest_client.pool_manager.request(
        "PATCH", f"{kube.url}/apis/apps/v1/namespaces/messaging/deployments/api", body=b'{"spec": {"replicas": 5}}',
        headers={"Content-Type": "application/json-patch+json", "Authorization": "Bearer t0ken"})
    assert resp.status == 400 and b"cannot unmarshal object" in resp.data
    assert apps.read_namespaced_deployment("api", "messaging").spec.replicas == 2
    apps.patch_namespaced_deployment("api", "messaging", [{"op": "replace", "path": "/spec/replicas", "value": 5}])
    assert apps.read_namespaced_deployment("api", "messaging").spec.replicas == 5


def test_a_missing_crd_and_a_missing_namespace_are_404(api: Any) -> None:
    from kubernetes import client
    from kubernetes.client import CustomObjectsApi
    from kubernetes.client.exceptions import ApiException

    with FakeKube(crds=set()) as bare:
        conf = client.Configuration()
        conf.host = bare.url
        crd = CustomObjectsApi(client.ApiClient(conf))
        with pytest.raises(ApiException) as exc:
            crd.list_namespaced_custom_object("monitoring.coreos.com", "v1", "default", "prometheusrules")
        assert exc.value.status == 404 and "the server could not find the requested resource" in exc.value.body
        core = client.CoreV1Api(client.ApiClient(conf))
        with pytest.raises(ApiException) as exc:
            core.create_namespaced_config_map("nowhere", {"metadata": {"name": "c"}, "data": {}})
        assert exc.value.status == 404 and 'namespaces \\"nowhere\\" not found' in exc.value.body
        assert core.list_namespaced_config_map("nowhere").items == []
        core.create_namespace({"metadata": {"name": "nowhere"}})
        core.create_namespaced_config_map("nowhere", {"metadata": {"name": "c"}, "data": {}})


def test_prometheusrules_are_validated_and_unknown_fields_pruned(kube: FakeKube, api: Any) -> None:
    from kubernetes.client import CustomObjectsApi
    from kubernetes.client.exceptions import ApiException

    crd = CustomObjectsApi(api)
    args = ("monitoring.coreos.com", "v1", "monitoring", "prometheusrules")
    bad = _rule("bad", {"groups": [{"name": "g", "rules": [{"alert": "A", "for": "5 minutes"}, {"expr": "up",
                                                                                               "labels": {"n": 1}}]}]})
    with pytest.raises(ApiException) as exc:
        crd.create_namespaced_custom_object(*args, bad)
    assert exc.value.status == 422
    assert 'PrometheusRule.monitoring.coreos.com \\"bad\\" is invalid' in exc.value.body
    for field in ("spec.groups[0].rules[0].expr: Required value", "spec.groups[0].rules[0].for: Invalid value",
                  "spec.groups[0].rules[1].labels.n: Invalid value"):
        assert field in exc.value.body
    extra = _rule("extra", {"groups": [{"name": "g", "owner": "team-a", "rules": [{"record": "r", "expr": "up",
                                                                                  "comment": "x"}]}], "note": "y"})
    stored = crd.create_namespaced_custom_object(*args, extra)
    assert stored["spec"] == {"groups": [{"name": "g", "rules": [{"record": "r", "expr": "up"}]}]}
    applied = crd.patch_namespaced_custom_object(*args[:3], "prometheusrules", "extra", extra, field_manager="m",
                                                 _content_type="application/apply-patch+yaml")
    assert "owner" not in applied["spec"]["groups"][0]


def test_scale_omits_zero_replicas(kube: FakeKube, api: Any) -> None:
    from kubernetes.client import AppsV1Api

    kube.put(_deployment("api", replicas=0))
    apps = AppsV1Api(api)
    raw = apps.read_namespaced_deployment_scale("api", "messaging", _preload_content=False)
    assert '"spec": {}' in raw.data.decode()
    assert apps.read_namespaced_deployment_scale("api", "messaging").spec.replicas is None
    apps.patch_namespaced_deployment_scale("api", "messaging", {"spec": {"replicas": 3}})
    assert apps.read_namespaced_deployment_scale("api", "messaging").spec.replicas == 3


def test_rbac_refusals_are_403_status_objects(kube: FakeKube, api: Any) -> None:
    import json

    from kubernetes.client import CoreV1Api
    from kubernetes.client.exceptions import ApiException

    kube.put(_pod("gw-1", "gw"))
    kube.deny("delete", "pods", "messaging")
    core = CoreV1Api(api)
    with pytest.raises(ApiException) as exc:
        core.delete_namespaced_pod("gw-1", "messaging")
    status = json.loads(exc.value.body)
    assert exc.value.status == 403 and status["kind"] == "Status" and status["reason"] == "Forbidden"
    assert status["message"] == ('pods "gw-1" is forbidden: User "system:serviceaccount:sre:sre" cannot delete '
                                 'resource "pods" in API group "" in the namespace "messaging"')
    assert status["details"] == {"name": "gw-1", "group": "", "kind": "pods"}
    assert core.read_namespaced_pod("gw-1", "messaging").metadata.name == "gw-1", "other verbs are allowed"


def test_discovery_lists_group_versions_and_resources_crds_only_when_installed(api: Any) -> None:
    from kubernetes import client

    groups = {g.name: [v.version for v in g.versions] for g in client.ApisApi(api).get_api_versions().groups}
    assert groups["apps"] == ["v1"] and groups["monitoring.coreos.com"] == ["v1"] and "" not in groups
    resources = {r.name: (r.kind, r.namespaced) for r in
                 client.RbacAuthorizationV1Api(api).get_api_resources().resources}
    assert resources["clusterroles"] == ("ClusterRole", False) and resources["roles"] == ("Role", True)
    core = {r.name for r in client.CoreV1Api(api).get_api_resources().resources}
    assert {"secrets", "configmaps", "serviceaccounts"} <= core
    with FakeKube(crds=set()) as bare:
        conf = client.Configuration()
        conf.host = bare.url
        names = {g.name for g in client.ApisApi(client.ApiClient(conf)).get_api_versions().groups}
        assert "monitoring.coreos.com" not in names and "apps" in names


def test_a_secret_sent_as_protobuf_is_stored_and_other_protobuf_kinds_are_415(kube: FakeKube) -> None:
    import urllib.error
    import urllib.request

    from tests.fakes.kube import PROTOBUF_MAGIC, _pb_string

    def entry(key: bytes, value: bytes) -> bytes:
        return _pb_string(1, key) + _pb_string(2, value)

    meta = _pb_string(1, b"release") + _pb_string(11, entry(b"owner", b"helm"))
    secret = _pb_string(1, meta) + _pb_string(2, entry(b"release", b"\x00\x01")) + _pb_string(3, b"helm.sh/release.v1")
    body = PROTOBUF_MAGIC + _pb_string(1, _pb_string(1, b"v1") + _pb_string(2, b"Secret")) + _pb_string(2, secret)

    def post(data: bytes) -> int:
        req = urllib.request.Request(f"{kube.url}/api/v1/namespaces/messaging/secrets", data=data, method="POST",
                                     headers={"Content-Type": "application/vnd.kubernetes.protobuf",
                                              "Authorization": "Bearer t0ken"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    assert post(body) == 201
    stored = kube.get("", "v1", "messaging", "secrets", "release")
    assert stored is not None and stored["type"] == "helm.sh/release.v1"
    assert stored["metadata"]["labels"] == {"owner": "helm"} and stored["data"] == {"release": "AAE="}
    config_map = PROTOBUF_MAGIC + _pb_string(1, _pb_string(1, b"v1") + _pb_string(2, b"ConfigMap"))
    assert post(config_map) == 415


def test_a_job_completes_at_once(kube: FakeKube, api: Any) -> None:
    from kubernetes import client

    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once", "namespace": "messaging"},
           "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}}
    client.BatchV1Api(api).create_namespaced_job("messaging", job)
    stored = kube.get("batch", "v1", "messaging", "jobs", "once")
    assert stored is not None and stored["status"]["succeeded"] == 1
    assert stored["status"]["conditions"][0]["type"] == "Complete"
