"""A fake Kubernetes API server on loopback, for the real `kubernetes` client to talk to.

A real threaded HTTP server keeping objects in memory, keyed by (group, version, namespace,
plural, name), and answering as the Kubernetes API documents for the calls the project makes:

- collections `/api/v1/namespaces/{ns}/{plural}` and `/apis/{group}/{version}/namespaces/{ns}/{plural}`
  (and their cluster-scoped forms without `namespaces/{ns}`):
  GET lists (`labelSelector`: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`;
  `fieldSelector`: dotted paths such as `metadata.name`, `status.phase`, `spec.nodeName`),
  POST creates (201; 409 AlreadyExists).
- objects `.../{plural}/{name}`: GET; PUT (replace; 409 on a stale resourceVersion);
  DELETE (Status Success, or the deleted object for kinds whose API returns it, such as Pod);
  PATCH by Content-Type:
  - `application/apply-patch+yaml`: server-side apply. `fieldManager` is required (422); the
    object is created when missing (201); fields of another manager with a different value
    conflict (409) unless `force=true`; fields this manager applied before and left out now
    are removed; `metadata.managedFields` lists the managers.
  - `application/merge-patch+json` (RFC 7386), `application/strategic-merge-patch+json`
    (maps merged, lists of named objects merged by name, other lists replaced),
    `application/json-patch+json` (RFC 6902 add/replace/remove/test).
- subresources: `{deployments,statefulsets,replicasets}/{name}/scale` (autoscaling/v1 Scale,
  GET/PUT/PATCH),
  `{plural}/{name}/status` (GET/PUT/PATCH of `status`), `pods/{name}/eviction` (POST).
- `GET /version`.

Every write bumps `resourceVersion` (and `generation` when `spec` changes). Deployments settle
at once (status follows spec: replicas ready and available, observedGeneration) and Jobs complete
at once (no pods run), unless `settle_deployments` is off. With a token set, requests without `Authorization: Bearer
<token>` get 401. Faults can be queued (`fail_next`). Every request is recorded (method, path,
query, headers, JSON body) for tests to assert on.

Versions modelled: the API of Kubernetes 1.29 (`GET /version`), whose rules here hold from 1.22
to 1.31; the Prometheus Operator's `monitoring.coreos.com/v1` CRDs (0.6x-0.8x). The server's
refusals, each citing the upstream file it follows (`kubernetes/kubernetes` paths, shortened):
- `DeleteOptions.preconditions` (uid, resourceVersion): 409 Conflict when the object changed;
- a JSON patch whose body is not an array: 400;
- a resource nobody serves (a CRD not installed, `crds=`) and a create in a namespace that does
  not exist: 404 NotFound (namespaces exist when created, seeded with `namespaces=` or `put`,
  or built in: default, kube-system, kube-public, kube-node-lease);
- PrometheusRule objects validated against the CRD's structural schema (422 Invalid) and
  unknown fields pruned from what is stored;
- the scale subresource omits `spec.replicas` when it is 0 (`omitempty`);
- RBAC (`deny`): 403 Forbidden as a `Status` naming user, verb, resource and namespace.

- discovery: `GET /api`, `/apis`, `/api/v1`, `/apis/{group}/{version}` in their legacy JSON forms
  (the aggregated v2 form is not offered, so clients fall back), listing the group versions and
  resources of `SERVED` (custom resources only while their CRD is installed). Helm installs
  through them (and `GET /openapi/v2`: a document without definitions, so client-side
  validation checks nothing) and stores its release as a Secret (`sh.helm.release.v1.<name>.v<n>`, labels
  `owner=helm,name=<name>`), which later Helm calls list by label.

Not modelled: watch, admission webhooks, garbage collection and finalizers, controllers beyond
settling Deployments, field selectors beyond dotted paths, the aggregated discovery form.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.server import LoopbackServer

Key = tuple[str, str, str, str, str]  # group, version, namespace ("" when cluster-scoped), plural, name

KINDS: dict[str, str] = {
    "pods": "Pod", "deployments": "Deployment", "replicasets": "ReplicaSet", "statefulsets": "StatefulSet",
    "daemonsets": "DaemonSet", "services": "Service", "configmaps": "ConfigMap", "secrets": "Secret",
    "namespaces": "Namespace", "nodes": "Node", "events": "Event", "leases": "Lease", "jobs": "Job",
    "cronjobs": "CronJob", "horizontalpodautoscalers": "HorizontalPodAutoscaler",
    "poddisruptionbudgets": "PodDisruptionBudget", "prometheusrules": "PrometheusRule",
    "servicemonitors": "ServiceMonitor", "podmonitors": "PodMonitor", "serviceaccounts": "ServiceAccount",
    "roles": "Role", "rolebindings": "RoleBinding", "clusterroles": "ClusterRole",
    "clusterrolebindings": "ClusterRoleBinding", "networkpolicies": "NetworkPolicy", "ingresses": "Ingress",
    "persistentvolumeclaims": "PersistentVolumeClaim",
}
PLURALS = {kind: plural for plural, kind in KINDS.items()}
CLUSTER_SCOPED = frozenset({"namespaces", "nodes", "clusterroles", "clusterrolebindings"})
SCALABLE = frozenset({"deployments", "statefulsets", "replicasets"})  # the apps/v1 kinds with a scale subresource
# The API returns the deleted object for these; a Status for the others (custom resources included).
RETURNS_OBJECT_ON_DELETE = frozenset({"pods", "namespaces", "persistentvolumes", "persistentvolumeclaims",
                                      "serviceaccounts", "resourcequotas"})
BUILTIN_GROUPS = frozenset({"", "apps", "batch", "autoscaling", "policy", "coordination.k8s.io",
                            "networking.k8s.io", "rbac.authorization.k8s.io"})
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"

_CORE = re.compile(r"^/api/(?P<version>v1)(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)"
                   r"(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?$")
_GROUP = re.compile(r"^/apis/(?P<group>[^/]+)/(?P<version>[^/]+)(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)"
                    r"(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?$")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def kind_of(plural: str) -> str:
    return KINDS.get(plural) or plural[:-1].capitalize()


def api_version(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any  # parsed JSON when the body is JSON, else the text (None when empty)
    at: float  # time.monotonic() on arrival
    status: int = 0

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    reason: str
    message: str
    times: int


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.reason, self.message, self.details = status, reason, message, details or {}

    def body(self) -> dict[str, Any]:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": self.message,
                "reason": self.reason, "details": self.details, "code": self.status}


# ---------------------------------------------------------------- selectors and merges


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def label_selector_matches(selector: str, labels: dict[str, str]) -> bool:
    for req in _split_top(selector or ""):
        m = re.match(r"^([\w./-]+)\s+(in|notin)\s+\((.*)\)$", req)
        if m:
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            present = key in labels and labels[key] in values
            if present != (op == "in"):
                return False
            continue
        m = re.match(r"^([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)$", req)
        if m:
            key, op, value = m.groups()
            if (labels.get(key) == value) != (op in ("=", "==")):
                return False
            continue
        if req.startswith("!"):
            if req[1:].strip() in labels:
                return False
        elif req not in labels:
            return False
    return True


def _dig(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def field_selector_matches(selector: str, obj: dict[str, Any]) -> bool:
    for req in _split_top(selector or ""):
        m = re.match(r"^([\w.]+)\s*(==|=|!=)\s*(.*)$", req)
        if not m:
            raise ApiError(400, "BadRequest", f'unable to parse requirement: "{req}"')
        path, op, value = m.groups()
        have = _dig(obj, path)
        have_s = "" if have is None else str(have)
        if (have_s == value) != (op in ("=", "==")):
            return False
    return True


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def strategic_merge(target: Any, patch: Any) -> Any:
    """Maps merge, null deletes, lists of objects with `name` merge by name, other lists replace."""
    if isinstance(patch, dict) and isinstance(target, dict):
        out = dict(target)
        for k, v in patch.items():
            if k.startswith("$"):
                continue
            if v is None:
                out.pop(k, None)
            else:
                out[k] = strategic_merge(out.get(k), v)
        return out
    if (isinstance(patch, list) and isinstance(target, list) and patch
            and all(isinstance(x, dict) and "name" in x for x in patch + target)):
        by_name = {x["name"]: x for x in target}
        order = [x["name"] for x in target]
        for item in patch:
            if item.get("$patch") == "delete":
                by_name.pop(item["name"], None)
                continue
            if item["name"] not in by_name:
                order.append(item["name"])
            by_name[item["name"]] = strategic_merge(by_name.get(item["name"]), item)
        return [by_name[n] for n in order if n in by_name]
    return copy.deepcopy(patch)


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def json_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    doc = copy.deepcopy(doc)
    for op in ops:
        parts = _pointer(op.get("path", ""))
        if not parts:
            raise ApiError(422, "Invalid", "the root of the object cannot be patched")
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent.get(p)
            if parent is None:
                raise ApiError(422, "Invalid", f"path {op['path']} does not exist")
        last = parts[-1]
        kind = op.get("op")
        if kind == "test":
            have = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if have != op.get("value"):
                raise ApiError(422, "Invalid", f"test failed at {op['path']}")
        elif kind in ("add", "replace"):
            if isinstance(parent, list):
                if last == "-":
                    parent.append(op["value"])
                elif kind == "add":
                    parent.insert(int(last), op["value"])
                else:
                    parent[int(last)] = op["value"]
            else:
                if kind == "replace" and last not in parent:
                    raise ApiError(422, "Invalid", f"replace: {op['path']} does not exist")
                parent[last] = op["value"]
        elif kind == "remove":
            if isinstance(parent, list):
                parent.pop(int(last))
            elif last in parent:
                del parent[last]
            else:
                raise ApiError(422, "Invalid", f"remove: {op['path']} does not exist")
        else:
            raise ApiError(422, "Invalid", f"unknown JSON patch op {kind!r}")
    return doc


# ---------------------------------------------------------------- protobuf bodies (Secrets only)
# client-go's typed clients send built-in kinds as protobuf (Helm's release storage does, for its
# Secret). The envelope is "k8s\x00" + runtime.Unknown (apimachinery pkg/runtime/generated.proto:
# typeMeta = 1, raw = 2); the Secret and ObjectMeta fields follow api/core/v1/generated.proto and
# apimachinery pkg/apis/meta/v1/generated.proto. Answers are JSON, which clients accept.
PROTOBUF_MAGIC = b"k8s\x00"


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, varint or length-delimited bytes) of one protobuf message."""
    out: list[tuple[int, int | bytes]] = []
    i = 0

    def varint() -> int:
        nonlocal i
        shift = value = 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while i < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            out.append((number, varint()))
        elif wire == 2:
            n = varint()
            out.append((number, data[i:i + n]))
            i += n
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
        else:
            raise ValueError(f"protobuf wire type {wire} not supported")
    return out


