"""Alert rules -> a Prometheus: rule files in its rules directory, or PrometheusRule objects.

Rules directory (a Prometheus with `rule_files: [<dir>/*.yaml]` and `--web.enable-lifecycle`):
plan compares each rendered file with the file of the same name, reading only the header
hash of files sre wrote (and hashing their content to spot hand edits); a file without the
`managed-by: sre` header is refused (unless `--adopt` names it) and never pruned. Apply takes a
lock, writes each file atomically
(temporary file + rename, so a reload never reads half a file), POSTs /-/reload and then reads
/api/v1/rules to confirm that the loaded groups are the desired ones, by a hash of what the
API shows of them. A refused reload puts the previous files back, so the running rules and the
files agree again, and reports Prometheus's reason (exit 1).

Kubernetes (the Prometheus Operator): one PrometheusRule per rendered file (split under 512
KiB), created and updated by server-side apply with field manager `sre`, listed by the label
`app.kubernetes.io/managed-by=sre` (one request for the whole plan), and pruned only among
the objects carrying that label. An object to create is first looked up by name (one GET each,
none when nothing is new): one without the label is refused unless `--adopt` names it. `spec.groups` is a list-map keyed by `name` in the Operator's
CRD, so server-side apply keeps groups another field manager applied to the same object: the
plan compares only the groups sre's field manager owns (read from `managedFields`) and names the
others and their manager; apply leaves them alone. A cluster without the Operator's CRD is a clear
configuration error; each object the API server refuses (a namespace that does not exist, the
CRD's schema, RBAC) or stores without fields its schema prunes (which would drift on every plan)
is that object's failure, and the rest applies.

`RulesDirTarget` and `PrometheusRuleTarget` are these two behind the provisioning `Target` interface.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sre.adapters.kubernetes import APPLY_PATCH, KubeApiError, KubeForbidden, api_client, describe, errors, regions
from sre.adapters.prometheus import PrometheusClient, PrometheusError
from sre.config import parse_duration
from sre.errors import CheckFailed, UnreachableError, UsageError
from sre.provision.plan import Action, ApplyResult, Change, Plan, claim, content_hash, unified_diff
from sre.provision.target import ChangeFailed, Target
from sre.rules import promtool, yamlio
from sre.rules.loader import load_tree
from sre.rules.promql import PromQLSyntaxError, canonical
from sre.rules.render import (
    HASH_ANNOTATION,
    MANAGED_LABEL,
    MANAGED_VALUE,
    RenderedFile,
    prometheusrule_objects,
    read_header,
    render_files,
)

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from sre.adapters.prometheus import PrometheusClient
    from sre.config import SreConfig

RULE_SUFFIXES = (".yaml", ".yml")
LOCK_NAME = ".sre-apply.lock"
FIELD_MANAGER = "sre"
CRD_GROUP, CRD_VERSION, CRD_PLURAL = "monitoring.coreos.com", "v1", "prometheusrules"


# ---------------------------------------------------------------- the loaded view of a group


def _rule_view(kind: str, name: str, expr: str, duration: float, labels: dict[str, Any],
               annotations: dict[str, Any]) -> dict[str, Any]:
    try:
        text = canonical(expr)
    except PromQLSyntaxError:
        text = expr
    return {"type": kind, "name": name, "expr": text, "for": float(duration),
            "labels": {str(k): str(v) for k, v in labels.items()},
            "annotations": {str(k): str(v) for k, v in annotations.items()}}


def desired_group_hash(group: dict[str, Any]) -> str:
    """What /api/v1/rules will show of `group` once loaded, hashed."""
    rules = []
    for r in group.get("rules") or []:
        alert = "alert" in r
        rules.append(_rule_view(
            "alerting" if alert else "recording", str(r.get("alert") or r.get("record")), str(r.get("expr", "")),
            parse_duration(r["for"]) if alert and r.get("for") else 0.0,
            r.get("labels") or {}, (r.get("annotations") or {}) if alert else {}))
    return content_hash({"name": group.get("name"), "rules": rules})


def loaded_group_hash(group: dict[str, Any]) -> str:
    """The same hash from a group as /api/v1/rules returns it."""
    rules = [_rule_view(r.get("type", ""), str(r.get("name")), str(r.get("query", "")), r.get("duration") or 0.0,
                        r.get("labels") or {}, r.get("annotations") or {} if r.get("type") == "alerting" else {})
             for r in group.get("rules") or []]
    return content_hash({"name": group.get("name"), "rules": rules})


# ---------------------------------------------------------------- rules directory: plan


@dataclass
class LiveFile:
    name: str
    text: str
    managed: bool
    claimed_hash: str | None
    actual_hash: str | None


def read_rules_dir(rules_dir: Path) -> dict[str, LiveFile]:
    out: dict[str, LiveFile] = {}
    if not rules_dir.is_dir():
        raise UsageError(f"alerts.rules_dir {rules_dir} is not a directory")
    for path in sorted(rules_dir.iterdir()):
        if path.suffix not in RULE_SUFFIXES or path.name.startswith(".") or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        managed, claimed = read_header(text)
        actual = None
        if managed:
            try:
                actual = content_hash(yamlio.load(text))
            except yaml.YAMLError:
                actual = "unparseable"
        out[path.name] = LiveFile(path.name, text, managed, claimed, actual)
    return out


def plan_rules_dir(desired: list[RenderedFile], live: dict[str, LiveFile], rules_dir: Path, *, prune: bool = False,
                   adopt: Collection[str] = ()) -> Plan:
    plan = Plan(target=f"rules-dir {rules_dir}")
    for f in desired:
        cur = live.get(f.name)
        text = f.text()
        if cur is None:
            plan.changes.append(Change("rule_file", f.name, Action.create, unified_diff("", text, f.name), text))
        elif not cur.managed:
            reason, refusal = claim("rule_file", f.name, adopt, f"rule file {f.name} exists")
            plan.changes.append(Change("rule_file", f.name, Action.update, unified_diff(cur.text, text, f.name), text,
                                       cur.text, reason=reason, refusal=refusal))
        elif cur.actual_hash != cur.claimed_hash:
            plan.changes.append(Change("rule_file", f.name, Action.drift, unified_diff(cur.text, text, f.name), text,
                                       cur.text, reason="edited by hand since sre wrote it: apply overwrites it"))
        elif cur.claimed_hash == f.hash:
            plan.changes.append(Change("rule_file", f.name, Action.unchanged, "", text, cur.text))
        else:
            plan.changes.append(Change("rule_file", f.name, Action.update, unified_diff(cur.text, text, f.name), text,
                                       cur.text))
    if prune:
        wanted = {f.name for f in desired}
        for name, cur in live.items():
            if cur.managed and name not in wanted:
                plan.changes.append(Change("rule_file", name, Action.delete, unified_diff(cur.text, "", name), None,
                                           cur.text))
    return plan


# ---------------------------------------------------------------- rules directory: apply


@contextlib.contextmanager
def _locked(rules_dir: Path) -> Iterator[None]:
    """One apply at a time per rules directory (the lock file is not a rule file: hidden, no .yaml)."""
    with open(rules_dir / LOCK_NAME, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"another apply holds {rules_dir / LOCK_NAME}; try again when it is done") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def check_with_promtool(files: list[RenderedFile]) -> None:
    """Refuse to write what promtool rejects (the same check as lint, on the exact text)."""
    with tempfile.TemporaryDirectory(prefix="sre-apply-") as tmp:
        paths = {}
        for f in files:
            p = Path(tmp) / f.name
            p.write_text(f.text())
            paths[p] = f.source
        rc, _, err = promtool.start_check(list(paths)).wait()
    if rc != 0:
        problems = [str(x) for x in promtool.check_findings(err, {p: f"alerts/{s}" for p, s in paths.items()})]
        raise CheckFailed("promtool rejects the rendered rules, nothing written: " + "; ".join(problems),
                          hint="run `sre alerts lint`")


def _explain_refusal(rules_dir: Path) -> str:
    """promtool's words on the files now in the directory (Prometheus logs the detail, not its reply)."""
    paths = [p for p in sorted(rules_dir.iterdir()) if p.suffix in RULE_SUFFIXES and not p.name.startswith(".")]
    if not paths:
        return ""
    rc, _, err = promtool.start_check(paths).wait()
    if rc == 0:
        return ""
    return "; ".join(str(f) for f in promtool.check_findings(err, {p: p.name for p in paths}))


