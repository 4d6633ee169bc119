"""The kubernetes backend: lose the primary the way a cluster does, through the Kubernetes API.

The database runs in pods (Patroni on Kubernetes, or an operator: Zalando's, Crunchy's); the HA
layer inside the cluster labels the primary's pod (`role_label`). The drill only injects the
fault: the primary's pod deleted with preconditions on its uid and resourceVersion (the pod the
drill looked at, not one that replaced it in between; no grace period, as a lost node gives
none), or its StatefulSet scaled to zero and back. It then reads the pods' labels until another
pod carries the primary's. It never switches anything itself (no orchestrated drills).

RBAC in the database namespace: pods get and delete; statefulsets/scale get and patch.
The `kubernetes` client is imported inside the methods: it costs the CLI half a second at start-up,
and only drills with this backend need it (as in sre.adapters.kubernetes).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sre.adapters.kubernetes import KubeApiError, api_client, errors
from sre.drills.ha.base import Detail, HaError, NodeControl
from sre.errors import UsageError

if TYPE_CHECKING:
    from sre.config import KubernetesHa, SreConfig
    from sre.drills.nodes import Member

RECREATE_TIMEOUT = 300.0


class KubernetesControl(NodeControl):
    name = "kubernetes"

    def __init__(self, cfg: SreConfig, cluster: str, members: list[Member]) -> None:
        super().__init__(cfg, cluster, members)
        if cfg.drills.ha.kubernetes is None:
            raise UsageError("drills.ha.backend is kubernetes: configure drills.ha.kubernetes (namespace, pods)")
        self.conf: KubernetesHa = cfg.drills.ha.kubernetes
        missing = [n for n in self.members if n not in self.conf.pods]
        if missing:
            raise UsageError(f"drills.ha.kubernetes.pods lacks {', '.join(missing)} (one pod per PostgreSQL node)")
        self.scaled: dict[str, int] = {}  # node -> replicas of its StatefulSet before the fault
        self._apis: dict[str, Any] = {}

    # ------------------------------------------------------------------ clients (one cluster per region)

    def _core(self, node: str) -> Any:
        from kubernetes import client


        region = self.members[node].region
        key = f"core:{region}"
        if key not in self._apis:
            self._apis[key] = client.CoreV1Api(api_client(self.cfg, region if self.cfg.kubernetes.regions else None))
        return self._apis[key]

    def _apps(self, node: str) -> Any:
        from kubernetes import client


        region = self.members[node].region
        key = f"apps:{region}"
        if key not in self._apis:
            self._apis[key] = client.AppsV1Api(api_client(self.cfg, region if self.cfg.kubernetes.regions else None))
        return self._apis[key]

    # ------------------------------------------------------------------ state

    def _pod(self, node: str) -> Any | None:
        api = self._core(node)
        try:
            with errors(f"read pod {self.conf.namespace}/{self.conf.pods[node]}", api.api_client):
                return api.read_namespaced_pod(self.conf.pods[node], self.conf.namespace)
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    def roles(self) -> dict[str, str | None]:
        """node -> the role label of its pod (None: no pod, or no label)."""
        out: dict[str, str | None] = {}
        for node in self.members:
            pod = self._pod(node)
            out[node] = None if pod is None else (pod.metadata.labels or {}).get(self.conf.role_label)
        return out

    def leader(self) -> str | None:
        found = [n for n, role in self.roles().items() if role in self.conf.leader_values]
        return found[0] if len(found) == 1 else None

    def problems(self, *, mode: str, kind: str, failback: bool, src: Member, dst: Member) -> tuple[list[str], list[str]]:
        problems = []
        if kind != "observed":
            problems.append("the kubernetes backend only loses pods: run an observed drill (--observe); the HA "
                            "layer in the cluster does the switch")
        roles = self.roles()
        if roles.get(src.name) not in self.conf.leader_values:
            problems.append(f"pod {self.conf.pods[src.name]} ({src.name}) is not labelled primary "
                            f"({self.conf.role_label}={roles.get(src.name)})")
        if roles.get(dst.name) is None:
            problems.append(f"pod {self.conf.pods[dst.name]} ({dst.name}) does not exist or has no "
                            f"{self.conf.role_label} label")
        if self.conf.fault == "scale_to_zero" and src.name not in self.conf.statefulsets:
            problems.append(f"fault scale_to_zero needs drills.ha.kubernetes.statefulsets.{src.name}")
        return problems, []

    # ------------------------------------------------------------------ faults

    def lose(self, node: Member) -> Detail:
        from kubernetes import client


        ns = self.conf.namespace
        if self.conf.fault == "scale_to_zero":
            sts = self.conf.statefulsets[node.name]
            apps = self._apps(node.name)
            with errors(f"scale statefulset {ns}/{sts} to 0", apps.api_client):
                self.scaled[node.name] = int(apps.read_namespaced_stateful_set_scale(sts, ns).spec.replicas or 0)
                apps.patch_namespaced_stateful_set_scale(sts, ns, {"spec": {"replicas": 0}})
            return {"lost": node.name, "statefulset": sts, "replicas_before": self.scaled[node.name]}
        pod = self._pod(node.name)
        if pod is None:
            raise HaError(f"pod {ns}/{self.conf.pods[node.name]} does not exist")
        if (pod.metadata.labels or {}).get(self.conf.role_label) not in self.conf.leader_values:
            raise HaError(f"pod {ns}/{pod.metadata.name} is no longer the primary: not deleting it")
        core = self._core(node.name)
        body = client.V1DeleteOptions(grace_period_seconds=0, preconditions=client.V1Preconditions(
            uid=pod.metadata.uid, resource_version=pod.metadata.resource_version))
        with errors(f"delete pod {ns}/{pod.metadata.name}", core.api_client):
            core.delete_namespaced_pod(pod.metadata.name, ns, body=body)
        return {"lost": node.name, "pod": pod.metadata.name, "uid": pod.metadata.uid}

    def restore(self, node: Member) -> Detail:
        ns = self.conf.namespace
        if node.name in self.scaled:
            sts = self.conf.statefulsets[node.name]
            apps = self._apps(node.name)
            with errors(f"scale statefulset {ns}/{sts} back", apps.api_client):
                apps.patch_namespaced_stateful_set_scale(sts, ns, {"spec": {"replicas": self.scaled[node.name]}})
            return {"restored": node.name, "statefulset": sts, "replicas": self.scaled.pop(node.name)}
        # A deleted pod is recreated by its StatefulSet: wait for it.
        deadline = time.monotonic() + RECREATE_TIMEOUT
        while self._pod(node.name) is None:
            if time.monotonic() > deadline:
                raise HaError(f"pod {ns}/{self.conf.pods[node.name]} was not recreated within {RECREATE_TIMEOUT:.0f}s")
            time.sleep(0.5)
        return {"restored": node.name, "pod": self.conf.pods[node.name], "by": "its StatefulSet"}

    def rejoin(self, old: Member, new: Member) -> Detail:
        restored = self.restore(old)
        deadline = time.monotonic() + RECREATE_TIMEOUT
        while True:
            roles = self.roles()
            if roles.get(new.name) in self.conf.leader_values and roles.get(old.name) not in (
                    None, *self.conf.leader_values):
                return {"rejoined": old.name, "role": roles[old.name], **restored}
            if time.monotonic() > deadline:
                raise HaError(f"{old.name}'s pod is not back as a replica within {RECREATE_TIMEOUT:.0f}s")
            time.sleep(0.5)
