"""Rendering the tree: rule files for a Prometheus, or PrometheusRule objects for the Operator.

Every rendered rule file starts with a header that marks it as ours and carries the content
hash of its groups, so a plan reads a file's header to know whether it changed and never
touches files it did not write. PrometheusRule objects carry the same two facts as a label
(`app.kubernetes.io/managed-by: sre`, used to list and prune) and an annotation (the hash).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from sre.hashing import canonical_json, content_hash
from sre.rules import yamlio
from sre.rules.promql import duration_seconds
from sre.rules.tree import Tree, runbook_url

MANAGED_LABEL = "app.kubernetes.io/managed-by"
MANAGED_VALUE = "sre"
HASH_ANNOTATION = "sre/content-hash"
SOURCE_ANNOTATION = "sre/source"
PROMETHEUSRULE_MAX_BYTES = 512 * 1024  # the Operator's limit per object (it becomes one ConfigMap)
HEADER = (
    "# Rendered by sre from alerts/{source}: edit that file, not this one.\n"
    "# managed-by: sre\n"
    "# sre-hash: {hash}\n"
)
_HEADER_HASH = re.compile(r"^# sre-hash: ([0-9a-f]+)$", re.M)
_HEADER_MANAGED = re.compile(r"^# managed-by: sre$", re.M)


def to_yaml(data: Any) -> str:
    return yamlio.dump(data)


@dataclass
class RenderedFile:
    name: str  # file name in the rules directory
    source: str  # path under alerts/
    data: dict[str, Any]
    hash: str

    def text(self) -> str:
        return HEADER.format(source=self.source, hash=self.hash) + to_yaml(self.data)


def _with_runbook_url(rule: dict[str, Any], base: str) -> dict[str, Any]:
    if "alert" not in rule:
        return rule
    ann = rule.get("annotations")
    ann = dict(ann) if isinstance(ann, dict) else {}
    ann.setdefault("runbook_url", runbook_url(base, str(rule["alert"])))
    return {**rule, "annotations": ann}


def _with_for_cap(rule: dict[str, Any], cap_ms: int | None) -> dict[str, Any]:
    if cap_ms is None or "alert" not in rule or not rule.get("for"):
        return rule
    if duration_seconds(str(rule["for"])) * 1000 <= cap_ms:
        return rule
    return {**rule, "for": f"{cap_ms}ms"}


def render_files(tree: Tree, runbook_base_url: str, *, generated_only: bool = False,
                 for_cap: float | None = None) -> list[RenderedFile]:
    """The rule files a Prometheus reads, in a fixed order, each with its content hash.

    `for_cap` (seconds) renders every alert's `for:` as at most that long: sandboxes and tests
    see the shipped rules fire in seconds without an edit of the rules themselves."""
    cap_ms = None if for_cap is None else int(for_cap * 1000)
    out = []
    for f in sorted(tree.files, key=lambda f: f.out_name):
        if generated_only and not f.generated:
            continue
        groups = [{**g.raw, "rules": [_with_for_cap(_with_runbook_url(r, runbook_base_url), cap_ms)
                                      for r in g.raw.get("rules") or []]}
                  for g in f.groups]
        data = {"groups": groups}
        out.append(RenderedFile(f.out_name, f.source, data, content_hash(data)))
    return out


def read_header(text: str) -> tuple[bool, str | None]:
    """(managed by sre, the hash it claims) from a rule file's first lines."""
    head = text[:400]
    m = _HEADER_HASH.search(head)
    return bool(_HEADER_MANAGED.search(head)), (m.group(1) if m else None)


def k8s_name(text: str) -> str:
    """A DNS-1123 name: lowercase letters, digits and '-'."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return name[:253] or "rules"


def prometheusrule_objects(
    files: list[RenderedFile], *, namespace: str, labels: dict[str, str],
    max_bytes: int = PROMETHEUSRULE_MAX_BYTES,
) -> list[dict[str, Any]]:
    """One PrometheusRule per rendered file, split by groups where one would pass `max_bytes`."""
    objects: list[dict[str, Any]] = []
    for f in files:
        base = k8s_name("sre-" + f.name.rsplit(".", 1)[0])
        chunks: list[list[dict[str, Any]]] = [[]]
        size = 0
        for group in f.data["groups"]:
            gsize = len(canonical_json(group)) + 1
            if gsize > max_bytes - 2048:
                from sre.errors import CheckFailed

                raise CheckFailed(f"alerts/{f.source}: group {group.get('name')!r} alone is {gsize} bytes, "
                                  f"over the {max_bytes}-byte PrometheusRule limit: split the group")
            if chunks[-1] and size + gsize > max_bytes - 2048:
                chunks.append([])
                size = 0
            chunks[-1].append(group)
            size += gsize
        for i, groups in enumerate(chunks):
            spec = {"groups": groups}
            objects.append({
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "PrometheusRule",
                "metadata": {
                    "name": base if i == 0 else f"{base}-{i + 1}",
                    "namespace": namespace,
                    "labels": {**labels, MANAGED_LABEL: MANAGED_VALUE},
                    "annotations": {HASH_ANNOTATION: content_hash(spec), SOURCE_ANNOTATION: f"alerts/{f.source}"},
                },
                "spec": spec,
            })
    return objects


def object_size(obj: dict[str, Any]) -> int:
    return len(json.dumps(obj, separators=(",", ":")).encode())