class RulesDirTarget(Target):
    """Rule files in the directory a Prometheus reads. Apply checks the files with promtool and
    that Prometheus answers, then under a lock writes each change atomically, reloads once, and
    confirms the loaded groups; a refused reload puts the previous files back (CheckFailed)."""

    kind = "alerts"

    def __init__(self, files: list[RenderedFile], rules_dir: Path, prometheus: PrometheusClient | None, *,
                 check: bool = True, confirm_timeout: float = 10.0, prune: bool = False,
                 adopt: Collection[str] = ()) -> None:
        super().__init__(prune=prune, adopt=adopt)
        self.files, self.rules_dir, self.prometheus = files, rules_dir, prometheus
        self.check, self.confirm_timeout = check, confirm_timeout

    @property
    def name(self) -> str:
        return f"rules-dir {self.rules_dir}"

    def requests(self) -> int:
        return self.prometheus.requests if self.prometheus is not None else 0

    def list_live(self) -> dict[str, LiveFile]:
        return read_rules_dir(self.rules_dir)

    def normalise(self, kind: str, body: Any) -> Any:
        return yamlio.load(body) if isinstance(body, str) else body

    def plan(self, live: dict[str, LiveFile]) -> Plan:
        return plan_rules_dir(self.files, live, self.rules_dir, prune=self.prune, adopt=self.adopt)

    def apply_change(self, change: Change) -> None:
        path = self.rules_dir / change.name
        if change.action is Action.delete:
            path.unlink(missing_ok=True)
        else:
            write_atomic(path, str(change.desired))

    @contextlib.contextmanager
    def applying(self, plan: Plan, result: ApplyResult) -> Iterator[None]:
        prometheus = self.prometheus
        if prometheus is None:
            raise UsageError("endpoints.prometheus is not set: apply reloads Prometheus and confirms what it loaded",
                             hint="add endpoints: {prometheus: {url: http://prometheus:9090}} to sre.yaml")
        refused = {c.name for c in plan.refused()}
        files = [f for f in self.files if f.name not in refused]
        if self.check:
            check_with_promtool(files)
        prometheus.rule_groups()  # unreachable: say so before touching any file
        touched = [c for c in plan.changes if c.action is not Action.unchanged and not c.refused]
        with _locked(self.rules_dir):
            previous = {c.name: _read(self.rules_dir / c.name) for c in touched}
            try:
                yield
                if result.applied:
                    prometheus.reload()
            except (PrometheusError, UnreachableError, OSError) as exc:
                _restore(self.rules_dir, previous)
                if isinstance(exc, PrometheusError):
                    detail = _explain_refusal(self.rules_dir)
                    raise CheckFailed(f"{exc}; the previous rule files are back in place and Prometheus keeps "
                                      f"running the old rules"
                                      + (f" (promtool on {self.rules_dir}: {detail})" if detail else "")) from None
                raise
        result.notes["confirmed_groups"] = confirm_loaded(files, self.rules_dir, prometheus,
                                                          timeout=self.confirm_timeout)

    def close(self) -> None:
        if self.prometheus is not None:
            self.prometheus.close()


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


