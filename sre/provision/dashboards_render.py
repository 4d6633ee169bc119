"""Rendering dashboards to files: plain JSON, Grafana file provisioning, or Kubernetes ConfigMaps.

Output is deterministic (sorted keys, fixed indentation, files in uid order), so a render into
git or a CI diff shows only real changes. Classic file provisioning and the Grafana sidecar of
kube-prometheus-stack know one level of folders: nested paths are flattened to one folder
titled "Parent - Child" there (the API apply keeps the nesting).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml

from sre.errors import UsageError
from sre.provision.dashboards import Desired, Sources

Format = Literal["json", "provisioning", "configmap"]
FORMATS: tuple[str, ...] = ("json", "provisioning", "configmap")
SIDECAR_LABEL = {"grafana_dashboard": "1"}  # kube-prometheus-stack: sidecar.dashboards.label/labelValue
FOLDER_ANNOTATION = "grafana_folder"  # kube-prometheus-stack: sidecar.dashboards.folderAnnotation
CONFIGMAP_MAX = 1 << 20  # the API server refuses larger ConfigMaps
GENERAL = "General"


def dump(body: dict[str, Any]) -> str:
    return json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def flat_folder(d: Desired) -> str:
    return " - ".join(d.folder.path) if d.folder else GENERAL


def _dir_name(title: str) -> str:
    return title.replace("/", "-")


def render(sources: Sources, out: Path, fmt: str) -> list[Path]:
    """Write the files of `fmt` under `out`; returns them in the order written."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        return _write_json(sources, out)
    if fmt == "provisioning":
        return _write_provisioning(sources, out)
    return _write_configmaps(sources, out)


def _write_json(sources: Sources, out: Path) -> list[Path]:
    written = []
    for d in sources.dashboards:
        folder = out.joinpath(*d.folder.path) if d.folder else out
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{d.uid}.json"
        path.write_text(dump(d.body))
        written.append(path)
    return written


def _write_provisioning(sources: Sources, out: Path) -> list[Path]:
    files_dir = (out / "dashboards").resolve()
    written = []
    providers = []
    by_folder: dict[str, list[Desired]] = {}
    for d in sources.dashboards:
        by_folder.setdefault(flat_folder(d), []).append(d)
    for title in sorted(by_folder):
        group = by_folder[title]
        folder_dir = files_dir / _dir_name(title)
        folder_dir.mkdir(parents=True, exist_ok=True)
        for d in group:
            path = folder_dir / f"{d.uid}.json"
            path.write_text(dump(d.body))
            written.append(path)
        first = group[0]
        provider: dict[str, Any] = {
            "name": f"sre-{first.folder_uid.removeprefix('sre-') if first.folder else 'general'}",
            "orgId": 1, "type": "file", "disableDeletion": False, "allowUiUpdates": False,
            "updateIntervalSeconds": 30, "options": {"path": str(folder_dir)},
        }
        if first.folder:
            provider["folder"] = title
            provider["folderUid"] = first.folder_uid
        providers.append(provider)
    provider_file = out / "provisioning" / "dashboards" / "sre.yaml"
    provider_file.parent.mkdir(parents=True, exist_ok=True)
    provider_file.write_text(yaml.safe_dump({"apiVersion": 1, "providers": providers}, sort_keys=False))
    written.append(provider_file)
    return written


def configmap(d: Desired) -> dict[str, Any]:
    data = dump(d.body)
    if len(data.encode()) > CONFIGMAP_MAX:
        raise UsageError(f"dashboard {d.uid} is {len(data.encode())} bytes, over the 1 MiB a ConfigMap holds")
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"sre-dashboard-{d.uid.lower().replace('_', '-')}"[:253].rstrip("-"),
            "labels": {**SIDECAR_LABEL, "app.kubernetes.io/managed-by": "sre"},
            "annotations": {FOLDER_ANNOTATION: flat_folder(d), "sre/hash": d.hash},
        },
        "data": {f"{d.uid}.json": data},
    }


def _write_configmaps(sources: Sources, out: Path) -> list[Path]:
    written: list[Path] = []
    names: dict[str, str] = {}
    for d in sources.dashboards:
        cm = configmap(d)
        name = cm["metadata"]["name"]
        if name in names:
            raise UsageError(f"dashboards {names[name]} and {d.uid} both become ConfigMap {name}: rename one uid")
        names[name] = d.uid
        path = out / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cm, sort_keys=False, width=1 << 20))
        written.append(path)
    return written