def _map_entry(raw: bytes) -> tuple[str, bytes]:
    entry = dict(_fields(raw))
    key, value = entry.get(1, b""), entry.get(2, b"")
    assert isinstance(key, bytes) and isinstance(value, bytes)
    return key.decode(), value


def secret_from_protobuf(body: bytes) -> dict[str, Any]:
    """A v1 Secret sent as protobuf, as the JSON object the API would store."""
    import base64

    if not body.startswith(PROTOBUF_MAGIC):
        raise ApiError(400, "BadRequest", "protobuf body without the k8s envelope")
    unknown = dict(_fields(body[len(PROTOBUF_MAGIC):]))
    type_meta = dict(_fields(unknown.get(1, b"")))  # type: ignore[arg-type]
    if type_meta.get(2) != b"Secret":
        raise ApiError(415, "UnsupportedMediaType", "this fake reads protobuf bodies of Secrets only")
    meta: dict[str, Any] = {}
    secret: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": meta}
    for number, value in _fields(unknown.get(2, b"")):  # type: ignore[arg-type]
        if number == 1 and isinstance(value, bytes):
            for m_number, m_value in _fields(value):
                if isinstance(m_value, bytes) and m_number in (1, 2, 3, 6):
                    meta[{1: "name", 2: "generateName", 3: "namespace", 6: "resourceVersion"}[m_number]] = \
                        m_value.decode()
                elif isinstance(m_value, bytes) and m_number in (11, 12):
                    k, v = _map_entry(m_value)
                    meta.setdefault("labels" if m_number == 11 else "annotations", {})[k] = v.decode()
        elif number == 2 and isinstance(value, bytes):
            k, v = _map_entry(value)
            secret.setdefault("data", {})[k] = base64.b64encode(v).decode()
        elif number == 3 and isinstance(value, bytes):
            secret["type"] = value.decode()
        elif number == 4 and isinstance(value, bytes):
            k, v = _map_entry(value)
            secret.setdefault("stringData", {})[k] = v.decode()
        elif number == 5 and isinstance(value, int):
            secret["immutable"] = bool(value)
    return secret


