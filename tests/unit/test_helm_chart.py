"""The Helm chart, tested without helm: its plain files parse and document themselves, its config
is valid sre.yaml, its generated manifests are current and valid Kubernetes objects, and its RBAC
rules are exactly the Kubernetes calls the code makes."""

from __future__ import annotations

import ast
import inspect
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from sre.provision import manifests

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "sre"
K8S_VERSION = "1.29"
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")


def values() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return data


# ---------------------------------------------------------------- plain files


def test_chart_metadata_and_values_parse() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "sre" and chart["type"] == "application"
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"]) and chart["appVersion"]
    v = values()
    assert v["replicaCount"] >= 2
    assert v["podSecurityContext"]["runAsNonRoot"] is True
    assert v["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}}
    manifests.chart_config(CHART)  # values.config is a valid sre.yaml (raises ConfigError if not)


def test_values_reference_secrets_never_hold_them() -> None:
    cfg = values()["config"]
    assert cfg["state"] == {"url_secret": {"env": "SRE_STATE_URL"}, "dir": "/var/lib/sre"}
    assert set(cfg["webhook"]["token"]) == {"file"}
    text = (CHART / "values.yaml").read_text().lower()
    assert not re.search(r"(password|token|secret)\s*:\s*['\"]?[a-z0-9+/]{16,}", text)


def test_every_values_key_is_documented() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    for i, line in enumerate(lines):
        if not re.match(r"^\s*[A-Za-z_][\w.-]*:", line):
            continue
        above = lines[i - 1].strip() if i else ""
        if not above.startswith("#"):
            undocumented.append(f"line {i + 1}: {line.strip()}")
    assert not undocumented, "values.yaml keys without a comment above:\n" + "\n".join(undocumented)


def test_templates_reference_only_values_that_exist() -> None:
    v = values()
    missing = []
    for tpl in sorted((CHART / "templates").glob("*")):
        for ref in sorted(set(re.findall(r"\.Values\.([A-Za-z_][\w.]*)", tpl.read_text()))):
            node: Any = v
            for part in ref.split("."):
                if not isinstance(node, dict) or part not in node:
                    missing.append(f"{tpl.name}: .Values.{ref}")
                    break
                node = node[part]
    assert not missing, missing


# ---------------------------------------------------------------- generated manifests


def test_generated_files_are_current() -> None:
    found = manifests.drift(CHART, manifests.render(CHART))
    assert not found.stale, f"the chart's generated files are stale, run `sre deploy render`: {found.as_dict()}"


@cache
def prometheusrule_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((Path(__file__).parent / "prometheusrule.schema.json").read_text())
    return schema


def assert_metadata(obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    assert DNS_SUBDOMAIN.match(meta["name"]), meta["name"]
    assert "namespace" not in meta  # the template sets the release's
    for key, value in meta.get("labels", {}).items():
        assert isinstance(value, str) and LABEL_VALUE.match(value), (key, value)


@pytest.mark.parametrize("path", sorted(p for p in manifests.on_disk(CHART) if p.endswith(".yaml")), ids=lambda p: p.rsplit("/", 1)[-1])
def test_generated_manifest_validates(path: str) -> None:
    obj = yaml.safe_load((CHART / path).read_text())
    assert_metadata(obj)
    if obj["kind"] == "PrometheusRule":
        jsonschema.validate(obj, prometheusrule_schema())
    else:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        assert obj["kind"] == "ConfigMap" and obj["metadata"]["labels"]["grafana_dashboard"] == "1"
        for body in obj["data"].values():
            assert json.loads(body)["uid"]


def test_the_prometheusrule_schema_rejects_what_the_api_server_would() -> None:
    ok = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": {"name": "x"},
          "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up == 0", "for": "5m"}]}]}}
    jsonschema.validate(ok, prometheusrule_schema())
    for bad_rule in ({"alert": "A"}, {"alert": "A", "expr": "up", "for": "5 minutes"}, {"alert": "A", "expr": "up", "fro": "5m"}):
        bad = {**ok, "spec": {"groups": [{"name": "g", "rules": [bad_rule]}]}}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, prometheusrule_schema())


