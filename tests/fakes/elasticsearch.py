"""A fake Elasticsearch HTTP API on loopback, for the endpoints `sre elk` uses.

No Elasticsearch server can run here, so the real `elasticsearch` client talks to this server,
which answers as Elasticsearch documents it:

- `X-Elastic-Product: Elasticsearch` on every response (the client refuses a response without it);
- GET bodies carry the server's own fields: ILM `version`, `modified_date`, `in_use_by`, defaults
  filled in (`min_age: 0ms`, `delete_searchable_snapshot: true`), template settings flattened,
  prefixed with `index.` and returned nested with string values, `created_date_millis` and
  `modified_date_millis` on templates, data stream defaults on index templates;
- 404 bodies as Elasticsearch sends them (`resource_not_found_exception`, `index_not_found_exception`);
- 400 validation errors with `error.type` / `error.reason` (unknown phase, unknown action, action in
  the wrong phase, unknown setting, unknown field type, missing component templates, overlapping
  templates of the same priority, deleting a policy or template still in use);
- 401 `security_exception` without valid credentials (API key or basic auth), and 403
  `security_exception` when a key's role descriptors lack the privilege an action needs;
- every request recorded (method, path, query, body) for tests to assert on.

Versions modelled: Elasticsearch 8.x (the root answers 8.15.3); the rules below hold from 8.0 to
9.x. Each rule cites the upstream file it follows (`elastic/elasticsearch` paths, shortened):
refusals of component template updates that break a composing index template, of index template
changes that orphan a data stream, of unknown mapping parameters, of ILM phases whose `min_age`
goes backwards; `_simulate_index` without a match answers `{}`; a data stream's `template`,
`ilm_policy` and ILM's `in_use_by` are computed on every read.

Not modelled: documents and search, rollover, the ILM runner (phases never advance), legacy
(v1) templates, index mode `logsdb`/`time_series` rules, aliases, analysis chains, role
descriptors beyond cluster privileges and index privileges by name pattern.

Built-in objects of a fresh 8.x cluster (`logs` index template at priority 100 for `logs-*-*`, its
component templates and ILM policy) are present, so priorities and pruning meet real neighbours.
"""

from __future__ import annotations

import base64
import copy
import fnmatch
import json
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

VERSION = "8.15.3"

PHASES = ["hot", "warm", "cold", "frozen", "delete"]
ACTIONS_BY_PHASE: dict[str, set[str]] = {
    "hot": {"set_priority", "unfollow", "rollover", "readonly", "downsample", "shrink", "forcemerge",
            "searchable_snapshot"},
    "warm": {"set_priority", "unfollow", "readonly", "allocate", "migrate", "downsample", "shrink", "forcemerge"},
    "cold": {"set_priority", "unfollow", "readonly", "searchable_snapshot", "allocate", "migrate", "downsample",
             "freeze"},
    "frozen": {"unfollow", "searchable_snapshot"},
    "delete": {"wait_for_snapshot", "delete"},
}
ALL_ACTIONS = set().union(*ACTIONS_BY_PHASE.values())
HOT_ACTIONS_NEEDING_ROLLOVER = ["readonly", "shrink", "forcemerge", "downsample", "searchable_snapshot"]
ROLLOVER_CONDITIONS = {"max_age", "max_docs", "max_size", "max_primary_shard_size", "max_primary_shard_docs",
                       "min_age", "min_docs", "min_size", "min_primary_shard_size", "min_primary_shard_docs"}

FIELD_TYPES = {
    "keyword", "constant_keyword", "wildcard", "text", "match_only_text", "long", "integer", "short", "byte",
    "double", "float", "half_float", "scaled_float", "unsigned_long", "date", "date_nanos", "boolean", "ip",
    "object", "nested", "flattened", "geo_point", "alias", "binary", "version", "histogram",
}
# A subset of the index settings Elasticsearch knows; anything else under index.* is refused as it would be.
KNOWN_SETTINGS = {
    "index.number_of_shards", "index.number_of_replicas", "index.auto_expand_replicas", "index.refresh_interval",
    "index.codec", "index.hidden", "index.priority", "index.mode", "index.default_pipeline",
    "index.final_pipeline", "index.lifecycle.name", "index.lifecycle.rollover_alias",
    "index.lifecycle.origination_date", "index.lifecycle.parse_origination_date",
    "index.mapping.total_fields.limit", "index.mapping.depth.limit", "index.mapping.nested_fields.limit",
    "index.mapping.ignore_malformed", "index.mapping.coerce", "index.query.default_field",
    "index.translog.durability", "index.translog.sync_interval", "index.sort.field", "index.sort.order",
    "index.max_result_window", "index.blocks.write", "index.blocks.read_only",
}
KNOWN_SETTING_PREFIXES = ("index.routing.allocation.", "index.analysis.", "index.similarity.")
ILM_DEFAULTS = {"delete": {"delete_searchable_snapshot": True}, "shrink": {"allow_write_after_shrink": False}}