def _restore(rules_dir: Path, previous: dict[str, str | None]) -> None:
    for name, text in previous.items():
        path = rules_dir / name
        if text is None:
            path.unlink(missing_ok=True)
        else:
            write_atomic(path, text)


def confirm_loaded(desired: list[RenderedFile], rules_dir: Path, prometheus: PrometheusClient, *,
                   timeout: float = 10.0) -> int:
    """Wait until /api/v1/rules shows exactly the desired groups of our files; their count."""
    want: dict[tuple[str, str], str] = {}
    for f in desired:
        for g in f.data["groups"]:
            want[(f.name, str(g.get("name")))] = desired_group_hash(g)
    names = {f.name for f in desired}
    deadline = time.monotonic() + timeout
    while True:
        got: dict[tuple[str, str], str] = {}
        for g in prometheus.rule_groups():
            fname = Path(str(g.get("file", ""))).name
            if fname in names:
                got[(fname, str(g.get("name")))] = loaded_group_hash(g)
        if got == want:
            return len(want)
        if time.monotonic() >= deadline:
            missing = sorted(f"{f}:{g}" for f, g in want.keys() - got.keys())
            differ = sorted(f"{f}:{g}" for (f, g), h in want.items() if got.get((f, g)) not in (None, h))
            extra = sorted(f"{f}:{g}" for f, g in got.keys() - want.keys())
            parts = [f"{label}: {', '.join(v)}" for label, v in
                     (("not loaded", missing), ("different", differ), ("unexpected", extra)) if v]
            raise CheckFailed(f"Prometheus did not load the desired rule groups within {timeout:.0f}s ("
                              + "; ".join(parts) + ")")
        time.sleep(0.2)


