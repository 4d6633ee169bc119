"""Elasticsearch ILM policies, component templates, index templates and data streams as code.

`load_desired(dir)` reads `elk/` (one YAML or JSON file per object, the body as the API takes it,
named by its file) and stamps each body with `_meta.managed_by: sre` and `_meta.hash`.
`fetch_live` makes one list request per object kind (`GET _ilm/policy`, `GET _component_template`,
`GET _index_template`, and `GET _data_stream/<patterns>` only when data streams are configured or a
managed index template may be pruned). `plan(desired, live)` compares both sides after
`normalise()`, which removes what the server adds (ILM `version`, `modified_date`, `in_use_by`,
template dates, action defaults such as `min_age: 0ms`, data stream defaults) and writes settings
the way the server returns them (flat `index.*` keys with string values), so an unchanged tree
plans as unchanged. `apply` runs the plan in dependency order (component templates, ILM policies,
index templates, data streams; deletes in reverse), and `verify` asks the server what a new index
of each data stream would get (`_simulate_index`). A refusal by the server (a component update
that breaks a composing index template, a template change that leaves a data stream without a
data stream template, an unknown mapping parameter, ILM phases out of order, a missing
privilege) is that object's outcome, reported with the server's reason; objects that need it
are not attempted; the rest applies.

Pruning deletes only objects carrying `_meta.managed_by: sre`, and never one still in use: a policy
used by indices, data streams or a kept index template, a component template composed into a kept
index template, an index template backing a data stream. Those are listed as refused deletes. An
object of a desired name without `_meta.managed_by: sre` is refused unless `--adopt` names it.
`ElasticsearchTarget` is this module behind the provisioning `Target` interface.
"""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import json
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sre.adapters.elasticsearch import ElasticsearchAdapter, ElasticsearchRequestError
from sre.content import content_dir
from sre.errors import UsageError
from sre.provision.plan import MANAGED_BY, Action, ApplyResult, Change, Plan, claim, content_hash, unified_diff
from sre.provision.target import ChangeFailed, Target
from sre.results import CheckResult
from sre.telemetry import get_logger, log_fields

if TYPE_CHECKING:
    from sre.adapters.elasticsearch import ElasticsearchAdapter
    from sre.config import SreConfig
    from sre.results import CheckResult

log = get_logger("sre.provision.elasticsearch")

TARGET = "elasticsearch"
COMPONENT, ILM, INDEX, STREAM = "component_template", "ilm_policy", "index_template", "data_stream"
# Apply order: what an object refers to exists before it (index templates name component
# templates and policies; a data stream needs its index template). Deletes run in reverse.
KINDS = (COMPONENT, ILM, INDEX)
DIRS = {COMPONENT: "component_templates", ILM: "ilm", INDEX: "index_templates"}
BUILTIN_LOGS_PATTERN, BUILTIN_LOGS_PRIORITY = "logs-*-*", 100

# Top-level keys each API takes; anything else in a file is a typo caught before the server sees it.
_ALLOWED_KEYS = {
    ILM: {"policy"},
    COMPONENT: {"template", "version", "_meta", "deprecated"},
    INDEX: {"index_patterns", "composed_of", "template", "priority", "version", "_meta", "data_stream",
            "allow_auto_create", "ignore_missing_component_templates", "deprecated"},
}
# Fields the server adds to template bodies it returns.
_TEMPLATE_SERVER_FIELDS = ("created_date", "created_date_millis", "modified_date", "modified_date_millis")
# Values the server fills in for ILM actions when the request left them out.
_ILM_ACTION_DEFAULTS: dict[str, dict[str, Any]] = {
    "delete": {"delete_searchable_snapshot": True},
    "shrink": {"allow_write_after_shrink": False},
    "searchable_snapshot": {"force_merge_index": True},
    "migrate": {"enabled": True},
    "allocate": {"include": {}, "exclude": {}, "require": {}},
}
_ZERO_AGES = {"0", "0ms", "0s", "0m", "0h", "0d", "0nanos", "0micros"}
_DATA_STREAM_DEFAULTS = {"hidden": False, "allow_custom_routing": False, "failure_store": False}


# ---------------------------------------------------------------- normalising


