"""The chart rendered for real: Helm's own library (helm-sdkpy, Helm 4) lints it and installs it,
once per values file, into the fake Kubernetes API; every object Helm sends is validated for each
Kubernetes version the chart claims. The release is stored as Helm stores it, so Helm reads it back."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import helm_sdkpy as helm  # scripts/bootstrap installs it (Helm 4's library)
import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions
from packaging.version import Version

from tests.fakes.kube import FakeKube

ROOT = Path(__file__).parents[2]
CHART = ROOT / "deploy" / "helm" / "sre"
NAMESPACE = "sre"
# Custom resources: kubernetes-validate knows only Kubernetes' own kinds.
PROMETHEUSRULE_SCHEMA = ROOT / "tests" / "unit" / "prometheusrule.schema.json"
OPERATOR_KINDS = {"PrometheusRule", "ServiceMonitor"}
VALUES = {"defaults": None, **{p.stem: p for p in sorted((CHART / "ci").glob("*-values.yaml"))}}


def claimed_versions() -> list[str]:
    """The Kubernetes versions Chart.yaml's kubeVersion allows that kubernetes-validate has schemas
    for: its floor, the version the fake API models, and the newest (the API groups the chart uses
    are GA across the range, so the ends and the middle stand for it: ten milliseconds a
    validation, times every object, times every minor, would cost the suite half a minute)."""
    floor = str(yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"])
    assert floor.startswith(">="), "the chart claims a lower bound only"
    low = Version(floor[2:].split("-")[0])
    allowed = [v for v in all_versions() if Version(v) >= low]
    return sorted({allowed[0], "1.29.0", allowed[-1]} & set(allowed), key=Version)


@cache
def prometheusrule_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(PROMETHEUSRULE_SCHEMA.read_text())
    return schema


def kubeconfig(url: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": url}}],
        "users": [{"name": "helm", "user": {}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "helm", "namespace": NAMESPACE}}],
    })


def install(kube: FakeKube, values: dict[str, Any] | None) -> dict[str, Any]:
    config = helm.Configuration(namespace=NAMESPACE, kubeconfig=kubeconfig(kube.url))
    result: dict[str, Any] = asyncio.run(helm.Install(config).run("sre", str(CHART), values=values, wait=False,
                                                                   timeout=60))
    return result


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with FakeKube(namespaces={NAMESPACE, "messaging", "messaging-ws", "monitoring"}) as fake:
        yield fake


def test_helm_lints_the_chart_clean() -> None:
    report = asyncio.run(helm.Lint(helm.Configuration()).run(str(CHART)))
    assert report["Errors"] is None, report
    # Helm's severities: 1 info, 2 warning, 3 error; values.yaml is checked against values.schema.json.
    assert [m for m in report["Messages"] if m["Severity"] >= 2] == [], report["Messages"]


@pytest.mark.parametrize("name", list(VALUES))
def test_the_chart_installs_and_every_object_is_valid_kubernetes(kube: FakeKube, name: str) -> None:
    path = VALUES[name]
    values = yaml.safe_load(path.read_text()) if path else None
    release = install(kube, values)
    assert release["info"]["status"] == "deployed", release["info"]

    sent = [r.body for r in kube.requests if r.method in ("POST", "PUT", "PATCH") and isinstance(r.body, dict)
            and r.body.get("type") != "helm.sh/release.v1"]
    kinds = sorted({obj["kind"] for obj in sent})
    assert {"ConfigMap", "Deployment", "Service"} <= set(kinds), kinds
    versions = claimed_versions()
    assert versions and versions[0] == "1.25.0", versions
    for obj in sent:
        where = f"{obj['kind']}/{obj['metadata']['name']} ({name})"
        if obj["kind"] == "PrometheusRule":
            jsonschema.validate(obj, prometheusrule_schema())
        elif obj["kind"] not in OPERATOR_KINDS:
            for version in versions:
                try:
                    kubernetes_validate.validate(obj, version, strict=True)
                except kubernetes_validate.ValidationError as exc:
                    pytest.fail(f"{where} is not valid Kubernetes {version}: {exc.message} at {list(exc.path)}")
    config = next(obj for obj in sent if obj["kind"] == "ConfigMap" and "sre.yaml" in obj.get("data", {}))
    from sre.config import SreConfig

    SreConfig.model_validate(yaml.safe_load(config["data"]["sre.yaml"]))  # what the pods read is a valid sre.yaml


def test_the_release_is_stored_as_helm_stores_it_and_read_back(kube: FakeKube) -> None:
    install(kube, None)
    (secret,) = kube.items("", "v1", NAMESPACE, "secrets")
    assert secret["metadata"]["name"] == "sh.helm.release.v1.sre.v1" and secret["type"] == "helm.sh/release.v1"
    assert secret["metadata"]["labels"]["owner"] == "helm" and secret["metadata"]["labels"]["status"] == "deployed"
    stored = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(secret["data"]["release"]))))
    assert stored["name"] == "sre" and stored["chart"]["metadata"]["name"] == "sre"
    config = helm.Configuration(namespace=NAMESPACE, kubeconfig=kubeconfig(kube.url))
    status = asyncio.run(helm.Status(config).run("sre"))
    assert status["info"]["status"] == "deployed" and status["version"] == 1
    with pytest.raises(helm.InstallError, match="cannot reuse a name that is still in use"):
        install(kube, None)


def test_values_the_config_schema_refuses_fail_the_install(kube: FakeKube) -> None:
    with pytest.raises(helm.InstallError, match="config"):
        install(kube, {"config": {"environment": "qa"}})
    with pytest.raises(helm.InstallError, match="rpo"):
        install(kube, {"config": {"postgres": {"clusters": {"main": {
            "primary": {"name": "a", "region": "us-east-1", "dsn": {"env": "X"}}, "objectives": {"rpo": "soon"}}}}}})
    assert not [r for r in kube.requests if r.method == "POST"], "nothing sent"