# Mapping parameters each field type accepts (server/src/main/java/org/elasticsearch/index/mapper/
# *FieldMapper.java, their Builder parameters); anything else is "unknown parameter".
_LEAF_COMMON = {"type", "meta", "fields", "copy_to", "store", "index", "doc_values", "script", "on_script_error"}
_NUMERIC = _LEAF_COMMON | {"coerce", "ignore_malformed", "null_value", "time_series_dimension", "time_series_metric"}
MAPPING_PARAMS: dict[str, set[str]] = {
    "keyword": _LEAF_COMMON | {"ignore_above", "normalizer", "null_value", "eager_global_ordinals", "index_options",
                               "norms", "similarity", "split_queries_on_whitespace", "time_series_dimension"},
    "constant_keyword": {"type", "meta", "value"},
    "wildcard": {"type", "meta", "fields", "copy_to", "ignore_above", "null_value"},
    "text": _LEAF_COMMON | {"analyzer", "search_analyzer", "search_quote_analyzer", "fielddata",
                            "fielddata_frequency_filter", "index_options", "index_prefixes", "index_phrases", "norms",
                            "position_increment_gap", "similarity", "term_vector", "eager_global_ordinals"},
    "match_only_text": {"type", "meta", "fields", "copy_to"},
    **{t: _NUMERIC for t in ("long", "integer", "short", "byte", "double", "float", "half_float", "unsigned_long")},
    "scaled_float": _NUMERIC | {"scaling_factor"},
    "date": _LEAF_COMMON | {"format", "locale", "ignore_malformed", "null_value"},
    "date_nanos": _LEAF_COMMON | {"format", "locale", "ignore_malformed", "null_value"},
    "boolean": _LEAF_COMMON | {"null_value"},
    "ip": _LEAF_COMMON | {"ignore_malformed", "null_value", "time_series_dimension"},
    "object": {"type", "properties", "dynamic", "enabled", "subobjects"},
    "nested": {"type", "properties", "dynamic", "enabled", "include_in_parent", "include_in_root"},
    "flattened": {"type", "meta", "depth_limit", "doc_values", "eager_global_ordinals", "ignore_above", "index",
                  "index_options", "null_value", "similarity", "split_queries_on_whitespace",
                  "time_series_dimensions"},
    "geo_point": _LEAF_COMMON | {"ignore_malformed", "ignore_z_value", "null_value"},
    "alias": {"type", "path"},
    "binary": {"type", "meta", "doc_values", "store"},
    "version": {"type", "meta", "fields", "copy_to", "store", "index", "doc_values"},
    "histogram": {"type", "meta", "ignore_malformed"},
}
DATA_STREAM_TIMESTAMP_TYPES = ("date", "date_nanos")

# The privileges that grant each action (x-pack/plugin/core/.../security/authz/privilege/
# ClusterPrivilegeResolver.java and IndexPrivilege.java); `all` grants everything.
CLUSTER_ACTIONS: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("GET", "_ilm"): ("cluster:admin/ilm/get", ("read_ilm", "manage_ilm", "manage")),
    ("PUT", "_ilm"): ("cluster:admin/ilm/put", ("manage_ilm", "manage")),
    ("DELETE", "_ilm"): ("cluster:admin/ilm/delete", ("manage_ilm", "manage")),
    ("GET", "_component_template"): ("cluster:admin/component_template/get", ("manage_index_templates", "manage")),
    ("PUT", "_component_template"): ("cluster:admin/component_template/put", ("manage_index_templates", "manage")),
    ("DELETE", "_component_template"): ("cluster:admin/component_template/delete",
                                        ("manage_index_templates", "manage")),
    ("GET", "_index_template"): ("indices:admin/index_template/get", ("manage_index_templates", "manage")),
    ("PUT", "_index_template"): ("indices:admin/index_template/put", ("manage_index_templates", "manage")),
    ("POST", "_index_template"): ("indices:admin/index_template/simulate_index", ("manage_index_templates", "manage")),
    ("DELETE", "_index_template"): ("indices:admin/index_template/delete", ("manage_index_templates", "manage")),
}
INDEX_ACTIONS: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("GET", "_data_stream"): ("indices:admin/data_stream/get", ("view_index_metadata", "manage")),
    ("PUT", "_data_stream"): ("indices:admin/data_stream/create", ("create_index", "manage")),
}

_TIME_UNITS = ("nanos", "micros", "ms", "s", "m", "h", "d")


class EsError(Exception):
    def __init__(self, status: int, etype: str, reason: str, caused_by: dict[str, Any] | None = None,
                 root: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status, self.etype, self.reason = status, etype, reason
        self.caused_by, self.root, self.headers = caused_by, root, headers or {}

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"root_cause": [self.root or {"type": self.etype, "reason": self.reason}],
                               "type": self.etype, "reason": self.reason}
        if self.caused_by:
            err["caused_by"] = self.caused_by
        return {"error": err, "status": self.status}


def bad_request(reason: str, etype: str = "illegal_argument_exception") -> EsError:
    return EsError(400, etype, reason)


def parse_error(where: str, fld: str, caused_by: dict[str, Any]) -> EsError:
    reason = f"[1:2] [{where}] failed to parse field [{fld}]"
    root = caused_by
    while "caused_by" in root:
        root = root["caused_by"]
    return EsError(400, "x_content_parse_exception", reason, caused_by=caused_by,
                   root={"type": root["type"], "reason": root["reason"]})


def unknown_field(where: str, name: str) -> EsError:
    return EsError(400, "x_content_parse_exception", f"[1:2] [{where}] unknown field [{name}]")


# ---------------------------------------------------------------- settings and patterns