def flatten_settings(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Settings the way Elasticsearch keeps them: flat `index.*` keys, values as strings."""
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


def _normalise_mappings(mappings: Any) -> Any:
    if isinstance(mappings, dict):
        out = {k: _normalise_mappings(v) for k, v in mappings.items()}
        if "properties" in out and out.get("type") == "object":
            del out["type"]  # implied by `properties`; servers differ on echoing it
        return out
    if isinstance(mappings, list):
        return [_normalise_mappings(v) for v in mappings]
    return mappings


def _strip_hash(meta: Any) -> Any:
    if not isinstance(meta, dict):
        return meta
    return {k: v for k, v in meta.items() if k != "hash"}


def normalise(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """The comparable form of a desired or live body: no server fields, no defaults, no hash."""
    b = copy.deepcopy(body)
    if kind == ILM:
        policy = {k: v for k, v in (b.get("policy") or {}).items()}
        if "_meta" in policy:
            policy["_meta"] = _strip_hash(policy["_meta"])
            if not policy["_meta"]:
                del policy["_meta"]
        for phase in (policy.get("phases") or {}).values():
            if str(phase.get("min_age", "0ms")) in _ZERO_AGES:
                phase.pop("min_age", None)
            for action, defaults in _ILM_ACTION_DEFAULTS.items():
                spec = (phase.get("actions") or {}).get(action)
                if isinstance(spec, dict):
                    for key, default in defaults.items():
                        if key in spec and spec[key] == default:
                            del spec[key]
        return {"policy": policy}
    for key in _TEMPLATE_SERVER_FIELDS:
        b.pop(key, None)
    if "_meta" in b:
        b["_meta"] = _strip_hash(b["_meta"])
        if not b["_meta"]:
            del b["_meta"]
    tmpl = b.get("template")
    if isinstance(tmpl, dict):
        if "settings" in tmpl:
            tmpl["settings"] = flatten_settings(tmpl["settings"] or {})
        if "mappings" in tmpl:
            tmpl["mappings"] = _normalise_mappings(tmpl["mappings"] or {})
        for key in ("settings", "mappings", "aliases"):
            if key in tmpl and not tmpl[key]:
                del tmpl[key]
        if not tmpl:
            del b["template"]
    if kind == INDEX:
        if isinstance(b.get("index_patterns"), str):
            b["index_patterns"] = [b["index_patterns"]]
        if isinstance(b.get("data_stream"), dict):
            b["data_stream"] = {k: v for k, v in b["data_stream"].items()
                                if not (k in _DATA_STREAM_DEFAULTS and v == _DATA_STREAM_DEFAULTS[k])}
        for key in ("composed_of", "ignore_missing_component_templates"):
            if key in b and not b[key]:
                del b[key]
    return b


def meta_of(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    meta = (body.get("policy") or {}).get("_meta") if kind == ILM else body.get("_meta")
    return meta if isinstance(meta, dict) else {}


def body_hash(kind: str, body: dict[str, Any]) -> str:
    return content_hash(normalise(kind, body))


def stamp(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """The body with `_meta.managed_by` and `_meta.hash` (of everything else) set."""
    out = copy.deepcopy(body)
    holder = out["policy"] if kind == ILM else out
    meta = dict(holder.get("_meta") or {})
    meta.pop("hash", None)
    meta["managed_by"] = MANAGED_BY
    holder["_meta"] = meta
    meta["hash"] = body_hash(kind, out)
    return out


def is_managed(kind: str, body: dict[str, Any]) -> bool:
    return meta_of(kind, body).get("managed_by") == MANAGED_BY


def patterns_overlap(a: str, b: str) -> bool:
    """Whether some index name matches both patterns (`*` wildcards), as the server checks templates."""
    @cache
    def match(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == "*":
            return match(i + 1, j) or (j < len(b) and match(i, j + 1))
        if j < len(b) and b[j] == "*":
            return match(i, j + 1) or (i < len(a) and match(i + 1, j))
        return i < len(a) and j < len(b) and a[i] == b[j] and match(i + 1, j + 1)

    return match(0, 0)


# ---------------------------------------------------------------- desired state


@dataclass
class Desired:
    """Stamped bodies by kind (name -> body) and the data streams to pre-create."""

    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {k: {} for k in KINDS})
    data_streams: list[str] = field(default_factory=list)
    source: Path | None = None

    def count(self) -> int:
        return sum(len(v) for v in self.objects.values())

    def _sections(self, template: str) -> list[dict[str, Any]]:
        """The `template` sections a new index merges, in order: known component templates, then its own."""
        body = self.objects[INDEX][template]
        parts = [self.objects[COMPONENT].get(c, {}).get("template") or {} for c in body.get("composed_of", [])]
        return [*parts, body.get("template") or {}]

    def resolved_settings(self, template: str) -> dict[str, Any]:
        """Flat settings an index template gives a new index."""
        settings: dict[str, Any] = {}
        for part in self._sections(template):
            settings.update(flatten_settings(part.get("settings") or {}))
        return settings

    def resolved_fields(self, template: str) -> dict[str, str]:
        """Field path -> type of every field the index template maps."""
        out: dict[str, str] = {}
        for part in self._sections(template):
            out.update(field_types(part.get("mappings") or {}))
        return out

    def requests(self) -> list[dict[str, Any]]:
        """The API requests that create everything, in apply order."""
        paths = {COMPONENT: "_component_template", ILM: "_ilm/policy", INDEX: "_index_template"}
        out: list[dict[str, Any]] = [
            {"method": "PUT", "path": f"{paths[k]}/{name}", "kind": k, "name": name, "body": body}
            for k in KINDS for name, body in sorted(self.objects[k].items())
        ]
        out += [{"method": "PUT", "path": f"_data_stream/{name}", "kind": STREAM, "name": name, "body": None}
                for name in self.data_streams]
        return out


def field_types(mappings: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for name, spec in (mappings.get("properties") or {}).items():
        path = prefix + name
        if "properties" in spec:
            out.update(field_types(spec, path + "."))
        else:
            out[path] = spec.get("type", "object")
    return out


def default_dir() -> Path:
    """The elk/ directory shipped beside the package (source checkout and container image)."""
    return content_dir("elk")


def _read(path: Path) -> Any:
    import yaml

    try:
        text = path.read_text()
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None


def load_desired(directory: Path | None = None, data_streams: Iterable[str] = ()) -> Desired:
    """Read and check `elk/`, stamp every body; a problem a person can fix raises UsageError naming the file."""
    root = Path(directory) if directory is not None else default_dir()
    if not root.is_dir():
        raise UsageError(f"no ELK policy directory at {root}", hint="set elk.dir in sre.yaml or pass --dir")
    desired = Desired(source=root, data_streams=list(data_streams))
    for kind in KINDS:
        folder = root / DIRS[kind]
        files = sorted(p for p in folder.glob("*") if p.suffix in (".yaml", ".yml", ".json")) if folder.is_dir() else []
        for path in files:
            body = _read(path)
            _check_shape(kind, path, body)
            if path.stem in desired.objects[kind]:
                raise UsageError(f"{path}: a second {kind} named {path.stem}")
            desired.objects[kind][path.stem] = stamp(kind, body)
    if not desired.count():
        raise UsageError(f"{root} holds no policies or templates (expected {', '.join(DIRS.values())}/)")
    _check_references(desired)
    return desired


def _check_shape(kind: str, path: Path, body: Any) -> None:
    if not isinstance(body, dict):
        raise UsageError(f"{path}: expected a mapping (the request body of the {kind} API)")
    unknown = sorted(set(body) - _ALLOWED_KEYS[kind])
    if unknown:
        raise UsageError(f"{path}: unknown key {unknown[0]!r} (a {kind} takes {', '.join(sorted(_ALLOWED_KEYS[kind]))})")
    meta = meta_of(kind, body)
    if "hash" in meta or "managed_by" in meta:
        raise UsageError(f"{path}: _meta.managed_by and _meta.hash are set by sre, leave them out")
    if kind == ILM and not isinstance((body.get("policy") or {}).get("phases"), dict):
        raise UsageError(f"{path}: expected policy.phases")
    if kind == COMPONENT and not isinstance(body.get("template"), dict):
        raise UsageError(f"{path}: expected template: {{settings, mappings}}")
    if kind == INDEX and not body.get("index_patterns"):
        raise UsageError(f"{path}: expected index_patterns")


def _check_references(desired: Desired) -> None:
    """What the server would accept but leave broken: a missing policy, colliding priorities."""
    templates = desired.objects[INDEX]
    for name in sorted(templates):
        policy = desired.resolved_settings(name).get("index.lifecycle.name")
        if policy is not None and policy not in desired.objects[ILM]:
            raise UsageError(f"index template {name} names ILM policy {policy!r}, which is not in {DIRS[ILM]}/")
        body = templates[name]
        patterns = _patterns(body)
        priority = int(body.get("priority", 0))
        if priority <= BUILTIN_LOGS_PRIORITY and any(patterns_overlap(p, BUILTIN_LOGS_PATTERN) for p in patterns):
            raise UsageError(f"index template {name}: priority {priority} does not beat the built-in "
                             f"{BUILTIN_LOGS_PATTERN} template (priority {BUILTIN_LOGS_PRIORITY}); use a higher one")
        for other in sorted(templates):
            if other <= name or int(templates[other].get("priority", 0)) != priority:
                continue
            if any(patterns_overlap(p, q) for p in patterns for q in _patterns(templates[other])):
                raise UsageError(f"index templates {name} and {other} match the same indices with the same "
                                 f"priority {priority}; Elasticsearch refuses that")


def _patterns(body: dict[str, Any]) -> list[str]:
    pats = body.get("index_patterns") or []
    return [pats] if isinstance(pats, str) else list(pats)


# ---------------------------------------------------------------- live state


@dataclass
class Live:
    """Server bodies by kind (name -> body, ILM entries as the list returns them)."""

    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {k: {} for k in KINDS})
    data_streams: dict[str, dict[str, Any]] | None = None
    requests: int = 0


def live_body(kind: str, entry: dict[str, Any]) -> dict[str, Any]:
    """The body part of a list entry (an ILM entry wraps it with version, dates and in_use_by)."""
    return {"policy": entry.get("policy") or {}} if kind == ILM else entry


def fetch_live(adapter: ElasticsearchAdapter, desired: Desired, *, prune: bool = False) -> Live:
    """One list request per kind; data streams only when configured or a managed template may go."""
    start = adapter.requests
    live = Live()
    live.objects[COMPONENT] = adapter.list_component_templates()
    live.objects[ILM] = adapter.list_ilm_policies()
    live.objects[INDEX] = adapter.list_index_templates()
    # GET _data_stream/<name> answers 404 when one exact name is missing, hiding the others; a
    # trailing wildcard never does, and the exact names are picked out of the answer.
    patterns: list[str] = [n if "*" in n else n + "*" for n in desired.data_streams]
    if prune:
        for name, body in live.objects[INDEX].items():
            if name not in desired.objects[INDEX] and is_managed(INDEX, body) and "data_stream" in body:
                patterns += _patterns(body)
    if patterns:
        live.data_streams = adapter.list_data_streams(sorted(set(patterns)))
    live.requests = adapter.requests - start
    return live


# ---------------------------------------------------------------- plan


def plan(desired: Desired, live: Live, *, prune: bool = False, adopt: Collection[str] = ()) -> Plan:
    """Creates, updates, drift and unchanged for every desired object; managed leftovers with --prune."""
    p = Plan(target=TARGET, requests=live.requests)
    for kind in KINDS:
        have = live.objects[kind]
        for name, body in sorted(desired.objects[kind].items()):
            want = normalise(kind, body)
            if name not in have:
                p.changes.append(Change(kind, name, Action.create, unified_diff({}, want, f"{kind}/{name}"),
                                        desired=body))
                continue
            got = normalise(kind, live_body(kind, have[name]))
            if got == want:
                p.changes.append(Change(kind, name, Action.unchanged, desired=body, live=have[name]))
                continue
            meta = meta_of(kind, live_body(kind, have[name]))
            action, reason, refusal = Action.update, "", ""
            if meta.get("managed_by") != MANAGED_BY:
                reason, refusal = claim(kind, name, adopt, f"{kind} {name} exists")
            elif meta.get("hash") == meta_of(kind, body).get("hash"):
                action, reason = Action.drift, "edited by hand since the last apply: apply restores it"
            p.changes.append(Change(kind, name, action, unified_diff(got, want, f"{kind}/{name}"),
                                    desired=body, live=have[name], reason=reason, refusal=refusal))
    if live.data_streams is not None:
        for name in desired.data_streams:
            action = Action.unchanged if name in live.data_streams else Action.create
            p.changes.append(Change(STREAM, name, action, desired={"data_stream": name}))
    if prune:
        p.changes += _deletes(desired, live)
    return p


def _deletes(desired: Desired, live: Live) -> list[Change]:
    """Managed objects gone from the tree, in delete order (index templates, policies, components)."""
    out: list[Change] = []
    gone = {k: {n for n, b in live.objects[k].items()
                if n not in desired.objects[k] and is_managed(k, live_body(k, b))} for k in KINDS}
    deleting: dict[str, set[str]] = {k: set() for k in KINDS}
    streams = live.data_streams or {}

    for name in sorted(gone[INDEX]):
        users = sorted(s for s, ds in streams.items() if ds.get("template") == name)
        refusal = f"backs data streams [{', '.join(users)}]" if users else ""
        if not refusal:
            deleting[INDEX].add(name)
        out.append(Change(INDEX, name, Action.delete, unified_diff(normalise(INDEX, live.objects[INDEX][name]), {},
                                                                   f"{INDEX}/{name}"),
                          live=live.objects[INDEX][name], refusal=refusal))
    kept_templates = set(live.objects[INDEX]) - deleting[INDEX]
    for name in sorted(gone[ILM]):
        in_use = live.objects[ILM][name].get("in_use_by") or {}
        parts = []
        if in_use.get("indices"):
            parts.append(f"indices [{', '.join(in_use['indices'])}]")
        if in_use.get("data_streams"):
            parts.append(f"data streams [{', '.join(in_use['data_streams'])}]")
        templates = sorted(set(in_use.get("composable_templates") or []) & kept_templates)
        if templates:
            parts.append(f"index templates [{', '.join(templates)}]")
        refusal = f"in use by {' and '.join(parts)}" if parts else ""
        if not refusal:
            deleting[ILM].add(name)
        out.append(Change(ILM, name, Action.delete,
                          unified_diff(normalise(ILM, live_body(ILM, live.objects[ILM][name])), {}, f"{ILM}/{name}"),
                          live=live.objects[ILM][name], refusal=refusal))
    for name in sorted(gone[COMPONENT]):
        users = sorted(t for t in kept_templates if name in (live.objects[INDEX][t].get("composed_of") or []))
        refusal = f"composed into index templates [{', '.join(users)}]" if users else ""
        out.append(Change(COMPONENT, name, Action.delete,
                          unified_diff(normalise(COMPONENT, live.objects[COMPONENT][name]), {}, f"{COMPONENT}/{name}"),
                          live=live.objects[COMPONENT][name], refusal=refusal))
    return out


def plan_live(adapter: ElasticsearchAdapter, desired: Desired, *, prune: bool = False,
              adopt: Collection[str] = ()) -> Plan:
    return plan(desired, fetch_live(adapter, desired, prune=prune), prune=prune, adopt=adopt)


# ---------------------------------------------------------------- apply


def _depends_on(change: Change, changes: list[Change]) -> set[tuple[str, str]]:
    """The (kind, name) objects a put needs: its component templates and ILM policy, a data stream's template."""
    if change.kind == INDEX and isinstance(change.desired, dict):
        composed = list(change.desired.get("composed_of") or [])
        settings: dict[str, Any] = {}
        bodies = {c.name: c.desired for c in changes if c.kind == COMPONENT and isinstance(c.desired, dict)}
        for section in [(bodies.get(n) or {}).get("template") or {} for n in composed] + [
                change.desired.get("template") or {}]:
            settings.update(flatten_settings(section.get("settings") or {}))
        policy = settings.get("index.lifecycle.name")
        return {(COMPONENT, n) for n in composed} | ({(ILM, str(policy))} if policy else set())
    if change.kind == STREAM:
        return {(INDEX, c.name) for c in changes if c.kind == INDEX and isinstance(c.desired, dict)
                and any(fnmatch.fnmatchcase(change.name, pat) for pat in _patterns(c.desired))}
    return set()


class ElasticsearchTarget(Target):
    """Policies and templates of `elk/` on one cluster. Apply runs in plan order (component
    templates, ILM policies, index templates, data streams; deletes in reverse); what needs an
    object Elasticsearch refused is not attempted; `verify` simulates a new index afterwards."""

    kind = "elk"

    def __init__(self, adapter: ElasticsearchAdapter, desired: Desired, *, verify: bool = True,
                 prune: bool = False, adopt: Collection[str] = ()) -> None:
        super().__init__(prune=prune, adopt=adopt)
        self.adapter, self.desired, self.verify = adapter, desired, verify

    @property
    def name(self) -> str:
        return TARGET

    def requests(self) -> int:
        return self.adapter.requests

    def list_live(self) -> Live:
        return fetch_live(self.adapter, self.desired, prune=self.prune)

    def normalise(self, kind: str, body: Any) -> Any:
        return normalise(kind, body)

    def plan(self, live: Live) -> Plan:
        return plan(self.desired, live, prune=self.prune, adopt=self.adopt)

    def needs(self, change: Change, plan: Plan) -> set[tuple[str, str]]:
        return _depends_on(change, plan.changes) if change.action is not Action.delete else set()

    def apply_change(self, change: Change) -> None:
        try:
            if change.kind == STREAM:
                self.adapter.create_data_stream(change.name)
            elif change.action is Action.delete:
                {COMPONENT: self.adapter.delete_component_template, ILM: self.adapter.delete_ilm_policy,
                 INDEX: self.adapter.delete_index_template}[change.kind](change.name)
            else:
                {COMPONENT: self.adapter.put_component_template, ILM: self.adapter.put_ilm_policy,
                 INDEX: self.adapter.put_index_template}[change.kind](change.name, change.desired)
        except ElasticsearchRequestError as exc:
            raise ChangeFailed(f"Elasticsearch answered {exc.status} {exc.error_type}: {exc.reason}") from None
        log.info("%s %s %s", change.action.value, change.kind, change.name,
                 extra=log_fields(kind=change.kind, name=change.name, action=change.action.value, outcome="done"))

    @contextlib.contextmanager
    def applying(self, plan: Plan, result: ApplyResult) -> Iterator[None]:
        yield
        if self.verify:
            result.verified = verify(self.desired, self.adapter)

    def close(self) -> None:
        self.adapter.close()


def simulated_index_name(pattern: str) -> str:
    """A name a new index or data stream of this pattern could have (`logs-sre-*` -> `logs-sre-verify`)."""
    head, star, tail = pattern.rpartition("*")
    return (head.replace("*", "x") + "verify" + tail) if star else pattern


def verify(desired: Desired, adapter: ElasticsearchAdapter) -> list[CheckResult]:
    """Simulate a new index for each index template: it must win, and carry its policy and mappings."""
    results: list[CheckResult] = []
    for name, body in sorted(desired.objects[INDEX].items()):
        index = simulated_index_name(_patterns(body)[0])
        try:
            sim = adapter.simulate_index(index)
        except ElasticsearchRequestError as exc:
            results.append(CheckResult(check="elk.simulate_index", target=index, status="fail",
                                       observed={"template": name}, message=str(exc)))
            continue
        problems: list[str] = []
        overlapping = [o.get("name") for o in sim.get("overlapping") or []]
        if "template" not in sim:  # Elasticsearch answers {} when nothing matches
            results.append(CheckResult(check="elk.simulate_index", target=index, status="fail",
                                       observed={"template": name, "policy": None, "fields": 0, "overlapping": []},
                                       message="no index template matches"))
            continue
        if name in overlapping:
            problems.append("a higher-priority index template wins")
        tmpl = sim.get("template") or {}
        settings = flatten_settings(tmpl.get("settings") or {})
        want_policy = desired.resolved_settings(name).get("index.lifecycle.name")
        got_policy = settings.get("index.lifecycle.name")
        if want_policy is not None and got_policy != want_policy:
            problems.append(f"ILM policy is {got_policy!r}, expected {want_policy!r}")
        got_fields = field_types(tmpl.get("mappings") or {})
        wrong = sorted(f for f, t in desired.resolved_fields(name).items() if got_fields.get(f) != t)
        if wrong:
            problems.append(f"{len(wrong)} fields missing or of another type: {', '.join(wrong[:5])}")
        results.append(CheckResult(
            check="elk.simulate_index", target=index, status="fail" if problems else "ok",
            observed={"template": name, "policy": got_policy, "fields": len(got_fields),
                      "overlapping": overlapping},
            message="; ".join(problems) or f"new index gets {name}, policy {got_policy}",
        ))
    return results


# ---------------------------------------------------------------- the job


def adapter_for(cfg: SreConfig) -> ElasticsearchAdapter:
    if cfg.endpoints.elasticsearch is None:
        raise UsageError("endpoints.elasticsearch is not configured",
                         hint="add endpoints.elasticsearch: {url: ..., api_key: {env: ES_API_KEY}} to sre.yaml")
    return ElasticsearchAdapter.from_endpoint(cfg.endpoints.elasticsearch)


def targets(cfg: SreConfig, *, directory: Path | None = None, prune: bool | None = None,
            adopt: Collection[str] = (), verify: bool | None = None) -> list[Target]:
    """The one Elasticsearch target of this config (options default to the elk section)."""
    desired = load_desired(directory or cfg.elk.dir, cfg.elk.data_streams)
    return [ElasticsearchTarget(adapter_for(cfg), desired, verify=cfg.elk.verify if verify is None else verify,
                                prune=cfg.elk.prune if prune is None else prune, adopt=adopt)]