# ---------------------------------------------------------------- RBAC


def api_classes() -> list[type]:
    import kubernetes.client as kc

    return [getattr(kc, n) for n in dir(kc) if n.endswith("Api") and n[0].isupper() and n != "ApiClient"]


@cache
def endpoint(method: str) -> tuple[str, str] | None:
    """(HTTP method, path template) of a kubernetes client API method, read from the client itself."""
    for cls in api_classes():
        serialize = getattr(cls, f"_{method}_serialize", None)
        if serialize is None:
            continue
        src = inspect.getsource(serialize)
        http = re.search(r"method='(\w+)'", src)
        path = re.search(r"resource_path='([^']+)'", src)
        assert http and path, method
        return http.group(1), path.group(1)
    return None


def rule_of(http: str, path: str, args: dict[str, str]) -> tuple[str, str, str]:
    """(apiGroup, resource[/subresource], verb) that RBAC checks for a request."""
    for key, value in args.items():
        path = path.replace("{" + key + "}", value)
    parts = path.strip("/").split("/")
    if parts[0] == "api":  # /api/v1/namespaces/{ns}/pods/{name}
        group, rest = "", parts[2:]
    else:  # /apis/apps/v1/namespaces/{ns}/deployments/{name}/scale
        group, rest = parts[1], parts[3:]
    assert rest[0] == "namespaces", f"{path}: a cluster-wide call, which a namespaced Role cannot allow"
    rest = rest[2:]
    resource = rest[0] + (f"/{rest[2]}" if len(rest) > 2 else "")
    named = len(rest) > 1
    verb = {"GET": "get" if named else "list", "POST": "create", "PUT": "update", "PATCH": "patch",
            "DELETE": "delete" if named else "deletecollection"}[http]
    return group, resource, verb


CUSTOM_ARGS = ("group", "version", "namespace", "plural", "name")


def constants(tree: ast.Module) -> dict[str, str]:
    """Module-level `NAME = "text"` and `A, B = "x", "y"`."""
    out: dict[str, str] = {}
    for node in tree.body:
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            pairs = (zip(target.elts, node.value.elts, strict=False)
                     if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple) else [(target, node.value)])
            for name, value in pairs:
                if isinstance(name, ast.Name) and isinstance(value, ast.Constant) and isinstance(value.value, str):
                    out[name.id] = value.value
    return out