def flatten_settings(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Elasticsearch's own normalisation: flat keys, `index.` prefix, string values."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten_settings(value, full + "."))
            continue
        if not full.startswith("index."):
            full = "index." + full
        out[full] = [_setting_str(v) for v in value] if isinstance(value, list) else _setting_str(value)
    return out


def _setting_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def nest_settings(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in sorted(flat):
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = flat[key]
    return out


def patterns_overlap(a: str, b: str) -> bool:
    """Whether some index name matches both glob patterns (`*` wildcards only)."""

    @cache
    def f(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == "*":
            return f(i + 1, j) or (j < len(b) and f(i, j + 1))
        if j < len(b) and b[j] == "*":
            return f(i, j + 1) or (i < len(a) and f(i + 1, j))
        return i < len(a) and j < len(b) and a[i] == b[j] and f(i + 1, j + 1)

    return f(0, 0)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Later templates win; dynamic templates merge by name, as Elasticsearch composes them."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if key == "dynamic_templates" and isinstance(out.get(key), list):
            merged = {next(iter(d)): d for d in out[key]}
            merged.update({next(iter(d)): copy.deepcopy(d) for d in value})
            out[key] = list(merged.values())
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _now_millis() -> int:
    return int(time.time() * 1000)


# ---------------------------------------------------------------- state


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Policy:
    policy: dict[str, Any]
    version: int
    modified_date: str


@dataclass
class _Template:
    body: dict[str, Any]  # as stored: settings flattened
    created: int
    modified: int


@dataclass
class _DataStream:
    # No template or policy stored: GET _data_stream computes them from the current templates
    # (x-pack/plugin/core/.../action/GetDataStreamAction.java via MetadataIndexTemplateService.findV2Template).
    name: str
    indices: list[dict[str, Any]]
    generation: int = 1


class State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.policies: dict[str, _Policy] = {}
        self.component_templates: dict[str, _Template] = {}
        self.index_templates: dict[str, _Template] = {}
        self.data_streams: dict[str, _DataStream] = {}
        self.indices: dict[str, dict[str, Any]] = {}  # standalone indices: name -> flat settings
        self.seed_builtins()

    def seed_builtins(self) -> None:
        meta = {"description": "default policy for the logs index template installed by x-pack", "managed": True}
        self.policies["logs"] = _Policy(
            {"phases": {"hot": {"min_age": "0ms", "actions": {"rollover": {"max_primary_shard_size": "50gb",
                                                                         "max_age": "30d"}}}},
             "_meta": meta}, 1, _now_iso())
        now = _now_millis()
        builtin = {"description": "default mappings for the logs index template installed by x-pack",
                   "managed": True}
        self.component_templates["logs@mappings"] = _Template(
            {"template": {"mappings": {"properties": {"data_stream": {"properties": {
                "type": {"type": "constant_keyword", "value": "logs"},
                "dataset": {"type": "constant_keyword"}, "namespace": {"type": "constant_keyword"}}}}}},
             "version": 14, "_meta": builtin}, now, now)
        self.component_templates["logs@settings"] = _Template(
            {"template": {"settings": {"index.lifecycle.name": "logs", "index.codec": "best_compression"}},
             "version": 14, "_meta": {**builtin, "description": "default settings for the logs index template"}},
            now, now)
        self.component_templates["ecs@mappings"] = _Template(
            {"template": {"mappings": {"dynamic_templates": [{"ecs_timestamp": {
                "match": "@timestamp", "mapping": {"type": "date", "ignore_malformed": False}}}]}},
             "version": 14, "_meta": {**builtin, "description": "dynamic mappings based on ECS"}}, now, now)
        self.index_templates["logs"] = _Template(
            {"index_patterns": ["logs-*-*"], "priority": 100, "data_stream": {},
             "composed_of": ["logs@mappings", "logs@settings", "logs@custom", "ecs@mappings"],
             "ignore_missing_component_templates": ["logs@custom"], "allow_auto_create": True,
             "version": 14, "_meta": {"description": "default logs template installed by x-pack", "managed": True}},
            now, now)

    # -- ILM ---------------------------------------------------------------

    def template_policies(self) -> dict[str, str | None]:
        """Index template -> the ILM policy a new index of it gets."""
        return {n: self.resolve_settings(n).get("index.lifecycle.name") for n in self.index_templates}

    def in_use_by(self, policy: str, template_policies: dict[str, str | None] | None = None) -> dict[str, list[str]]:
        indices = sorted(n for n, s in self.indices.items() if s.get("index.lifecycle.name") == policy)
        streams: list[str] = []
        # x-pack/plugin/ilm/.../TransportGetLifecycleAction.java: in_use_by is computed on each read.
        for ds in self.data_streams.values():
            if self.ds_policy(ds.name) == policy:
                streams.append(ds.name)
            indices.extend(i["index_name"] for i in ds.indices if i.get("ilm_policy") == policy)
        tp = self.template_policies() if template_policies is None else template_policies
        templates = sorted(n for n, p in tp.items() if p == policy)
        return {"indices": sorted(indices), "data_streams": sorted(streams), "composable_templates": templates}

    def policy_view(self, name: str, template_policies: dict[str, str | None] | None = None) -> dict[str, Any]:
        p = self.policies[name]
        policy = copy.deepcopy(p.policy)
        for phase in policy.get("phases", {}).values():
            phase.setdefault("min_age", "0ms")
            for action, defaults in ILM_DEFAULTS.items():
                if action in phase.get("actions", {}):
                    phase["actions"][action] = {**defaults, **phase["actions"][action]}
        return {"version": p.version, "modified_date": p.modified_date, "policy": policy,
                "in_use_by": self.in_use_by(name, template_policies)}

    def put_policy(self, name: str, body: Any) -> None:
        if not isinstance(body, dict) or "policy" not in body:
            raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: policy is missing;")
        for key in body:
            if key != "policy":
                raise unknown_field("put_lifecycle_request", key)
        policy = body["policy"]
        if not isinstance(policy, dict):
            raise parse_error("put_lifecycle_request", "policy",
                              {"type": "x_content_parse_exception", "reason": "[1:12] policy must be an object"})
        validate_policy(policy)
        with self.lock:
            old = self.policies.get(name)
            self.policies[name] = _Policy(copy.deepcopy(policy), (old.version + 1) if old else 1, _now_iso())

    def delete_policy(self, name: str) -> None:
        with self.lock:
            if name not in self.policies:
                raise EsError(404, "resource_not_found_exception", f"Lifecycle policy not found: {name}")
            used = self.in_use_by(name)["indices"]
            if used:
                raise bad_request(f"Cannot delete policy [{name}]. It is in use by one or more indices: "
                                  f"[{', '.join(used)}]")
            del self.policies[name]

    # -- templates ---------------------------------------------------------

    def template_view(self, t: _Template, index_template: bool) -> dict[str, Any]:
        body = copy.deepcopy(t.body)
        tmpl = body.get("template")
        if isinstance(tmpl, dict) and "settings" in tmpl:
            tmpl["settings"] = nest_settings(tmpl["settings"])
        if index_template and "data_stream" in body:
            body["data_stream"] = {"hidden": False, "allow_custom_routing": False, **body["data_stream"]}
        body["created_date_millis"] = t.created
        body["modified_date_millis"] = t.modified
        return body

    def put_component_template(self, name: str, body: Any) -> None:
        if not isinstance(body, dict) or "template" not in body:
            raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: template is missing;")
        for key in body:
            if key not in ("template", "version", "_meta", "deprecated"):
                raise unknown_field("component_template", key)
        stored = copy.deepcopy(body)
        stored["template"] = validate_template_section(body["template"], "component_template")
        with self.lock:
            old = self.component_templates.get(name)
            now = _now_millis()
            candidate = _Template(stored, old.created if old else now, now)
            # server/.../cluster/metadata/MetadataIndexTemplateService.java addComponentTemplate: every
            # index template composed of it is validated again with the new version.
            components = {**self.component_templates, name: candidate}
            for tname, tmpl in sorted(self.index_templates.items()):
                if name not in tmpl.body.get("composed_of", []):
                    continue
                try:
                    self.validate_composed(tname, tmpl.body, components)
                except EsError as exc:
                    raise EsError(400, "illegal_argument_exception",
                                  f"updating component template [{name}] results in invalid composable template "
                                  f"[{tname}] after templates are merged", caused_by=exc.body()["error"]) from None
            self.component_templates[name] = candidate

    def delete_component_template(self, name: str) -> None:
        with self.lock:
            if name not in self.component_templates:
                raise EsError(404, "resource_not_found_exception", f"component template matching [{name}] not found")
            users = sorted(n for n, t in self.index_templates.items() if name in t.body.get("composed_of", []))
            if users:
                raise bad_request(f"component templates [{name}] cannot be removed as they are still in use by "
                                  f"index templates [{', '.join(users)}]")
            del self.component_templates[name]

    def put_index_template(self, name: str, body: Any) -> None:
        if not isinstance(body, dict):
            raise EsError(400, "parse_exception", "request body is required")
        allowed = {"index_patterns", "composed_of", "template", "priority", "version", "_meta", "data_stream",
                   "allow_auto_create", "ignore_missing_component_templates", "deprecated"}
        for key in body:
            if key not in allowed:
                raise unknown_field("index_template", key)
        patterns = body.get("index_patterns")
        if isinstance(patterns, str):
            patterns = [patterns]
        if not patterns:
            raise EsError(400, "action_request_validation_exception",
                          "Validation Failed: 1: index patterns are missing;")
        stored = copy.deepcopy(body)
        stored["index_patterns"] = patterns
        if "template" in body:
            stored["template"] = validate_template_section(body["template"], "index_template")
        priority = int(body.get("priority", 0))
        with self.lock:
            ignore = set(body.get("ignore_missing_component_templates", []))
            missing = [c for c in body.get("composed_of", []) if c not in self.component_templates and c not in ignore]
            if missing:
                raise EsError(400, "invalid_index_template_exception",
                              f"index_template [{name}] invalid, cause [index template [{name}] specifies component "
                              f"templates {missing} that do not exist]")
            clash = {}
            for other, t in self.index_templates.items():
                if other == name or int(t.body.get("priority", 0)) != priority:
                    continue
                if any(patterns_overlap(p, q) for p in patterns for q in t.body["index_patterns"]):
                    clash[other] = t.body["index_patterns"]
            if clash:
                names = ", ".join(sorted(clash))
                pats = ", ".join(f"{n} => {clash[n]}" for n in sorted(clash))
                raise bad_request(
                    f"index template [{name}] has index patterns {patterns} matching patterns from existing "
                    f"templates [{names}] with patterns ({pats}) that have the same priority [{priority}], multiple "
                    "index templates may not match during index creation, please use a different priority")
            self.validate_composed(name, stored, self.component_templates, wrap=True)
            old = self.index_templates.get(name)
            now = _now_millis()
            before = {ds: self.ds_template(ds) for ds in self.data_streams}
            self.index_templates[name] = _Template(stored, old.created if old else now, now)
            # MetadataIndexTemplateService.validateDataStreamsStillReferenced: a data stream that
            # matched a data stream template must still match one.
            orphaned = sorted(ds for ds, t in before.items() if t is not None and not self._is_ds_template(
                self.ds_template(ds)))
            if orphaned:
                if old is None:
                    del self.index_templates[name]
                else:
                    self.index_templates[name] = old
                no_ds = "" if "data_stream" in stored else "and no data stream configuration "
                raise bad_request(
                    f"composable template [{name}] with index patterns [{', '.join(patterns)}], priority "
                    f"[{body.get('priority', 'null')}] {no_ds}would cause data streams [{', '.join(orphaned)}] to no "
                    "longer match a data stream template")

    def validate_composed(self, name: str, body: dict[str, Any], components: dict[str, _Template], *,
                          wrap: bool = False) -> None:
        """The template merged with its component templates must be a valid index template."""
        mappings: dict[str, Any] = {}
        for comp in body.get("composed_of", []):
            if comp in components:
                mappings = deep_merge(mappings, components[comp].body.get("template", {}).get("mappings", {}))
        mappings = deep_merge(mappings, body.get("template", {}).get("mappings", {}))
        try:
            _validate_properties(mappings.get("properties", {}), "")
            # x-pack/plugin/core/.../DataStreamTimestampFieldMapper.java: @timestamp must be a date.
            stamp = (mappings.get("properties") or {}).get("@timestamp")
            if "data_stream" in body and stamp is not None and stamp.get("type") not in DATA_STREAM_TIMESTAMP_TYPES:
                raise EsError(400, "illegal_argument_exception",
                              f"data stream timestamp field [@timestamp] is of type [{stamp.get('type')}], but "
                              f"[{','.join(DATA_STREAM_TIMESTAMP_TYPES)}] is expected")
        except EsError as exc:
            if not wrap:
                raise
            raise EsError(400, "illegal_argument_exception",
                          f"composable template [{name}] template after composition with component templates "
                          f"[{', '.join(body.get('composed_of', []))}] is invalid",
                          caused_by=exc.body()["error"]) from None

    def ds_template(self, stream: str) -> str | None:
        """The index template a data stream matches now: the highest priority one."""
        names = self.matching_templates(stream)
        return names[0] if names else None

    def _is_ds_template(self, name: str | None) -> bool:
        return name is not None and "data_stream" in self.index_templates[name].body

    def ds_policy(self, stream: str) -> str | None:
        template = self.ds_template(stream)
        return self.resolve_settings(template).get("index.lifecycle.name") if template else None

    def delete_index_template(self, name: str) -> None:
        with self.lock:
            if name not in self.index_templates:
                raise EsError(404, "resource_not_found_exception", f"index_template [{name}] missing")
            users = sorted(ds for ds in self.data_streams if self.ds_template(ds) == name)
            if users:
                raise bad_request(f"unable to remove composable templates [{name}] as they are in use by a data "
                                  f"streams [{', '.join(users)}]")
            del self.index_templates[name]

    def matching_templates(self, index: str) -> list[str]:
        """Index templates whose patterns match, highest priority first."""
        hits = [n for n, t in self.index_templates.items()
                if any(fnmatch.fnmatchcase(index, p) for p in t.body["index_patterns"])]
        return sorted(hits, key=lambda n: -int(self.index_templates[n].body.get("priority", 0)))

    def resolve_settings(self, name: str) -> dict[str, Any]:
        t = self.index_templates[name].body
        settings: dict[str, Any] = {}
        for comp in t.get("composed_of", []):
            ct = self.component_templates.get(comp)
            if ct is not None:
                settings.update(ct.body.get("template", {}).get("settings", {}))
        settings.update(t.get("template", {}).get("settings", {}))
        return settings

    def resolve_template(self, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Flat settings and mappings of an index template with its component templates merged in order."""
        t = self.index_templates[name].body
        settings: dict[str, Any] = {}
        mappings: dict[str, Any] = {}
        for comp in t.get("composed_of", []):
            ct = self.component_templates.get(comp)
            if ct is None:
                continue
            section = ct.body.get("template", {})
            settings.update(section.get("settings", {}))
            mappings = deep_merge(mappings, section.get("mappings", {}))
        own = t.get("template", {})
        settings.update(own.get("settings", {}))
        mappings = deep_merge(mappings, own.get("mappings", {}))
        return settings, mappings

    def simulate_index(self, index: str) -> dict[str, Any]:
        with self.lock:
            names = self.matching_templates(index)
            if not names:
                # TransportSimulateIndexTemplateAction: no matching template -> an empty response body.
                return {}
            winner = names[0]
            settings, mappings = self.resolve_template(winner)
            if "data_stream" in self.index_templates[winner].body:
                settings.setdefault("index.hidden", "true")
                props = mappings.setdefault("properties", {})
                props.setdefault("@timestamp", {"type": "date"})
                mappings["_data_stream_timestamp"] = {"enabled": True}
            overlapping = [{"name": n, "index_patterns": self.index_templates[n].body["index_patterns"]}
                           for n in names[1:]]
            return {"template": {"settings": nest_settings(settings), "mappings": mappings, "aliases": {}},
                    "overlapping": overlapping}

    # -- data streams ------------------------------------------------------

    def create_data_stream(self, name: str) -> None:
        with self.lock:
            if name in self.data_streams:
                raise EsError(400, "resource_already_exists_exception", f"data_stream [{name}] already exists")
            names = self.matching_templates(name)
            if not names or "data_stream" not in self.index_templates[names[0]].body:
                raise bad_request(f"no matching index template found for data stream [{name}]")
            policy = self.resolve_settings(names[0]).get("index.lifecycle.name")
            backing = f".ds-{name}-{datetime.now(UTC):%Y.%m.%d}-000001"
            self.data_streams[name] = _DataStream(name, [{
                "index_name": backing, "index_uuid": uuid.uuid4().hex[:22], "prefer_ilm": True,
                "ilm_policy": policy, "managed_by": "Index Lifecycle Management" if policy else "Unmanaged"}])

    def data_stream_view(self, ds: _DataStream) -> dict[str, Any]:
        policy = self.ds_policy(ds.name)
        view = {"name": ds.name, "timestamp_field": {"name": "@timestamp"}, "indices": copy.deepcopy(ds.indices),
                "generation": ds.generation, "status": "GREEN", "template": self.ds_template(ds.name),
                "hidden": False, "system": False, "allow_custom_routing": False, "replicated": False,
                "rollover_on_write": False,
                "next_generation_managed_by": "Index Lifecycle Management" if policy else "Unmanaged",
                "prefer_ilm": True}
        if policy:
            view["ilm_policy"] = policy
        return view


def validate_policy(policy: dict[str, Any]) -> None:
    for key in policy:
        if key not in ("phases", "_meta"):
            raise parse_error("put_lifecycle_request", "policy",
                              {"type": "x_content_parse_exception", "reason": f"[1:2] [lifecycle_policy] unknown "
                               f"field [{key}]"})
    phases = policy.get("phases")
    if not isinstance(phases, dict):
        raise parse_error("put_lifecycle_request", "policy",
                          {"type": "illegal_argument_exception", "reason": "Required [phases]"})
    for pname, phase in phases.items():
        if not isinstance(phase, dict) or "actions" not in phase:
            raise parse_error("put_lifecycle_request", "policy", {
                "type": "x_content_parse_exception", "reason": f"[1:2] [phases] failed to parse field [{pname}]",
                "caused_by": {"type": "illegal_argument_exception", "reason": "Required [actions]"}})
        for key in phase:
            if key not in ("min_age", "actions"):
                raise parse_error("put_lifecycle_request", "policy", {
                    "type": "x_content_parse_exception", "reason": f"[1:2] [phases] failed to parse field [{pname}]",
                    "caused_by": {"type": "x_content_parse_exception", "reason": f"[1:2] [phase] unknown field [{key}]"}})
        if "min_age" in phase and not _is_time(phase["min_age"]):
            raise EsError(400, "illegal_argument_exception",
                          f"failed to parse setting [min_age] with value [{phase['min_age']}] as a time value: "
                          "unit is missing or unrecognized")
        for action in phase["actions"]:
            if action not in ALL_ACTIONS:
                raise parse_error("put_lifecycle_request", "policy", {
                    "type": "x_content_parse_exception", "reason": f"[1:2] [phases] failed to parse field [{pname}]",
                    "caused_by": {"type": "x_content_parse_exception",
                                  "reason": "[1:2] [phase] failed to parse field [actions]",
                                  "caused_by": {"type": "named_object_not_found_exception",
                                                "reason": f"[1:2] unknown field [{action}]"}}})
    for pname, phase in phases.items():
        if pname not in ACTIONS_BY_PHASE:
            raise bad_request(f"Timeseries lifecycle does not support phase [{pname}]")
        for action in phase["actions"]:
            if action not in ACTIONS_BY_PHASE[pname]:
                raise bad_request(f"invalid action [{action}] defined in phase [{pname}]")
    # x-pack/plugin/core/.../ilm/TimeseriesLifecycleType.java validateMonotonicallyIncreasingPhaseTimings:
    # a phase may not start before an earlier one; phases without min_age are not compared.
    timed = [(n, phases[n]["min_age"]) for n in PHASES if n in phases and "min_age" in phases[n]]
    errors = []
    for i, (earlier, age) in enumerate(timed):
        later = [(n, a) for n, a in timed[i + 1:] if _millis(a) < _millis(age)]
        if later:
            names = ", ".join(f"{n} phase (min_age: {a})" for n, a in later)
            errors.append(f"Your policy is configured to run the {names} before the {earlier} phase (min_age: {age}). "
                          "You should change the phase timing so that the phases will execute in the order of hot, "
                          "warm, then cold.")
    if errors:
        raise bad_request(", ".join(errors))
    hot = phases.get("hot", {}).get("actions", {})
    if "rollover" not in hot:
        need = [a for a in HOT_ACTIONS_NEEDING_ROLLOVER if a in hot]
        if need:
            raise bad_request(f"the [{', '.join(need)}] action(s) may not be used in the [hot] phase without an "
                              "accompanying [rollover] action")
    for phase in phases.values():
        rollover = phase["actions"].get("rollover")
        if rollover is not None:
            unknown = [k for k in rollover if k not in ROLLOVER_CONDITIONS]
            if unknown:
                raise parse_error("rollover", unknown[0], {"type": "x_content_parse_exception",
                                                           "reason": f"[1:2] [rollover] unknown field [{unknown[0]}]"})
            if not any(k.startswith("max_") for k in rollover):
                raise EsError(400, "action_request_validation_exception",
                              "Validation Failed: 1: at least one max_* rollover condition must be set when using "
                              "min_* conditions;" if rollover else
                              "Validation Failed: 1: no rollover conditions specified;")


def _millis(value: Any) -> float:
    text = str(value)
    if text in ("0", "-1"):
        return float(text)
    factor = {"nanos": 1e-6, "micros": 1e-3, "ms": 1, "s": 1e3, "m": 6e4, "h": 3.6e6, "d": 8.64e7}
    for unit in sorted(factor, key=len, reverse=True):
        if text.endswith(unit):
            return float(text[:-len(unit)]) * factor[unit]
    return 0.0


def _is_time(value: Any) -> bool:
    text = str(value)
    if text in ("0", "-1"):
        return True
    return any(text.endswith(unit) and text[:-len(unit)].replace(".", "", 1).isdigit() for unit in _TIME_UNITS)


def validate_template_section(section: Any, where: str) -> dict[str, Any]:
    if not isinstance(section, dict):
        raise parse_error(where, "template", {"type": "x_content_parse_exception",
                                              "reason": "[1:13] template must be an object"})
    out = copy.deepcopy(section)
    for key in section:
        if key not in ("settings", "mappings", "aliases", "lifecycle", "data_stream_options"):
            raise parse_error(where, "template", {"type": "x_content_parse_exception",
                                                  "reason": f"[1:2] [template] unknown field [{key}]"})
    if "settings" in section:
        flat = flatten_settings(section["settings"] or {})
        for key in flat:
            if key not in KNOWN_SETTINGS and not key.startswith(KNOWN_SETTING_PREFIXES):
                raise bad_request(f"unknown setting [{key}] please check that any required plugins are installed, "
                                  "or check the breaking changes documentation for removed settings")
        out["settings"] = flat
    if "mappings" in section:
        _validate_properties(section["mappings"].get("properties", {}), "")
    return out


def _validate_properties(props: dict[str, Any], prefix: str) -> None:
    for name, spec in props.items():
        full = prefix + name
        ftype = spec.get("type", "object" if "properties" in spec else None)
        if ftype is None:
            raise EsError(400, "mapper_parsing_exception",
                          f"Failed to parse mapping: No type specified for field [{full}]",
                          caused_by={"type": "mapper_parsing_exception",
                                     "reason": f"No type specified for field [{full}]"})
        if ftype not in FIELD_TYPES:
            raise EsError(400, "mapper_parsing_exception",
                          f"Failed to parse mapping: No handler for type [{ftype}] declared on field [{full}]",
                          caused_by={"type": "mapper_parsing_exception",
                                     "reason": f"No handler for type [{ftype}] declared on field [{full}]"})
        # server/.../index/mapper/FieldMapper.java Builder.parse: "unknown parameter [x] on mapper [f] of type [t]"
        unknown = [k for k in spec if k not in MAPPING_PARAMS.get(ftype, {"type"})]
        if unknown:
            reason = f"unknown parameter [{unknown[0]}] on mapper [{name}] of type [{ftype}]"
            raise EsError(400, "mapper_parsing_exception", f"Failed to parse mapping: {reason}",
                          caused_by={"type": "mapper_parsing_exception", "reason": reason})
        if "properties" in spec:
            _validate_properties(spec["properties"], full + ".")
        if "fields" in spec:
            _validate_properties(spec["fields"], full + ".")


# ---------------------------------------------------------------- HTTP


class FakeElasticsearch:
    """Start with `FakeElasticsearch.start()`; `.url`, `.requests`, `.state`; `.stop()`.

    Credentials: `api_keys` (the encoded form clients send) and `users` (name -> password); with
    neither, every request is accepted (a cluster with security off).
    """

    def __init__(self, *, api_keys: list[str] | None = None, users: dict[str, str] | None = None,
                 tls_dir: Path | None = None, roles: dict[str, dict[str, Any]] | None = None) -> None:
        # roles: credential (an encoded API key, or a user name) -> its role descriptor
        # ({"cluster": [...], "indices": [{"names": [...], "privileges": [...]}]}); absent: superuser.
        self.roles = dict(roles or {})
        self.state = State()
        self.requests: list[Recorded] = []
        self.api_keys = set(api_keys or [])
        self.users = dict(users or {})
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.ca_file: Path | None = None
        scheme = "http"
        if tls_dir is not None:
            cert, key = _self_signed(tls_dir)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.ca_file = cert
            scheme = "https"
        self.port = int(self.server.server_address[1])
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="fake-es", daemon=True)

    @classmethod
    def start(cls, **kwargs: Any) -> FakeElasticsearch:
        fake = cls(**kwargs)
        fake._thread.start()
        return fake

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeElasticsearch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # test helpers

    def record(self, rec: Recorded) -> None:
        with self._lock:
            self.requests.append(rec)

    def reset_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def calls(self, method: str | None = None, prefix: str = "") -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests
                    if (method is None or r.method == method) and r.path.startswith(prefix)]

    def add_index(self, name: str, policy: str | None = None) -> None:
        """A standalone index (as if created by hand) using `policy`."""
        with self.state.lock:
            self.state.indices[name] = {"index.lifecycle.name": policy} if policy else {}

    def _authorised(self, header: str | None) -> tuple[bool, str]:
        if not self.api_keys and not self.users:
            return True, ""
        if not header:
            return False, "missing"
        scheme, _, cred = header.partition(" ")
        if scheme.lower() == "apikey":
            return cred.strip() in self.api_keys, "apikey"
        if scheme.lower() == "basic":
            try:
                user, _, pw = base64.b64decode(cred).decode().partition(":")
            except ValueError:
                return False, "basic"
            return self.users.get(user) == pw, f"user [{user}]"
        return False, "unknown"

    def role_of(self, header: str | None) -> dict[str, Any] | None:
        scheme, _, cred = (header or "").partition(" ")
        if scheme.lower() == "apikey":
            return self.roles.get(cred.strip())
        if scheme.lower() == "basic":
            try:
                return self.roles.get(base64.b64decode(cred).decode().partition(":")[0])
            except ValueError:
                return None
        return None

    def authorise(self, method: str, path: str, role: dict[str, Any] | None, who: str) -> None:
        """403 security_exception when the role lacks the privilege of this action (none: a superuser)."""
        if role is None:
            return
        parts = [unquote(x) for x in path.strip("/").split("/") if x]
        if not parts:
            return
        cluster = set(role.get("cluster", []))
        if (method, parts[0]) in CLUSTER_ACTIONS:
            action, granted = CLUSTER_ACTIONS[(method, parts[0])]
            if not cluster & {*granted, "all"}:
                raise EsError(403, "security_exception",
                              f"action [{action}] is unauthorized for {who}, this action is granted by the cluster "
                              f"privileges [{','.join((*granted, 'all'))}]")
        elif (method, parts[0]) in INDEX_ACTIONS and len(parts) > 1:
            action, granted = INDEX_ACTIONS[(method, parts[0])]
            for name in parts[1].split(","):
                # A wildcard resolves to the data streams the role may see; a name must be granted.
                if "*" not in name and not self.index_granted(role, name, granted):
                    raise EsError(403, "security_exception",
                                  f"action [{action}] is unauthorized for {who} on indices [{name}], this action is "
                                  f"granted by the index privileges [{','.join((*granted, 'all'))}]")

    @staticmethod
    def index_granted(role: dict[str, Any] | None, name: str, granted: tuple[str, ...]) -> bool:
        if role is None:
            return True
        return any(any(fnmatch.fnmatchcase(name, pat) for pat in entry.get("names", []))
                   and set(entry.get("privileges", [])) & {*granted, "all"} for entry in role.get("indices", []))

    # routing

    def dispatch(self, method: str, path: str, body: Any, role: dict[str, Any] | None = None) -> tuple[int, Any]:
        parts = [unquote(p) for p in path.strip("/").split("/") if p]
        st = self.state
        if not parts:
            return 200, {"name": "fake-node", "cluster_name": "fake", "cluster_uuid": "f4k3cluster",
                         "version": {"number": VERSION, "build_flavor": "default", "lucene_version": "9.11.1",
                                     "minimum_wire_compatibility_version": "7.17.0",
                                     "minimum_index_compatibility_version": "7.0.0"},
                         "tagline": "You Know, for Search"}
        head, rest = parts[0], parts[1:]
        with st.lock:
            if head == "_ilm" and rest[:1] == ["policy"]:
                return self._ilm(method, rest[1:], body)
            if head == "_component_template":
                return self._templates(method, rest, body, st.component_templates, "component_templates",
                                       "component_template")
            if head == "_index_template":
                if rest[:1] == ["_simulate_index"] and len(rest) == 2 and method == "POST":
                    return 200, st.simulate_index(rest[1])
                return self._templates(method, rest, body, st.index_templates, "index_templates", "index_template")
            if head == "_data_stream":
                return self._data_streams(method, rest, role)
        raise EsError(400, "illegal_argument_exception", f"request [{path}] contains unrecognized endpoint")

    def _ilm(self, method: str, rest: list[str], body: Any) -> tuple[int, Any]:
        st = self.state
        if method == "GET":
            names = _select(rest[0], st.policies) if rest else sorted(st.policies)
            if rest and not names:
                raise EsError(404, "resource_not_found_exception", f"Lifecycle policy not found: {rest[0]}")
            tp = st.template_policies()
            return 200, {n: st.policy_view(n, tp) for n in names}
        if method == "PUT" and len(rest) == 1:
            st.put_policy(rest[0], body)
            return 200, {"acknowledged": True}
        if method == "DELETE" and len(rest) == 1:
            st.delete_policy(rest[0])
            return 200, {"acknowledged": True}
        raise EsError(405, "method_not_allowed", f"Incorrect HTTP method for uri [/_ilm/policy] and method [{method}]")

    def _templates(self, method: str, rest: list[str], body: Any, store: dict[str, _Template], plural: str,
                   singular: str) -> tuple[int, Any]:
        st = self.state
        is_index = singular == "index_template"
        if method == "GET":
            if rest:
                names = _select(rest[0], store)
                if not names:
                    raise EsError(404, "resource_not_found_exception",
                                  f"{'index template' if is_index else 'component template'} matching [{rest[0]}] "
                                  "not found")
            else:
                names = sorted(store)
            return 200, {plural: [{"name": n, singular: st.template_view(store[n], is_index)} for n in names]}
        if method in ("PUT", "POST") and len(rest) == 1:
            (st.put_index_template if is_index else st.put_component_template)(rest[0], body)
            return 200, {"acknowledged": True}
        if method == "DELETE" and len(rest) == 1:
            (st.delete_index_template if is_index else st.delete_component_template)(rest[0])
            return 200, {"acknowledged": True}
        raise EsError(405, "method_not_allowed", f"Incorrect HTTP method [{method}]")

    def _data_streams(self, method: str, rest: list[str], role: dict[str, Any] | None = None) -> tuple[int, Any]:
        st = self.state
        if method == "GET":
            visible = INDEX_ACTIONS[("GET", "_data_stream")][1]
            if not rest or rest[0] in ("*", "_all"):
                names = sorted(n for n in st.data_streams if self.index_granted(role, n, visible))
            else:
                names = []
                for expr in rest[0].split(","):
                    hit = sorted(n for n in st.data_streams if fnmatch.fnmatchcase(n, expr)
                                 and self.index_granted(role, n, visible))
                    if not hit and "*" not in expr:
                        raise EsError(404, "index_not_found_exception", f"no such index [{expr}]")
                    names.extend(h for h in hit if h not in names)
            return 200, {"data_streams": [st.data_stream_view(st.data_streams[n]) for n in names]}
        if method == "PUT" and len(rest) == 1:
            st.create_data_stream(rest[0])
            return 200, {"acknowledged": True}
        raise EsError(405, "method_not_allowed", f"Incorrect HTTP method [{method}]")


def _select(expr: str, store: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for part in expr.split(","):
        if part in ("*", "_all"):
            names.extend(sorted(store))
        elif "*" in part:
            names.extend(sorted(n for n in store if fnmatch.fnmatchcase(n, part)))
        elif part in store:
            names.append(part)
    return list(dict.fromkeys(names))


def _handler(fake: FakeElasticsearch) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body in one segment: otherwise Nagle plus the client's delayed ACK add 40 ms a request.
        disable_nagle_algorithm = True
        wbufsize = -1

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def _serve(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            rec = Recorded(self.command, split.path, parse_qs(split.query), None,
                           headers={k.lower(): v for k, v in self.headers.items()})
            accept = self.headers.get("Accept", "")
            mimetype = "application/json"
            if "compatible-with=" in accept:
                wanted = accept.split("compatible-with=")[1].split(";")[0].strip()
                mimetype = f"application/vnd.elasticsearch+json;compatible-with={wanted}"
            try:
                if "compatible-with=" in accept and wanted not in ("7", "8"):
                    raise EsError(400, "media_type_header_exception",
                                  f"Invalid media-type value on headers [Accept, Content-Type]: Accept version must "
                                  f"be either version 8 or 7, but found {wanted}. Accept={accept}")
                ok, who = fake._authorised(self.headers.get("Authorization"))
                if not ok:
                    reason = (f"missing authentication credentials for REST request [{split.path}]" if who == "missing"
                              else f"unable to authenticate with provided credentials and anonymous access is not "
                                   f"allowed for this request ({who})")
                    raise EsError(401, "security_exception", reason, headers={
                        "WWW-Authenticate": 'Basic realm="security", charset="UTF-8", ApiKey'})
                if raw:
                    try:
                        rec.body = json.loads(raw)
                    except ValueError:
                        raise EsError(400, "x_content_parse_exception",
                                      "[1:1] Unexpected character: was expecting a JSON value") from None
                role = fake.role_of(self.headers.get("Authorization"))
                label = "API key id [fake-key-id] of user [sre]" if who == "apikey" else who
                fake.authorise(self.command, split.path, role, label)
                status, payload = fake.dispatch(self.command, split.path, rec.body, role)
                extra: dict[str, str] = {}
            except EsError as exc:
                status, payload, extra = exc.status, exc.body(), exc.headers
            rec.status = status
            fake.record(rec)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("X-Elastic-Product", "Elasticsearch")
            self.send_header("Content-Type", mimetype)
            self.send_header("Content-Length", str(len(data)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve

    return Handler


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 that doubles as its own CA file."""
    from datetime import timedelta
    from ipaddress import IPv4Address

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-elasticsearch")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "es-ca.pem", directory / "es-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path