# ---------------------------------------------------------------- Kubernetes: PrometheusRule


def _selector() -> str:
    return f"{MANAGED_LABEL}={MANAGED_VALUE}"


def owned_groups(live: dict[str, Any], manager: str = FIELD_MANAGER) -> tuple[set[str] | None, dict[str, str]]:
    """(group names `manager` applied, or None when managedFields does not say; other group -> its manager)."""
    owners: dict[str, str] = {}
    applied = False
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        who = str(entry.get("manager"))
        applied = applied or (who == manager and entry.get("operation") == "Apply")
        groups = ((entry.get("fieldsV1") or {}).get("f:spec") or {}).get("f:groups") or {}
        for element in groups:
            with contextlib.suppress(ValueError, AttributeError):
                name = str(json.loads(element[2:]).get("name")) if element.startswith("k:") else None
                if name is not None and (who == manager or name not in owners):
                    owners[name] = who
    if not applied:
        return None, {}
    return ({name for name, who in owners.items() if who == manager},
            {name: who for name, who in owners.items() if who != manager})


def _comparable_spec(spec: dict[str, Any], groups: set[str] | None = None) -> dict[str, Any]:
    """The spec with only `groups` (all when None), ordered by name: what sre's apply decides."""
    kept = [g for g in spec.get("groups") or [] if groups is None or g.get("name") in groups]
    return {**spec, "groups": sorted(kept, key=lambda g: str(g.get("name")))}


@dataclass
class LiveRules:
    owned: dict[str, dict[str, Any]]  # name -> object carrying sre's label
    unowned: dict[str, dict[str, Any]]  # name -> an object of a desired name without it


def list_prometheusrules(api: ApiClient, namespace: str, names: Collection[str]) -> tuple[LiveRules, int]:
    """The labelled objects (one list request), and any unlabelled object holding a desired name
    that the list did not return (one GET each: none when nothing is new). Also the requests made."""
    from kubernetes.client import CustomObjectsApi


    crd = CustomObjectsApi(api)
    try:
        with errors("list PrometheusRules", api):
            listing: Any = crd.list_namespaced_custom_object(CRD_GROUP, CRD_VERSION, namespace, CRD_PLURAL,
                                                             label_selector=_selector())
    except KubeApiError as exc:
        if exc.not_served:
            raise UsageError(f"the Kubernetes API at {describe(api)} does not serve {CRD_PLURAL}.{CRD_GROUP}/"
                             f"{CRD_VERSION}: the Prometheus Operator's CRDs are not installed",
                             hint="install the Prometheus Operator (or its CRDs), or use --target rules-dir") from None
        raise
    requests = 1
    owned = {item["metadata"]["name"]: item for item in listing.get("items", [])
             if (item.get("metadata", {}).get("labels") or {}).get(MANAGED_LABEL) == MANAGED_VALUE}
    unowned: dict[str, dict[str, Any]] = {}
    for name in sorted(set(names) - set(owned)):
        requests += 1
        try:
            with errors(f"get PrometheusRule {namespace}/{name}", api):
                found: Any = crd.get_namespaced_custom_object(CRD_GROUP, CRD_VERSION, namespace, CRD_PLURAL, name)
            unowned[name] = found
        except KubeApiError as exc:
            if exc.status != 404:
                raise
    return LiveRules(owned, unowned), requests


