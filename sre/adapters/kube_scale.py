"""Deployment sizes in one region's Kubernetes cluster, through the scale subresource."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sre.adapters.kubernetes import api_client, errors
from sre.errors import UsageError

if TYPE_CHECKING:
    from sre.config import SreConfig


def _split(ref: str) -> tuple[str, str]:
    ns, _, name = ref.partition("/")
    if not ns or not name:
        raise UsageError(f"kubernetes deployment {ref!r}: write it as namespace/name")
    return ns, name


def _apps(cfg: SreConfig, region: str) -> Any:
    from kubernetes import client


    return client.AppsV1Api(api_client(cfg, region))


def get_replicas(cfg: SreConfig, region: str, ref: str) -> int:
    ns, name = _split(ref)
    apps = _apps(cfg, region)
    with errors(f"read the scale of deployment {ref} in {region}", apps.api_client):
        scale = apps.read_namespaced_deployment_scale(name, ns)
    return int(scale.spec.replicas or 0)


def set_replicas(cfg: SreConfig, region: str, ref: str, replicas: int) -> None:
    ns, name = _split(ref)
    apps = _apps(cfg, region)
    with errors(f"scale deployment {ref} in {region} to {replicas}", apps.api_client):
        apps.patch_namespaced_deployment_scale(name, ns, {"spec": {"replicas": replicas}})