def _pb_string(number: int, value: bytes) -> bytes:
    return bytes([number << 3 | 2, len(value)]) + value


# GET /openapi/v2 (kube-openapi's handler; clients ask for gnostic's protobuf form): a document
# with no definitions. Client-side validation (kubectl's and Helm's hook builder) then finds no
# schema for any kind and checks nothing: this fake does not model the API's schemas.
OPENAPI_V2 = _pb_string(1, b"2.0") + _pb_string(2, _pb_string(1, b"Kubernetes") + _pb_string(2, b"v1.29.0"))
OPENAPI_V2_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


OPERATOR_CRDS = frozenset({("monitoring.coreos.com", "prometheusrules"), ("monitoring.coreos.com", "servicemonitors"),
                           ("monitoring.coreos.com", "podmonitors")})

# Discovery (staging/src/k8s.io/apiserver/pkg/endpoints/discovery: legacy APIVersions, APIGroupList,
# APIResourceList): the group versions and resources of Kubernetes 1.29 this fake serves. Clients
# (client-go, Helm) ask the aggregated v2 form first and fall back to these when the answer's
# Content-Type is plain JSON.
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
SERVED: dict[tuple[str, str], list[str]] = {
    ("", "v1"): ["pods", "services", "configmaps", "secrets", "namespaces", "nodes", "events", "serviceaccounts",
                 "persistentvolumeclaims"],
    ("apps", "v1"): ["deployments", "replicasets", "statefulsets", "daemonsets"],
    ("batch", "v1"): ["jobs", "cronjobs"],
    ("autoscaling", "v2"): ["horizontalpodautoscalers"],
    ("autoscaling", "v1"): ["horizontalpodautoscalers"],
    ("policy", "v1"): ["poddisruptionbudgets"],
    ("coordination.k8s.io", "v1"): ["leases"],
    ("networking.k8s.io", "v1"): ["networkpolicies", "ingresses"],
    ("rbac.authorization.k8s.io", "v1"): ["roles", "rolebindings", "clusterroles", "clusterrolebindings"],
    ("monitoring.coreos.com", "v1"): ["prometheusrules", "servicemonitors", "podmonitors"],
}
BUILTIN_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})

# The structural schema of PrometheusRule.spec (prometheus-operator pkg/apis/monitoring/v1/
# prometheusrule_types.go and the CRD generated from it): required fields, types, the duration
# pattern. Fields it does not list are pruned by the API server (apiextensions structural pruning).
_DURATION = r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_RULE_SCHEMA = {"type": "object", "required": ["expr"], "properties": {
    "record": {"type": "string"}, "alert": {"type": "string"}, "expr": {"type": "int-or-string"},
    "for": {"type": "string", "pattern": _DURATION}, "keep_firing_for": {"type": "string", "pattern": _DURATION},
    "labels": _STR_MAP, "annotations": _STR_MAP}}
_GROUP_SCHEMA = {"type": "object", "required": ["name"], "properties": {
    "name": {"type": "string", "minLength": 1}, "interval": {"type": "string", "pattern": _DURATION},
    "query_offset": {"type": "string", "pattern": _DURATION}, "limit": {"type": "integer"},
    "partial_response_strategy": {"type": "string"}, "labels": _STR_MAP,
    "rules": {"type": "array", "items": _RULE_SCHEMA}}}
SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("monitoring.coreos.com", "prometheusrules"): {"type": "object", "properties": {
        "groups": {"type": "array", "items": _GROUP_SCHEMA}}},
}
_JSON_TYPES = {"string": str, "integer": int, "object": dict, "array": list, "boolean": bool}


def _type_name(value: Any) -> str:
    return {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object", list: "array"}.get(
        type(value), "null")


def _check(value: Any, schema: dict[str, Any], path: str, errors: list[tuple[str, str]]) -> Any:
    """Validate `value` against a structural schema; return it with unknown fields pruned."""
    kind = schema.get("type")
    if kind == "int-or-string":
        ok = isinstance(value, str | int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, _JSON_TYPES[kind]) and not (kind == "integer" and isinstance(value, bool))
    if not ok:
        errors.append((path, f'Invalid value: "{_type_name(value)}": {path} in body must be of type '
                             f'{"string" if kind == "int-or-string" else kind}: "{_type_name(value)}"'))
        return value
    if kind == "string":
        if len(value) < schema.get("minLength", 0):
            errors.append((path, f"Invalid value: {json.dumps(value)}: {path} in body should be at least "
                                 f"{schema['minLength']} chars long"))
        if "pattern" in schema and not re.match(schema["pattern"], value):
            errors.append((path, f"Invalid value: {json.dumps(value)}: {path} in body should match "
                                 f"'{schema['pattern']}'"))
    if kind == "array":
        return [_check(item, schema["items"], f"{path}[{i}]", errors) for i, item in enumerate(value)]
    if kind == "object":
        for req in schema.get("required", []):
            if req not in value:
                errors.append((f"{path}.{req}", "Required value"))
        if "additionalProperties" in schema:
            return {k: _check(v, schema["additionalProperties"], f"{path}.{k}", errors) for k, v in value.items()}
        props = schema.get("properties", {})
        return {k: _check(v, props[k], f"{path}.{k}", errors) for k, v in value.items() if k in props}
    return value