def plan_kubernetes(objects: list[dict[str, Any]], live: LiveRules, target: str, *, prune: bool = False,
                    adopt: Collection[str] = ()) -> Plan:
    plan = Plan(target=target)
    for obj in objects:
        name = obj["metadata"]["name"]
        want = obj["metadata"]["annotations"][HASH_ANNOTATION]
        cur = live.owned.get(name)
        if cur is None and name in live.unowned:
            other = live.unowned[name]
            by = ((other.get("metadata") or {}).get("labels") or {}).get(MANAGED_LABEL)
            reason, refusal = claim("prometheusrule", name, adopt,
                                    f"PrometheusRule {name} exists" + (f" (managed by {by})" if by else ""))
            plan.changes.append(Change("prometheusrule", name, Action.update,
                                       unified_diff(other.get("spec") or {}, obj["spec"], name), obj, other,
                                       reason=reason, refusal=refusal))
            continue
        if cur is None:
            plan.changes.append(Change("prometheusrule", name, Action.create, unified_diff({}, obj["spec"], name), obj))
            continue
        claimed = (cur["metadata"].get("annotations") or {}).get(HASH_ANNOTATION)
        mine, foreign = owned_groups(cur)
        live_spec = _comparable_spec(cur.get("spec") or {}, mine)
        want_spec = _comparable_spec(obj["spec"])
        note = ("; ".join(f"group {g} applied by field manager {who}" for g, who in sorted(foreign.items()))
                + ": kept, not compared") if foreign else ""
        diff = unified_diff(live_spec, want_spec, name)
        if live_spec == want_spec and claimed == want and _labels_match(cur, obj):
            plan.changes.append(Change("prometheusrule", name, Action.unchanged, "", obj, cur, reason=note))
        elif live_spec != want_spec and claimed == want:
            plan.changes.append(Change("prometheusrule", name, Action.drift, diff, obj, cur,
                                       reason="; ".join(filter(None, [
                                           "edited since sre applied it: apply overwrites it", note]))))
        else:
            plan.changes.append(Change("prometheusrule", name, Action.update, diff, obj, cur, reason=note))
    if prune:
        wanted = {o["metadata"]["name"] for o in objects}
        for name, cur in sorted(live.owned.items()):
            if name not in wanted:
                plan.changes.append(Change("prometheusrule", name, Action.delete, unified_diff(cur.get("spec"), {}, name),
                                           None, cur))
    return plan


def _labels_match(live: dict[str, Any], desired: dict[str, Any]) -> bool:
    have = live["metadata"].get("labels") or {}
    return all(have.get(k) == v for k, v in desired["metadata"]["labels"].items())


class PrometheusRuleTarget(Target):
    """PrometheusRule objects in one namespace of one cluster, by server-side apply."""

    kind = "alerts"

    def __init__(self, objects: list[dict[str, Any]], api: ApiClient, namespace: str, *, where: str | None = None,
                 prune: bool = False, adopt: Collection[str] = ()) -> None:

        super().__init__(prune=prune, adopt=adopt)
        self.objects, self.api, self.namespace = objects, api, namespace
        self._name = f"kubernetes {where or describe(api)} namespace {namespace}"
        self._requests = 0

    @property
    def name(self) -> str:
        return self._name

    def requests(self) -> int:
        return self._requests

    def list_live(self) -> LiveRules:
        live, made = list_prometheusrules(self.api, self.namespace, [o["metadata"]["name"] for o in self.objects])
        self._requests += made
        return live

    def normalise(self, kind: str, body: Any) -> Any:
        return _comparable_spec((body or {}).get("spec") or {})

    def plan(self, live: LiveRules) -> Plan:
        return plan_kubernetes(self.objects, live, self.name, prune=self.prune, adopt=self.adopt)

    def apply_change(self, change: Change) -> None:
        from kubernetes.client import CustomObjectsApi


        crd = CustomObjectsApi(self.api)
        verb = "delete" if change.action is Action.delete else "apply"
        self._requests += 1
        try:
            with errors(f"{verb} PrometheusRule {self.namespace}/{change.name}", self.api):
                if change.action is Action.delete:
                    crd.delete_namespaced_custom_object(CRD_GROUP, CRD_VERSION, self.namespace, CRD_PLURAL,
                                                        change.name)
                    return
                # Raw: the client deserializes only a 200, and server-side apply creates with 201. Forced:
                # sre owns what it applies (an unowned object was refused in the plan unless adopted).
                raw: Any = crd.patch_namespaced_custom_object(
                    CRD_GROUP, CRD_VERSION, self.namespace, CRD_PLURAL, change.name, change.desired,
                    field_manager=FIELD_MANAGER, force=True, _content_type=APPLY_PATCH, _preload_content=False)
                stored = json.loads(raw.data or b"{}")
        except (KubeApiError, KubeForbidden) as exc:
            raise ChangeFailed(_explain(exc, self.namespace)) from None
        pruned = dropped_fields(change.desired["spec"], (stored or {}).get("spec") or {}, "spec")
        if pruned:
            raise ChangeFailed(
                f"the API server dropped field(s) its PrometheusRule schema does not know: {', '.join(pruned[:5])}; "
                "they would show as drift on every plan (is the Operator's CRD older than these fields?)")


