"""Kubernetes actions through the official client (sre.adapters.kubernetes builds it)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from pydantic import Field, model_validator

from sre.adapters.kubernetes import api_client, errors
from sre.errors import SreError
from sre.remediation.actions import Action, ActionContext, ActionError, ActionRefused, Params

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

T = TypeVar("T")
# Annotation `kubectl rollout restart` sets on the pod template; changing it rolls every pod.
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
REQUEST_TIMEOUT = 15.0


def _call(what: str, ctx: ActionContext, fn: Callable[[ApiClient], T]) -> T:
    try:
        api = api_client(ctx.cfg)
        try:
            with errors(what, api):
                return fn(api)
        finally:
            api.close()
    except SreError as exc:
        raise ActionError(str(exc)) from None


# Kubernetes object names (RFC 1123): a namespace is a DNS label, a Deployment or a Pod a DNS
# subdomain. Checked when the alert is parsed, so a name from a label never reaches a URL unchecked.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
Namespace = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]
ObjectName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]


class DeploymentParams(Params):
    namespace: Namespace
    deployment: ObjectName


class _OnDeployment(Action):
    kubernetes = True

    def target(self, p: DeploymentParams) -> str:
        return f"kubernetes/{p.namespace}/deployment/{p.deployment}"

    def scope(self, p: DeploymentParams) -> dict[str, str]:
        return {"namespace": p.namespace}


class RolloutRestart(_OnDeployment):
    """Restart a Deployment's pods the way `kubectl rollout restart` does: a rolling replacement."""

    name = "kubernetes.rollout_restart"
    params_model = DeploymentParams

    def describe(self, p: DeploymentParams) -> str:
        return (f"would patch deployment {p.namespace}/{p.deployment}: set pod template annotation "
                f"{RESTARTED_AT} to the current time (rolling restart, as kubectl rollout restart)")

    def run(self, p: DeploymentParams, ctx: ActionContext) -> dict[str, Any]:
        from kubernetes.client import AppsV1Api

        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}

        def patch(api: ApiClient) -> Any:
            return AppsV1Api(api).patch_namespaced_deployment(p.deployment, p.namespace, body,
                                                              _request_timeout=REQUEST_TIMEOUT)

        dep = _call(f"patch deployment {p.namespace}/{p.deployment}", ctx, patch)
        return {"restartedAt": stamp, "generation": getattr(dep.metadata, "generation", None)}


class ScaleParams(DeploymentParams):
    replicas: int | None = Field(None, ge=0, description="Scale to this many replicas.")
    by: int | None = Field(None, description="Or change the current count by this much (default +1).")
    min: int = Field(1, ge=0, description="Never below this.")
    max: int = Field(ge=1, description="Never above this.")

    @model_validator(mode="after")
    def _bounds(self) -> ScaleParams:
        if self.replicas is not None and self.by is not None:
            raise ValueError("give replicas or by, not both")
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self

    def wanted(self, current: int) -> int:
        n = self.replicas if self.replicas is not None else current + (self.by if self.by is not None else 1)
        return max(self.min, min(self.max, n))


class Scale(_OnDeployment):
    """Change a Deployment's replica count through its scale subresource, clamped to [min, max]."""

    name = "kubernetes.scale"
    params_model = ScaleParams

    def describe(self, p: ScaleParams) -> str:
        change = f"to {p.replicas}" if p.replicas is not None else f"by {p.by if p.by is not None else 1:+d}"
        return (f"would scale deployment {p.namespace}/{p.deployment} {change} replicas, "
                f"kept within [{p.min}, {p.max}] and never past its HorizontalPodAutoscaler's maximum")

    def run(self, p: ScaleParams, ctx: ActionContext) -> dict[str, Any]:
        from kubernetes.client import AppsV1Api, AutoscalingV2Api

        def scale(api: ApiClient) -> dict[str, Any]:
            apps = AppsV1Api(api)
            current = apps.read_namespaced_deployment_scale(p.deployment, p.namespace,
                                                            _request_timeout=REQUEST_TIMEOUT)
            have = int(current.spec.replicas or 0) if current.spec is not None else 0
            # Never past the maximum of an autoscaler that targets this Deployment: above it the
            # HPA would scale straight back down, and its maximum is the capacity planned for.
            hpas = AutoscalingV2Api(api).list_namespaced_horizontal_pod_autoscaler(
                p.namespace, _request_timeout=REQUEST_TIMEOUT)
            hpa_max = min((int(h.spec.max_replicas) for h in hpas.items or []
                           if h.spec is not None and h.spec.scale_target_ref.kind == "Deployment"
                           and h.spec.scale_target_ref.name == p.deployment), default=None)
            ceiling = p.max if hpa_max is None else min(p.max, hpa_max)
            want = max(min(p.wanted(have), ceiling), min(p.min, ceiling))
            if want == have:
                why = f"max {p.max}" + (f", HPA maximum {hpa_max}" if hpa_max is not None else "")
                raise ActionRefused(f"deployment {p.namespace}/{p.deployment} already has {have} replicas "
                                    f"(bounds [{p.min}, {ceiling}]: {why}): nothing a scale can do")
            apps.patch_namespaced_deployment_scale(p.deployment, p.namespace, {"spec": {"replicas": want}},
                                                   _request_timeout=REQUEST_TIMEOUT)
            return {"from": have, "to": want, **({"hpa_max": hpa_max} if hpa_max is not None else {})}

        return _call(f"scale deployment {p.namespace}/{p.deployment}", ctx, scale)


class PodParams(Params):
    namespace: Namespace
    pod: ObjectName


class DeletePod(Action):
    """Delete one pod, only when a controller (ReplicaSet, StatefulSet...) owns it and will replace it."""

    name = "kubernetes.delete_pod"
    params_model = PodParams
    kubernetes = True

    def target(self, p: PodParams) -> str:
        return f"kubernetes/{p.namespace}/pod/{p.pod}"

    def scope(self, p: PodParams) -> dict[str, str]:
        return {"namespace": p.namespace}

    def describe(self, p: PodParams) -> str:
        return f"would delete pod {p.namespace}/{p.pod} if a controller owns it (its controller replaces it)"

    def run(self, p: PodParams, ctx: ActionContext) -> dict[str, Any]:
        from kubernetes.client import CoreV1Api

        def delete(api: ApiClient) -> dict[str, Any]:
            core = CoreV1Api(api)
            from kubernetes.client import V1DeleteOptions, V1ObjectMeta, V1Preconditions
            from kubernetes.client.exceptions import ApiException

            pod = core.read_namespaced_pod(p.pod, p.namespace, _request_timeout=REQUEST_TIMEOUT)
            meta = pod.metadata or V1ObjectMeta()
            owners = [o for o in (meta.owner_references or []) if o.controller]
            if not owners:
                raise ActionRefused(f"pod {p.namespace}/{p.pod} has no controller owner: deleting it would "
                                    "not bring it back")
            # The precondition makes the API refuse (409) if the pod was replaced since it was read.
            try:
                core.delete_namespaced_pod(p.pod, p.namespace,
                                           body=V1DeleteOptions(preconditions=V1Preconditions(uid=meta.uid)),
                                           _request_timeout=REQUEST_TIMEOUT)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                raise ActionRefused(f"pod {p.namespace}/{p.pod} was replaced since it was read (uid {meta.uid} is "
                                    "gone): not deleted, its replacement is left alone") from None
            return {"owner": f"{owners[0].kind}/{owners[0].name}", "uid": meta.uid}

        return _call(f"delete pod {p.namespace}/{p.pod}", ctx, delete)