_SERVER_META = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "deletionTimestamp")

# Lists that server-side apply merges item by item (`x-kubernetes-list-type: map`), by resource and
# field path -> the keys of an item. Every other list is atomic: owned whole by one manager.
# PrometheusRule: prometheus-operator pkg/apis/monitoring/v1/prometheusrule_types.go marks
# `spec.groups` `+listType=map` `+listMapKey=name` (the generated CRD carries
# x-kubernetes-list-type: map, x-kubernetes-list-map-keys: [name]); `rules` inside a group is atomic.
LIST_MAPS: dict[tuple[str, str], dict[tuple[str, ...], tuple[str, ...]]] = {
    ("monitoring.coreos.com", "prometheusrules"): {("spec", "groups"): ("name",)},
}
Path = tuple[str, ...]  # field path; a list-map item is one element `k:{"name":"x"}` (as in fieldsV1)


def _item_key(item: Any, keys: tuple[str, ...]) -> str | None:
    if not isinstance(item, dict) or any(k not in item for k in keys):
        return None
    return "k:" + json.dumps({k: item[k] for k in keys}, separators=(",", ":"), sort_keys=True)


def _leaves(obj: Any, prefix: Path = (), list_maps: dict[Path, tuple[str, ...]] | None = None) -> dict[Path, Any]:
    """Field paths of an applied configuration down to scalars and atomic lists.

    Follows k8s.io structured-merge-diff (fieldpath): maps own their keys; a list-map owns each
    item by its key; any other list is owned whole.
    """
    list_maps = list_maps or {}
    if isinstance(obj, dict):  # an empty map owns no field
        out: dict[Path, Any] = {}
        for k, v in obj.items():
            if prefix == ("metadata",) and k in (*_SERVER_META, "name", "namespace"):
                continue
            out.update(_leaves(v, (*prefix, k), list_maps))
        return out
    keys = list_maps.get(prefix)
    if isinstance(obj, list) and keys is not None:
        out = {}
        for item in obj:
            element = _item_key(item, keys)
            if element is None:
                raise ApiError(422, "Invalid", f".{'.'.join(prefix)}: Invalid value: an item lacks its key "
                                               f"field(s) {', '.join(keys)}")
            if (*prefix, element) in out or any(p[:len(prefix) + 1] == (*prefix, element) for p in out):
                raise ApiError(422, "Invalid", f".{'.'.join(prefix)}: Duplicate value: {element[2:]}")
            out.update(_leaves(item, (*prefix, element), list_maps))
        return out
    return {prefix: obj} if prefix else {}


def _child(obj: Any, part: str) -> Any:
    if part.startswith("k:"):
        want = json.loads(part[2:])
        if not isinstance(obj, list):
            return None
        return next((x for x in obj if isinstance(x, dict) and all(x.get(k) == v for k, v in want.items())), None)
    return obj.get(part) if isinstance(obj, dict) else None


def _get_path(obj: Any, path: Path) -> Any:
    for p in path:
        obj = _child(obj, p)
        if obj is None:
            return None
    return obj


def _set_path(obj: dict[str, Any], path: Path, value: Any) -> None:
    cur: Any = obj
    for i, p in enumerate(path[:-1]):
        nxt = _child(cur, p)
        if nxt is None:
            if p.startswith("k:"):  # a new list-map item: appended, with its key fields
                nxt = dict(json.loads(p[2:]))
                cur.append(nxt)
            else:
                nxt = [] if path[i + 1].startswith("k:") else {}
                cur[p] = nxt
        cur = nxt
    cur[path[-1]] = copy.deepcopy(value)


def _del_path(obj: dict[str, Any], path: Path) -> None:
    parent = _get_path(obj, path[:-1])
    if isinstance(parent, dict):
        parent.pop(path[-1], None)
    for depth in range(len(path) - 1, 0, -1):  # drop maps left empty
        holder = _get_path(obj, path[:depth - 1])
        node = _get_path(obj, path[:depth])
        if node != {} or path[depth - 1].startswith("k:"):
            break
        if isinstance(holder, dict):
            holder.pop(path[depth - 1], None)


def _del_item(obj: dict[str, Any], item_path: Path) -> None:
    holder = _get_path(obj, item_path[:-1])
    item = _get_path(obj, item_path)
    if isinstance(holder, list) and item is not None:
        holder.remove(item)


def fields_v1(paths: set[Path]) -> dict[str, Any]:
    """The `fieldsV1` form of a set of field paths (f:<field>, k:<key> with "." for the item itself)."""
    out: dict[str, Any] = {}
    for path in sorted(paths):
        node = out
        for part in path:
            name = part if part.startswith("k:") else f"f:{part}"
            node = node.setdefault(name, {})
            if part.startswith("k:"):
                node.setdefault(".", {})
    return out


# ---------------------------------------------------------------- the server


