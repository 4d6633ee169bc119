"""Shared pieces of the webhook and remediation tests: payloads, runbooks, configs, a fake cluster."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from tests.fakes.kube import FakeKube

NS = "messaging"
DEPLOYMENT = "ws-gateway"


def alert(name: str = "GatewayMemoryHigh", *, status: str = "firing", fingerprint: str = "f0000001",
          starts_at: str = "2024-05-01T10:00:00.123456789Z", **labels: str) -> dict[str, Any]:
    lbl = {"alertname": name, "namespace": NS, "deployment": DEPLOYMENT, "severity": "ticket", **labels}
    return {"status": status, "labels": lbl, "annotations": {"summary": "memory high"}, "startsAt": starts_at,
            "endsAt": "2024-05-01T11:00:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus/graph", "fingerprint": fingerprint}


def payload(*alerts: dict[str, Any], **extra: Any) -> dict[str, Any]:
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return {"version": "4", "groupKey": '{}:{alertname="x"}', "truncatedAlerts": 0, "status": status,
            "receiver": "sre", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://alertmanager", "alerts": list(alerts), **extra}


def write_runbook(directory: Path, alert_name: str, action: str = "kubernetes.rollout_restart", *,
                  target: dict[str, str] | None = None, params: dict[str, Any] | None = None,
                  guards: dict[str, Any] | None = None, verify: dict[str, Any] | None = None,
                  remediation: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    fm: dict[str, Any] = {"alert": alert_name, "severity": "ticket"}
    if remediation:
        if target is None:
            target = ({"namespace": "{{ labels.namespace }}", "deployment": "{{ labels.deployment }}"}
                      if action.startswith("kubernetes.") else {})
        g = {"cooldown": "30m", "max_per_day": 3, **({"only_namespaces": [NS]} if action.startswith("kubernetes.")
                                                     else {}), **(guards or {})}
        rem: dict[str, Any] = {"action": action, "target": target, "guards": g}
        if params:
            rem["params"] = params
        if verify is None and action.startswith(("kubernetes.", "postgres.")):
            verify = {"query": "vector(1)", "within": "3s"}
        if verify:
            rem["verify"] = verify
        fm["remediation"] = rem
    path = directory / f"{alert_name}.md"
    path.write_text("---\n" + yaml.safe_dump(fm, sort_keys=False) + f"---\n# {alert_name}\n\nTest runbook.\n")
    return path


def fake_cluster(kube: FakeKube, replicas: int = 3) -> None:
    """A Deployment with its ReplicaSet-owned pods, and one bare pod nobody owns."""
    kube.put({"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": DEPLOYMENT, "namespace": NS, "labels": {"app": DEPLOYMENT}},
              "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": DEPLOYMENT}},
                       "template": {"metadata": {"labels": {"app": DEPLOYMENT}},
                                    "spec": {"containers": [{"name": "gateway", "image": "gateway:1"}]}}}})
    for i in range(replicas):
        kube.put({"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": f"{DEPLOYMENT}-abc-{i}", "namespace": NS, "labels": {"app": DEPLOYMENT},
                               "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                    "name": f"{DEPLOYMENT}-abc", "uid": "rs-uid",
                                                    "controller": True, "blockOwnerDeletion": True}]},
                  "spec": {"containers": [{"name": "gateway", "image": "gateway:1"}]}})
    kube.put({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "debug-shell", "namespace": NS},
              "spec": {"containers": [{"name": "sh", "image": "busybox"}]}})


def kube_writes(kube: FakeKube) -> list[Any]:
    """Requests that change something in the cluster (reads do not count as actions)."""
    return [r for r in kube.requests if r.method in ("PATCH", "PUT", "POST", "DELETE")]


def remediation_config(base_config: Path, state_dir: Path, *, runbooks: Path, kube_url: str | None,
                       escalation_url: str | None, dry_run: bool = False, state_url: str | None = None,
                       breaker: dict[str, Any] | None = None, enabled: bool = True) -> Path:
    """The sandbox's sre.yaml, changed for remediation tests; written beside the state."""
    data = yaml.safe_load(base_config.read_text())
    data["state"] = {"dir": str(state_dir), **({"url": state_url} if state_url else {})}
    data["remediation"] = {"enabled": enabled, "dry_run": dry_run, "runbooks_dir": str(runbooks),
                           **({"escalation_webhook": escalation_url} if escalation_url else {}),
                           **({"breaker": breaker} if breaker else {})}
    if kube_url:
        data["kubernetes"] = {"host": kube_url}
    data["jobs"] = {}
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "sre-remediation.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def token_of(config_path: Path) -> str:
    data = yaml.safe_load(config_path.read_text())
    return Path(data["webhook"]["token"]["file"]).read_text().strip()


def role_token_file(config_path: Path, role: str) -> str:
    """The file of the first token of an API role (read, metrics, operate) in a sandbox-written config."""
    data = yaml.safe_load(config_path.read_text())
    return str(data["api"]["tokens"][role][0]["file"])


def role_token(config_path: Path, role: str) -> str:
    return Path(role_token_file(config_path, role)).read_text().strip()


def role_headers(config_path: Path, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {role_token(config_path, role)}"}


def silences(am_url: str) -> list[dict[str, Any]]:
    import urllib.request

    with urllib.request.urlopen(f"{am_url}/api/v2/silences", timeout=5) as resp:
        return list(json.loads(resp.read()))


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def recent_start(seconds_ago: float = 60) -> str:
    return iso(datetime.now(UTC) - timedelta(seconds=seconds_ago))