def string_of(node: ast.expr, consts: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return consts.get(node.id)
    return None


def custom_object_args(attr: ast.Attribute, parents: dict[ast.AST, ast.AST], consts: dict[str, str]) -> dict[str, str]:
    """group and plural of a CustomObjectsApi call, called directly or handed to a wrapper with its arguments."""
    call = parents.get(attr)
    if not isinstance(call, ast.Call):
        return {}
    if call.func is attr:
        positional = call.args
    else:
        idx = next((i for i, a in enumerate(call.args) if a is attr), None)
        positional = call.args[idx + 1:] if idx is not None else []
    found: dict[str, str] = {}
    for name, node in zip(CUSTOM_ARGS, positional, strict=False):
        if name in ("group", "plural") and (s := string_of(node, consts)) is not None:
            found[name] = s
    for kw in call.keywords:
        if kw.arg in ("group", "plural") and (s := string_of(kw.value, consts)) is not None:
            found[kw.arg] = s
    return found


def calls_in_code() -> dict[tuple[str, str, str], list[str]]:
    """Every Kubernetes API call in sre/ (the sandbox aside) -> where it is made."""
    method_re = re.compile(r"^(read|list|create|patch|replace|delete|delete_collection|get)_namespaced_\w+$"
                           r"|^\w+_custom_object\w*$")
    found: dict[tuple[str, str, str], list[str]] = {}
    for path in sorted((ROOT / "sre").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("sre/sandbox/"):
            continue
        text = path.read_text()
        assert "DynamicClient" not in text and ".call_api(" not in text, \
            f"{rel}: calls the Kubernetes API in a way this test cannot read; use the typed client"
        tree = ast.parse(text)
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        consts = constants(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            assert not re.match(r"^connect_\w+_namespaced_", node.attr), \
                f"{rel}:{node.lineno}: {node.attr} (exec, attach, port-forward) needs its RBAC mapped by hand here"
            if not method_re.match(node.attr):
                continue
            ep = endpoint(node.attr)
            if ep is None:
                continue  # a method of something else with a similar name
            args: dict[str, str] = {}
            if "{plural}" in ep[1]:
                args = custom_object_args(node, parents, consts)
                assert set(args) == {"group", "plural"}, \
                    f"{rel}:{node.lineno}: {node.attr} with a group/plural this test cannot read: use literals or module constants"
            found.setdefault(rule_of(*ep, args), []).append(f"{rel}:{node.lineno}")
    return found


def granted() -> set[tuple[str, str, str]]:
    rules = yaml.safe_load((CHART / "files" / "rbac" / "rules.yaml").read_text())
    out = set()
    for section in rules.values():
        for r in section:
            out |= {(g, res, v) for g in r["apiGroups"] for res in r["resources"] for v in r["verbs"]}
    return out


def test_the_rbac_scanner_reads_the_client_as_rbac_does() -> None:
    def rule_for(method: str, args: dict[str, str] | None = None) -> tuple[str, str, str]:
        ep = endpoint(method)
        assert ep is not None, method
        return rule_of(*ep, args or {})

    assert rule_for("patch_namespaced_deployment_scale") == ("apps", "deployments/scale", "patch")
    assert rule_for("replace_namespaced_deployment_scale") == ("apps", "deployments/scale", "update")
    assert rule_for("list_namespaced_pod") == ("", "pods", "list")
    assert rule_for("delete_namespaced_pod") == ("", "pods", "delete")
    assert rule_for("delete_collection_namespaced_pod") == ("", "pods", "deletecollection")
    assert rule_for("get_namespaced_custom_object", {"group": "monitoring.coreos.com", "plural": "prometheusrules"}) \
        == ("monitoring.coreos.com", "prometheusrules", "get")


def test_rbac_rules_are_exactly_the_calls_the_code_makes() -> None:
    calls = calls_in_code()
    have = granted()
    lacking = {c: calls[c] for c in calls if c not in have}
    unused = have - set(calls)
    assert not lacking, f"files/rbac/rules.yaml lacks rules the code needs: {lacking}"
    assert not unused, f"files/rbac/rules.yaml grants what no code uses: {sorted(unused)}"


def test_the_roles_the_chart_renders_validate() -> None:
    rules = yaml.safe_load((CHART / "files" / "rbac" / "rules.yaml").read_text())
    for section in rules.values():
        role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "sre", "namespace": "messaging"}, "rules": section}
        kubernetes_validate.validate(role, K8S_VERSION, strict=True)


def test_the_chart_grants_what_the_service_needs_and_no_more() -> None:
    v = values()
    # The long-running service account writes no PrometheusRule; a separate identity may.
    assert v["rbac"]["prometheusRules"] is False
    apply = (CHART / "templates" / "alerts-apply.yaml").read_text()
    assert "$rules.prometheusrules" in apply and '"alerts", "apply"' in apply
    # Every secret volume is 0400 (256), and the API's roles have their tokens.
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    secret_volumes = re.findall(r"\n        - name: [^\n]+\n          secret:\n((?:            [^\n]+\n)+)", deployment)
    assert len(secret_volumes) == 2 and all("defaultMode: 256" in vol for vol in secret_volumes)
    assert set(v["config"]["api"]["tokens"]) == set(v["secrets"]["apiTokens"]) == {"read", "metrics"}
    assert "authorization:" in (CHART / "templates" / "servicemonitor.yaml").read_text()
    # Only the listed peers reach the port: the policy as the template writes it is a valid object.
    assert v["networkPolicy"]["enabled"] is True
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "sre"},
              "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "sre"}}, "policyTypes": ["Ingress"],
                       "ingress": [{"from": v["networkPolicy"]["from"], "ports": [{"port": "http", "protocol": "TCP"}]}]}}
    kubernetes_validate.validate(policy, K8S_VERSION, strict=True)
    names = [p.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name") for p in v["networkPolicy"]["from"]]
    assert names[:2] == ["alertmanager", "prometheus"]