class FakeKube(LoopbackServer):
    """An in-memory Kubernetes API server: `with FakeKube() as kube: ... kube.url ...`."""

    def __init__(self, token: str | None = None, *, settle_deployments: bool = True,
                 crds: set[tuple[str, str]] | None = None, namespaces: set[str] | None = None,
                 user: str = "system:serviceaccount:sre:sre") -> None:
        self.token = token
        self.settle_deployments = settle_deployments
        # (group, plural) of the custom resources whose CRD is installed.
        self.crds = set(crds if crds is not None else OPERATOR_CRDS)
        self.namespaces: set[str] = set(BUILTIN_NAMESPACES) | set(namespaces or ())
        self.user = user
        self.denied: set[tuple[str, str, str, str]] = set()  # (verb, group, plural or plural/sub, namespace or "*")
        self._hooks: list[tuple[str, re.Pattern[str], Callable[[FakeKube], None]]] = []
        self.objects: dict[Key, dict[str, Any]] = {}
        self.owners: dict[Key, dict[str, set[tuple[str, ...]]]] = {}  # key -> manager -> applied fields
        self.requests: list[Recorded] = []
        self._faults: list[Fault] = []
        self._rv = 1000
        self._lock = threading.RLock()

    # ------------------------------------------------------------ lifecycle

    thread_name = "fake-kube"

    def handler(self) -> type[_Handler]:
        fake = self

        class Handler(_Handler):
            owner = fake

        return Handler

    # ------------------------------------------------------------ for tests

    def fail_next(self, method: str, path_regex: str, status: int, *, reason: str = "InternalError",
                  message: str = "injected failure", times: int = 1) -> None:
        """The next `times` requests matching method and path answer `status` with a Status body."""
        with self._lock:
            self._faults.append(Fault(method.upper(), re.compile(path_regex), status, reason, message, times))

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def requests_to(self, method: str | None = None, path_regex: str = "") -> list[Recorded]:
        pat = re.compile(path_regex)
        with self._lock:
            return [r for r in self.requests
                    if (method is None or r.method == method.upper()) and pat.search(r.path)]

    def before_next(self, method: str, path_regex: str, fn: Callable[[FakeKube], None]) -> None:
        """Run `fn(fake)` once, just before the next matching request is handled (a change by someone else)."""
        with self._lock:
            self._hooks.append((method.upper(), re.compile(path_regex), fn))

    def _run_hooks(self, method: str, path: str) -> None:
        with self._lock:
            due = [h for h in self._hooks if h[0] == method and h[1].search(path)]
            for hook in due:
                self._hooks.remove(hook)
                hook[2](self)

    def deny(self, verb: str, plural: str, namespace: str = "*", group: str = "") -> None:
        """RBAC: this fake's user may not `verb` (get, list, create, update, patch, delete) `plural`."""
        with self._lock:
            self.denied.add((verb, group, plural, namespace))

    def put(self, obj: dict[str, Any], plural: str | None = None) -> dict[str, Any]:
        """Store `obj` as if created through the API (metadata filled in); returns the stored copy."""
        group, _, version = obj["apiVersion"].rpartition("/")
        plural = plural or PLURALS.get(obj["kind"]) or obj["kind"].lower() + "s"
        ns = "" if plural in CLUSTER_SCOPED else obj["metadata"].get("namespace", "default")
        with self._lock:
            if ns:
                self.namespaces.add(ns)
            if plural == "namespaces":
                self.namespaces.add(obj["metadata"]["name"])
            stored = self._create_object((group, version, ns, plural, obj["metadata"]["name"]), copy.deepcopy(obj),
                                         manager="test")
        return copy.deepcopy(stored)

    def get(self, group: str, version: str, namespace: str, plural: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            obj = self.objects.get((group, version, namespace, plural, name))
            return copy.deepcopy(obj) if obj is not None else None

    def items(self, group: str, version: str, namespace: str | None, plural: str) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(o) for (g, v, ns, p, _), o in sorted(self.objects.items())
                    if g == group and v == version and p == plural and (namespace is None or ns == namespace)]

    def deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get("apps", "v1", namespace, "deployments", name)

    def pods(self, namespace: str) -> list[dict[str, Any]]:
        return self.items("", "v1", namespace, "pods")

    # ------------------------------------------------------------ object store

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _managed_fields(self, key: Key, operation: dict[str, str]) -> list[dict[str, Any]]:
        group, version = key[0], key[1]
        return [{"manager": m, "operation": operation.get(m, "Apply"), "apiVersion": api_version(group, version),
                 "time": _now(), "fieldsType": "FieldsV1", "fieldsV1": fields_v1(paths)}
                for m, paths in sorted(self.owners.get(key, {}).items())]

    def _create_object(self, key: Key, obj: dict[str, Any], *, manager: str, applied: bool = False) -> dict[str, Any]:
        group, version, ns, plural, name = key
        meta = obj.setdefault("metadata", {})
        meta["name"] = name
        if ns:
            meta["namespace"] = ns
        meta.update(uid=str(uuid.uuid4()), resourceVersion=self._next_rv(), creationTimestamp=_now(), generation=1)
        obj["apiVersion"] = api_version(group, version)
        obj["kind"] = kind_of(plural)
        self.owners[key] = {manager: set(_leaves(obj, list_maps=LIST_MAPS.get((group, plural)))) if applied else set()}
        meta["managedFields"] = self._managed_fields(key, {manager: "Apply" if applied else "Update"})
        self._settle(key, obj)
        self.objects[key] = obj
        return obj

    def _store(self, key: Key, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
        meta = after.setdefault("metadata", {})
        for field_ in ("uid", "creationTimestamp", "name", "namespace"):
            if field_ in before.get("metadata", {}):
                meta[field_] = before["metadata"][field_]
        meta["generation"] = before["metadata"].get("generation", 1) + (before.get("spec") != after.get("spec"))
        meta["resourceVersion"] = self._next_rv()
        after["apiVersion"], after["kind"] = before["apiVersion"], before["kind"]
        meta["managedFields"] = self._managed_fields(key, {})
        self._settle(key, after)
        self.objects[key] = after
        return after

    def _settle(self, key: Key, obj: dict[str, Any]) -> None:
        if key[3] == "jobs" and self.settle_deployments and not obj.get("status"):
            # A Job's pods are not run here: it completes at once (pkg/controller/job: Complete=True).
            now = _now()
            obj["status"] = {"startTime": now, "completionTime": now, "succeeded": 1, "active": 0, "ready": 0,
                             "conditions": [{"type": "Complete", "status": "True", "lastProbeTime": now,
                                             "lastTransitionTime": now}]}
            return
        if key[3] != "deployments" or not self.settle_deployments:
            return
        replicas = (obj.get("spec") or {}).get("replicas", 1)
        obj["status"] = {
            "observedGeneration": obj["metadata"].get("generation", 1), "replicas": replicas,
            "updatedReplicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ],
        }

    def _not_found(self, key: Key) -> ApiError:
        group, _, _, plural, name = key
        resource = f"{plural}.{group}" if group else plural
        details = {"name": name, "kind": plural, **({"group": group} if group else {})}
        return ApiError(404, "NotFound", f'{resource} "{name}" not found', details)

    # ------------------------------------------------------------ verbs

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
               body: Any) -> tuple[int, Any]:
        if path == "/version":
            return 200, {"major": "1", "minor": "29", "gitVersion": "v1.29.0-fake", "platform": "linux/amd64"}
        if method == "GET" and (found := self._discovery(path)) is not None:
            return 200, found
        if method == "GET" and path == "/openapi/v2":
            return 200, OPENAPI_V2
        m = _CORE.match(path) or _GROUP.match(path)
        if not m:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")
        d = m.groupdict()
        group, version, ns, plural = d.get("group") or "", d["version"], d["ns"] or "", d["plural"]
        name, sub = d.get("name"), d.get("sub")
        # apiextensions-apiserver: a group/resource without an installed CRD is not served at all.
        if group not in BUILTIN_GROUPS and (group, plural) not in self.crds:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        self._authorize(method, group, ns, plural, name, sub, query)
        if "watch" in query and query["watch"][0] in ("true", "1"):
            raise ApiError(400, "BadRequest", "watch is not supported by this fake")
        ctype = headers.get("content-type", "").split(";")[0].strip()
        with self._lock:
            if name is None:
                if method == "GET":
                    return 200, self._list(group, version, ns, plural, query)
                if method == "POST":
                    return self._create(group, version, ns, plural, body, query)
                raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed on a collection")
            key: Key = (group, version, ns, plural, name)
            if sub == "scale" and plural in SCALABLE:
                return self._scale(key, method, ctype, body)
            if sub == "status":
                return self._status(key, method, ctype, body)
            if sub == "eviction" and plural == "pods" and method == "POST":
                if key not in self.objects:
                    raise self._not_found(key)
                del self.objects[key]
                return 201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
            if sub is not None:
                raise ApiError(404, "NotFound", f"subresource {sub} of {plural} is not served by this fake")
            if method == "GET":
                if key not in self.objects:
                    raise self._not_found(key)
                return 200, copy.deepcopy(self.objects[key])
            if method == "PUT":
                return self._replace(key, body)
            if method == "PATCH":
                return self._patch(key, ctype, body, query)
            if method == "DELETE":
                return self._delete(key, body)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed")

    def _served(self) -> dict[tuple[str, str], list[str]]:
        """Group versions and their resources, custom resources only with their CRD installed."""
        out: dict[tuple[str, str], list[str]] = {}
        for (group, version), plurals in SERVED.items():
            kept = [p for p in plurals if group in BUILTIN_GROUPS or (group, p) in self.crds]
            if kept:
                out[(group, version)] = kept
        return out

    def _discovery(self, path: str) -> dict[str, Any] | None:
        served = self._served()
        path = path.rstrip("/") or "/"
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}
        if path == "/apis":
            groups: dict[str, list[str]] = {}
            for group, version in served:
                if group:
                    groups.setdefault(group, []).append(version)
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                 "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]}}
                for g, vs in sorted(groups.items())]}
        m = re.match(r"^/api/(v1)$|^/apis/([^/]+)/([^/]+)$", path)
        if not m:
            return None
        group, version = ("", "v1") if m.group(1) else (m.group(2), m.group(3))
        if (group, version) not in served:
            return None
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": api_version(group, version),
                "resources": [{"name": p, "singularName": kind_of(p).lower(), "namespaced": p not in CLUSTER_SCOPED,
                               "kind": kind_of(p), "verbs": VERBS} for p in served[(group, version)]]}

    def _authorize(self, method: str, group: str, ns: str, plural: str, name: str | None, sub: str | None,
                   query: dict[str, list[str]]) -> None:
        """plugin/pkg/auth/authorizer/rbac: a denied request is 403 Forbidden with this message shape."""
        if not self.denied:
            return
        verb = {"GET": "get" if name else "list", "POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete"}.get(method, method.lower())
        if method == "POST" and sub is not None:
            verb = "create"
        resource = f"{plural}/{sub}" if sub else plural
        if not any((verb, group, resource, scope) in self.denied for scope in (ns or "", "*")):
            return
        what = f"{resource}.{group}" if group else resource
        subject = f'{what} "{name}"' if name else what
        where = f' in the namespace "{ns}"' if ns else " at the cluster scope"
        raise ApiError(403, "Forbidden", f'{subject} is forbidden: User "{self.user}" cannot {verb} resource '
                                         f'"{resource}" in API group "{group}"{where}',
                       {"name": name or "", "group": group, "kind": plural})

    def _namespace_exists(self, ns: str) -> bool:
        return ns in self.namespaces or ("", "v1", "", "namespaces", ns) in self.objects

    def _require_namespace(self, ns: str) -> None:
        # staging/src/k8s.io/apiserver/pkg/admission/plugin/namespace/lifecycle: no creates in a
        # namespace that does not exist.
        if ns and not self._namespace_exists(ns):
            raise ApiError(404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"})

    def _list(self, group: str, version: str, ns: str, plural: str, query: dict[str, list[str]]) -> dict[str, Any]:
        label_sel = (query.get("labelSelector") or [""])[0]
        field_sel = (query.get("fieldSelector") or [""])[0]
        items = []
        for (g, v, o_ns, p, _), obj in sorted(self.objects.items()):
            if g != group or v != version or p != plural or (ns and o_ns != ns):
                continue
            if not label_selector_matches(label_sel, obj.get("metadata", {}).get("labels") or {}):
                continue
            if not field_selector_matches(field_sel, obj):
                continue
            item = copy.deepcopy(obj)
            if group in BUILTIN_GROUPS:  # typed lists omit kind/apiVersion on items; custom resources keep them
                item.pop("kind", None)
                item.pop("apiVersion", None)
            items.append(item)
        return {"kind": kind_of(plural) + "List", "apiVersion": api_version(group, version),
                "metadata": {"resourceVersion": str(self._rv)}, "items": items}

    def _create(self, group: str, version: str, ns: str, plural: str, body: Any,
                query: dict[str, list[str]]) -> tuple[int, Any]:
        if not isinstance(body, dict) or not (body.get("metadata") or {}).get("name"):
            raise ApiError(422, "Invalid", f"{kind_of(plural)} is invalid: metadata.name: Required value: name is required")
        key: Key = (group, version, ns, plural, body["metadata"]["name"])
        self._require_namespace(ns)
        if key in self.objects:
            resource = f"{plural}.{group}" if group else plural
            raise ApiError(409, "AlreadyExists", f'{resource} "{key[4]}" already exists',
                           {"name": key[4], "kind": plural, **({"group": group} if group else {})})
        manager = (query.get("fieldManager") or ["unknown"])[0]
        if plural == "namespaces":
            self.namespaces.add(key[4])
        return 201, copy.deepcopy(self._create_object(key, self._validated(key, copy.deepcopy(body)), manager=manager))

    def _replace(self, key: Key, body: Any) -> tuple[int, Any]:
        cur = self.objects.get(key)
        if cur is None:
            raise self._not_found(key)
        rv = (body.get("metadata") or {}).get("resourceVersion")
        if rv and rv != cur["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {key[3]} "{key[4]}": the object has '
                                            "been modified; please apply your changes to the latest version and try "
                                            "again", {"name": key[4], "kind": key[3]})
        return 200, copy.deepcopy(self._store(key, cur, self._validated(key, copy.deepcopy(body))))

    def _patch(self, key: Key, ctype: str, body: Any, query: dict[str, list[str]]) -> tuple[int, Any]:
        if ctype == APPLY:
            return self._apply(key, body, query)
        cur = self.objects.get(key)
        if cur is None:
            raise self._not_found(key)
        if ctype == MERGE:
            after = merge_patch(cur, body)
        elif ctype == STRATEGIC:
            if key[0] not in BUILTIN_GROUPS:
                raise ApiError(415, "UnsupportedMediaType", "strategic merge patch is not supported for custom "
                                                            "resources")
            after = strategic_merge(cur, body)
        elif ctype == JSON_PATCH:
            # staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go: the body must decode as
            # a jsonpatch.Patch (an array of operations).
            if not isinstance(body, list):
                raise ApiError(400, "BadRequest", "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
            after = json_patch(cur, body)
        else:
            raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format ({ctype})")
        return 200, copy.deepcopy(self._store(key, cur, self._validated(key, after)))

    def _apply(self, key: Key, body: Any, query: dict[str, list[str]]) -> tuple[int, Any]:
        manager = (query.get("fieldManager") or [""])[0]
        if not manager:
            raise ApiError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                                           "is required for apply patch")
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the apply patch must be an object")
        force = (query.get("force") or ["false"])[0] in ("true", "True", "1")
        cur = self.objects.get(key)
        if cur is None:
            self._require_namespace(key[2])
            body = self._validated(key, copy.deepcopy(body))
            return 201, copy.deepcopy(self._create_object(key, body, manager=manager, applied=True))
        body = self._validated(key, copy.deepcopy(body))
        applied = _leaves(body, list_maps=LIST_MAPS.get((key[0], key[3])))
        owners = self.owners.setdefault(key, {})
        conflicts = []
        for path, value in applied.items():
            if _get_path(cur, path) == value:
                continue
            for other, fields in owners.items():
                if other != manager and path in fields:
                    conflicts.append((other, path))
        if conflicts and not force:
            desc = "; ".join(f'conflict with "{o}": .{".".join(p)}' for o, p in conflicts)
            raise ApiError(409, "Conflict", f"Apply failed with {len(conflicts)} conflict(s): {desc}",
                           {"causes": [{"reason": "FieldManagerConflict", "message": f'conflict with "{o}"',
                                        "field": "." + ".".join(p)} for o, p in conflicts]})
        after = copy.deepcopy(cur)
        before_owned = owners.get(manager, set())
        others = set().union(*(f for o, f in owners.items() if o != manager))
        # A list-map item this manager applied before and no longer does goes when no other
        # manager owns a field in it (structured-merge-diff removes what only the applier owned).
        gone: set[Path] = set()
        for path in before_owned:
            for i, part in enumerate(path):
                item = path[:i + 1]
                if part.startswith("k:") and not any(p[:i + 1] == item for p in set(applied) | others):
                    gone.add(item)
        for item in sorted(gone, key=len, reverse=True):
            _del_item(after, item)
        for path in before_owned - set(applied):
            if path not in others and not any(path[:len(item)] == item for item in gone):
                _del_path(after, path)
        for path, value in applied.items():
            _set_path(after, path, value)
        for other, fields in owners.items():
            if other != manager:
                fields -= set(applied)
        owners[manager] = set(applied)
        return 200, copy.deepcopy(self._store(key, cur, after))

    def _delete(self, key: Key, body: Any = None) -> tuple[int, Any]:
        cur = self.objects.get(key)
        if cur is None:
            raise self._not_found(key)
        # staging/src/k8s.io/apiserver/pkg/storage/interfaces.go Preconditions.Check: a delete
        # whose preconditions no longer hold is a 409 Conflict.
        pre = (body or {}).get("preconditions") or {} if isinstance(body, dict) else {}
        meta = cur["metadata"]
        for field_, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            if pre.get(field_) and pre[field_] != meta.get(field_):
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {key[3]} "{key[4]}": Precondition '
                                                f"failed: {label} in precondition: {pre[field_]}, {label} in object "
                                                f"meta: {meta.get(field_)}", {"name": key[4], "kind": key[3]})
        del self.objects[key]
        self.owners.pop(key, None)
        if key[3] in RETURNS_OBJECT_ON_DELETE:
            return 200, copy.deepcopy(cur)
        details = {"name": key[4], "kind": key[3], "uid": cur["metadata"]["uid"], **({"group": key[0]} if key[0] else {})}
        return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    def _scale(self, key: Key, method: str, ctype: str, body: Any) -> tuple[int, Any]:
        cur = self.objects.get(key)
        if cur is None:
            raise self._not_found(key)
        if method in ("PUT", "PATCH"):
            if method == "PATCH" and ctype == JSON_PATCH:
                scale = json_patch(self._scale_view(cur), body if isinstance(body, list) else [])
            else:
                scale = merge_patch(self._scale_view(cur), body) if method == "PATCH" else body
            replicas = (scale.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise ApiError(422, "Invalid", f'Scale.autoscaling "{key[4]}" is invalid: spec.replicas: Invalid value')
            after = copy.deepcopy(cur)
            after.setdefault("spec", {})["replicas"] = replicas
            cur = self._store(key, cur, after)
        elif method != "GET":
            raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed on scale")
        return 200, self._scale_view(cur)

    def _validated(self, key: Key, obj: dict[str, Any]) -> dict[str, Any]:
        """A custom resource checked against its CRD's structural schema, unknown fields pruned."""
        schema = SCHEMAS.get((key[0], key[3]))
        if schema is None or not isinstance(obj.get("spec"), dict):
            return obj
        errors: list[tuple[str, str]] = []
        obj["spec"] = _check(obj["spec"], schema, "spec", errors)
        if errors:
            kind = f"{kind_of(key[3])}.{key[0]}"
            raise ApiError(422, "Invalid", f'{kind} "{key[4]}" is invalid: '
                                           + ", ".join(f"{f}: {m}" for f, m in errors),
                           {"name": key[4], "group": key[0], "kind": kind_of(key[3]),
                            "causes": [{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in errors]})
        return obj

    @staticmethod
    def _scale_view(dep: dict[str, Any]) -> dict[str, Any]:
        meta = dep["metadata"]
        labels = ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                             if k in meta},
                # autoscaling/v1 ScaleSpec: `replicas,omitempty`, so 0 is left out of the body.
                "spec": {k: v for k, v in {"replicas": (dep.get("spec") or {}).get("replicas", 1)}.items() if v},
                "status": {"replicas": (dep.get("status") or {}).get("replicas", 0),
                           "selector": ",".join(f"{k}={v}" for k, v in sorted(labels.items()))}}

    def _status(self, key: Key, method: str, ctype: str, body: Any) -> tuple[int, Any]:
        cur = self.objects.get(key)
        if cur is None:
            raise self._not_found(key)
        if method == "GET":
            return 200, copy.deepcopy(cur)
        after = copy.deepcopy(cur)
        if method == "PUT":
            after["status"] = copy.deepcopy((body or {}).get("status"))
        elif method == "PATCH":
            patched = merge_patch(cur, body) if ctype != JSON_PATCH else json_patch(cur, body)
            after["status"] = patched.get("status")
        else:
            raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed on status")
        self.objects[key] = after
        after["metadata"]["resourceVersion"] = self._next_rv()
        return 200, copy.deepcopy(after)

    def _fault_for(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for f in self._faults:
                if f.method == method and f.path.search(path) and f.times > 0:
                    f.times -= 1
                    if f.times == 0:
                        self._faults.remove(f)
                    return f
        return None


class _Handler(BaseHTTPRequestHandler):
    owner: FakeKube
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self, method: str) -> None:
        fake = self.owner
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        headers = {k.lower(): v for k, v in self.headers.items()}
        length = int(headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        text = raw.decode("utf-8", errors="replace")
        body: Any = None
        if raw and "protobuf" in headers.get("content-type", ""):
            try:
                body = secret_from_protobuf(raw)
            except ApiError as exc:
                body = exc
        elif text:
            try:
                body = json.loads(text)
            except ValueError:
                body = text
        rec = Recorded(method, path, query, headers, body, time.monotonic())
        with fake._lock:
            fake.requests.append(rec)
        status: int
        payload: Any
        if fake.token is not None and headers.get("authorization") != f"Bearer {fake.token}":
            status, payload = 401, ApiError(401, "Unauthorized", "Unauthorized").body()
        elif isinstance(body, ApiError):
            status, payload = body.status, body.body()
        elif (fault := fake._fault_for(method, path)) is not None:
            status, payload = fault.status, ApiError(fault.status, fault.reason, fault.message).body()
        else:
            try:
                fake._run_hooks(method, path)
                status, payload = fake.handle(method, path, query, headers, body)
            except ApiError as exc:
                status, payload = exc.status, exc.body()
            except Exception as exc:  # a bug in the fake must show as a 500, not a hung client
                status, payload = 500, ApiError(500, "InternalError", f"fake: {exc!r}").body()
        rec.status = status
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", OPENAPI_V2_TYPE if isinstance(payload, bytes) else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")