def _explain(exc: Exception, namespace: str) -> str:
    details = getattr(exc, "details", {}) or {}
    if getattr(exc, "status", None) == 404 and details.get("kind") == "namespaces":
        return (f"namespace {namespace} does not exist: create it, or set alerts.prometheusrule_namespace "
                f"({exc})")
    return str(exc)


def dropped_fields(sent: Any, stored: Any, path: str) -> list[str]:
    """Paths present in what was sent and missing from what the server stored (pruned by its schema)."""
    if isinstance(sent, dict) and isinstance(stored, dict):
        out: list[str] = []
        for key, value in sent.items():
            if key not in stored:
                out.append(f"{path}.{key}")
            else:
                out += dropped_fields(value, stored[key], f"{path}.{key}")
        return out
    if isinstance(sent, list) and isinstance(stored, list):
        if sent and all(isinstance(x, dict) and "name" in x for x in sent):  # a list-map: match items by name
            by_name = {x.get("name"): x for x in stored if isinstance(x, dict)}
            return [p for x in sent for p in dropped_fields(x, by_name.get(x["name"], {}),
                                                            f"{path}[name={x['name']}]")]
        return [p for i, (a, b) in enumerate(zip(sent, stored, strict=False))
                for p in dropped_fields(a, b, f"{path}[{i}]")]
    return []


# ---------------------------------------------------------------- the desired state, and `sre up`


def desired_files(alerts_dir: Path, runbook_base_url: str, *,
                  slo_severity: dict[str, str] | None = None, for_cap: float | None = None) -> list[RenderedFile]:
    """The rendered rule files of the tree; CheckFailed if the tree does not even load cleanly.
    `for_cap`: see `render_files` (sandboxes and tests only)."""

    tree = load_tree(alerts_dir, slo_severity=slo_severity)
    if tree.findings:
        raise CheckFailed(f"{len(tree.findings)} problem(s) in {alerts_dir}: "
                          + "; ".join(str(f) for f in tree.findings[:5]), hint="run `sre alerts lint`")
    return render_files(tree, runbook_base_url, for_cap=for_cap)


def targets(cfg: SreConfig, files: list[RenderedFile], *, where: str = "auto", prune: bool | None = None,
            adopt: Collection[str] = ()) -> list[Target]:
    """Where the rules go: `rules-dir` (alerts.rules_dir), `kubernetes` (PrometheusRule objects in
    every configured cluster), or `auto` (the rules directory when set, else Kubernetes)."""

    prune = cfg.alerts.prune if prune is None else prune
    if where == "auto":
        if cfg.alerts.rules_dir is not None:
            where = "rules-dir"
        elif cfg.kubernetes.host or cfg.kubernetes.kubeconfig or cfg.kubernetes.regions:
            where = "kubernetes"
        else:
            raise UsageError("no target: set alerts.rules_dir (a Prometheus rules directory) or kubernetes "
                             "(PrometheusRule objects) in sre.yaml", hint="or pass --target")
    if where == "rules-dir":
        if cfg.alerts.rules_dir is None:
            raise UsageError("--target rules-dir needs alerts.rules_dir in sre.yaml")
        prometheus = PrometheusClient.from_config(cfg) if cfg.endpoints.prometheus is not None else None
        return [RulesDirTarget(files, Path(cfg.alerts.rules_dir), prometheus, prune=prune, adopt=adopt)]
    ns = cfg.alerts.prometheusrule_namespace
    objects = prometheusrule_objects(files, namespace=ns, labels=cfg.alerts.prometheusrule_labels)
    out: list[Target] = []
    for region in regions(cfg):
        api = api_client(cfg, region)
        out.append(PrometheusRuleTarget(objects, api, ns, where=region, prune=prune, adopt=adopt))
    return out

