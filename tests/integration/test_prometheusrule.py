"""PrometheusRule apply and prune through the real `kubernetes` client, against the fake API server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sre.config import load_config
from sre.hashing import content_hash
from sre.provision.plan import ApplyResult, Plan
from sre.provision.prometheus import PrometheusRuleTarget, desired_files
from sre.provision.target import apply, plan
from sre.rules.render import HASH_ANNOTATION, MANAGED_LABEL, prometheusrule_objects
from sre.store import Store
from tests.cli import sre
from tests.fakes.kube import FakeKube
from tests.remediation_store import DIALECTS, state_store

ROOT = Path(__file__).parents[2]
NS = "monitoring"
GROUP, VERSION, PLURAL = "monitoring.coreos.com", "v1", "prometheusrules"
TOKEN = "fake-kube-token"


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with FakeKube(token=TOKEN, namespaces={NS}) as fake:
        yield fake


@pytest.fixture
def config_path(kube: FakeKube, tmp_path: Path) -> Path:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    path = tmp_path / "sre.yaml"
    path.write_text(yaml.safe_dump({
        "state": {"dir": str(tmp_path / "state")},
        "kubernetes": {"host": kube.url, "token": {"file": str(token_file)}},
        "alerts": {"prometheusrule_namespace": NS, "prometheusrule_labels": {"release": "kube-prometheus-stack"},
                   "source_dir": str(ROOT / "alerts")},
    }))
    return path


def plan_kubernetes(objs: list[dict], api: Any, namespace: str, *, prune: bool = False) -> Plan:
    return plan(PrometheusRuleTarget(objs, api, namespace, prune=prune))


def apply_kubernetes(p: Plan, api: Any, namespace: str) -> ApplyResult:
    return apply(PrometheusRuleTarget([], api, namespace), p)


def _rule(name: str, labels: dict[str, str]) -> dict[str, object]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "PrometheusRule",
            "metadata": {"name": name, "namespace": NS, "labels": labels},
            "spec": {"groups": [{"name": name, "rules": [{"record": "x:y", "expr": "vector(1)"}]}]}}


def test_apply_creates_by_server_side_apply_and_prunes_only_owned(kube: FakeKube, config_path: Path) -> None:
    kube.put(_rule("hand-made", {"team": "db"}))
    kube.put(_rule("helm-made", {MANAGED_LABEL: "Helm"}))
    kube.put(_rule("sre-retired", {MANAGED_LABEL: "sre", "release": "kube-prometheus-stack"}))
    kube.clear_requests()

    proc = sre("alerts", "apply", "--target", "kubernetes", "--prune", "--config", str(config_path),
               "--output", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (result,) = json.loads(proc.stdout)["results"]

    files = desired_files(ROOT / "alerts", load_config(config_path).alerts.runbook_base_url)
    want = prometheusrule_objects(files, namespace=NS, labels={"release": "kube-prometheus-stack"})
    assert sorted(c["name"] for c in result["applied"] if c["action"] == "create") == sorted(
        o["metadata"]["name"] for o in want)
    assert [c["name"] for c in result["applied"] if c["action"] == "delete"] == ["sre-retired"]
    assert result["refused"] == result["failed"] == []

    patches = kube.requests_to("PATCH", "/prometheusrules/")
    assert len(patches) == len(want)
    for req in patches:
        assert req.content_type == "application/apply-patch+yaml"
        assert req.param("fieldManager") == "sre" and req.param("force") == "true"
        assert req.headers["authorization"] == f"Bearer {TOKEN}"
    lists = kube.requests_to("GET", f"/namespaces/{NS}/prometheusrules$")
    assert [r.param("labelSelector") for r in lists] == [f"{MANAGED_LABEL}=sre"]
    assert [r.path.rsplit("/", 1)[1] for r in kube.requests_to("DELETE")] == ["sre-retired"]

    for obj in want:
        live = kube.get(GROUP, VERSION, NS, PLURAL, obj["metadata"]["name"])
        assert live is not None
        assert live["spec"] == obj["spec"]
        assert live["metadata"]["labels"] == {"release": "kube-prometheus-stack", MANAGED_LABEL: "sre"}
        assert live["metadata"]["annotations"][HASH_ANNOTATION] == obj["metadata"]["annotations"][HASH_ANNOTATION]
        assert [m["manager"] for m in live["metadata"]["managedFields"]] == ["sre"]
    assert kube.get(GROUP, VERSION, NS, PLURAL, "hand-made") is not None
    assert kube.get(GROUP, VERSION, NS, PLURAL, "helm-made") is not None
    assert kube.get(GROUP, VERSION, NS, PLURAL, "sre-retired") is None


def test_a_second_plan_is_one_list_call_and_sees_hand_edits(kube: FakeKube, config_path: Path) -> None:
    from sre.adapters.kubernetes import api_client

    cfg = load_config(config_path)
    files = desired_files(ROOT / "alerts", cfg.alerts.runbook_base_url)
    objs = prometheusrule_objects(files, namespace=NS, labels=cfg.alerts.prometheusrule_labels)
    api = api_client(cfg)
    apply_kubernetes(plan_kubernetes(objs, api, NS), api, NS)

    kube.clear_requests()
    again = plan_kubernetes(objs, api, NS, prune=True)
    assert not again.has_changes and again.requests == 1
    assert len(kube.requests) == 1

    edited = kube.get(GROUP, VERSION, NS, PLURAL, "sre-api")
    assert edited is not None
    edited["spec"]["groups"][0]["rules"][0]["for"] = "1h"
    kube.objects[("monitoring.coreos.com", "v1", NS, PLURAL, "sre-api")] = edited
    drift = plan_kubernetes(objs, api, NS)
    assert [(c.name, c.action.value) for c in drift.changes if c.action.value != "unchanged"] == [("sre-api", "drift")]
    apply_kubernetes(drift, api, NS)
    restored = kube.get(GROUP, VERSION, NS, PLURAL, "sre-api")
    assert restored is not None and restored["spec"] == next(o for o in objs if o["metadata"]["name"] == "sre-api")["spec"]


def test_plan_exit_code_and_unreachable_api(kube: FakeKube, config_path: Path, tmp_path: Path) -> None:
    proc = sre("alerts", "plan", "--target", "kubernetes", "--config", str(config_path))
    assert proc.returncode == 1, proc.stderr
    assert "create" in proc.stdout

    bad = tmp_path / "bad.yaml"
    bad.write_text(config_path.read_text().replace(kube.url, "http://127.0.0.1:9"))
    proc = sre("alerts", "plan", "--target", "kubernetes", "--config", str(bad))
    assert proc.returncode == 2
    assert "unreachable" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1

    wrong_token = tmp_path / "wrong-token"
    wrong_token.write_text("nope\n")
    bad.write_text(config_path.read_text().replace(str(tmp_path / "token"), str(wrong_token)))
    proc = sre("alerts", "plan", "--target", "kubernetes", "--config", str(bad))
    assert proc.returncode == 2 and "401" in proc.stderr


def test_objects_are_split_under_the_size_limit() -> None:
    files = desired_files(ROOT / "alerts", "https://runbooks.example.com")
    slo = [f for f in files if f.name == "slos-api.yaml"]
    objs = prometheusrule_objects(slo, namespace=NS, labels={}, max_bytes=8 * 1024)
    assert [o["metadata"]["name"] for o in objs] == ["sre-slos-api", "sre-slos-api-2"]
    assert [g["name"] for o in objs for g in o["spec"]["groups"]] == [g["name"] for g in slo[0].data["groups"]]
    assert all(len(json.dumps(o)) < 8 * 1024 for o in objs)


def test_a_group_added_by_another_field_manager_is_kept_and_never_drifts(kube: FakeKube, config_path: Path) -> None:
    from kubernetes.client import CustomObjectsApi

    from sre.adapters.kubernetes import APPLY_PATCH, api_client

    cfg = load_config(config_path)
    files = desired_files(ROOT / "alerts", cfg.alerts.runbook_base_url)
    objs = prometheusrule_objects(files, namespace=NS, labels=cfg.alerts.prometheusrule_labels)
    api = api_client(cfg)
    apply_kubernetes(plan_kubernetes(objs, api, NS), api, NS)
    ours = next(o for o in objs if o["metadata"]["name"] == "sre-api")
    team_group = {"name": "team-extra", "rules": [{"record": "team:up", "expr": "up"}]}
    # The team's own controller server-side applies one more group to the same object.
    CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, "sre-api",
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": "PrometheusRule", "metadata": {"name": "sre-api"},
         "spec": {"groups": [team_group]}},
        field_manager="team-controller", _content_type=APPLY_PATCH)
    live = kube.get(GROUP, VERSION, NS, PLURAL, "sre-api")
    assert live is not None and [g["name"] for g in live["spec"]["groups"]][-1] == "team-extra"

    p = plan_kubernetes(objs, api, NS)
    change = next(c for c in p.changes if c.name == "sre-api")
    assert change.action.value == "unchanged", change.diff
    assert "team-controller" in change.reason and "team-extra" in change.reason
    assert not p.has_changes

    apply_kubernetes(plan_kubernetes(objs, api, NS), api, NS)
    # sre's apply (forced) leaves the team's group alone, and sre's own groups stay exactly as in code.
    live = kube.get(GROUP, VERSION, NS, PLURAL, "sre-api")
    assert live is not None
    assert [g for g in live["spec"]["groups"] if g["name"] != "team-extra"] == ours["spec"]["groups"]
    assert next(g for g in live["spec"]["groups"] if g["name"] == "team-extra") == team_group
    assert not plan_kubernetes(objs, api, NS).has_changes

    # A group sre drops from code goes; the team's group stays.
    fewer = json.loads(json.dumps(objs))
    mine = next(o for o in fewer if o["metadata"]["name"] == "sre-api")
    dropped = mine["spec"]["groups"].pop()
    mine["metadata"]["annotations"][HASH_ANNOTATION] = content_hash(mine["spec"])
    p = plan_kubernetes(fewer, api, NS)
    assert next(c for c in p.changes if c.name == "sre-api").action.value == "update"
    apply_kubernetes(p, api, NS)
    live = kube.get(GROUP, VERSION, NS, PLURAL, "sre-api")
    assert live is not None
    names = [g["name"] for g in live["spec"]["groups"]]
    assert dropped["name"] not in names and "team-extra" in names
    final = plan_kubernetes(fewer, api, NS)
    assert not final.has_changes, [(c.name, c.action, c.reason, c.diff) for c in final.changes if c.action.value != "unchanged"]


def test_an_unowned_object_of_the_same_name_is_refused_unless_adopted(kube: FakeKube, config_path: Path) -> None:
    kube.put(_rule("sre-api", {"team": "api"}))  # made by hand, before sre, under the name sre renders
    proc = sre("alerts", "plan", "--target", "kubernetes", "--config", str(config_path), "--output", "json")
    assert proc.returncode == 1, proc.stderr
    change = next(c for c in json.loads(proc.stdout)["changes"] if c["name"] == "sre-api")
    assert change["action"] == "update" and "not owned by sre" in change["refused"]

    proc = sre("alerts", "apply", "--target", "kubernetes", "--config", str(config_path), "--output", "json")
    assert proc.returncode == 1, proc.stderr
    (result,) = json.loads(proc.stdout)["results"]
    assert [(c["name"], c["outcome"]) for c in result["refused"]] == [("sre-api", "refused")]
    assert result["failed"] == [] and len(result["applied"]) > 1, "the other objects applied"
    untouched = kube.get(GROUP, VERSION, NS, PLURAL, "sre-api")
    assert untouched is not None and untouched["metadata"]["labels"] == {"team": "api"}
    assert not [r for r in kube.requests_to("PATCH", "/prometheusrules/sre-api")]

    proc = sre("alerts", "apply", "--target", "kubernetes", "--adopt", "sre-api", "--config", str(config_path),
               "--output", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    adopted = kube.get(GROUP, VERSION, NS, PLURAL, "sre-api")
    assert adopted is not None and adopted["metadata"]["labels"][MANAGED_LABEL] == "sre"
    assert sre("alerts", "plan", "--target", "kubernetes", "--config", str(config_path)).returncode == 0


@pytest.fixture(params=DIALECTS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with state_store(request, request.param, tmp_path) as s:
        yield s


def test_the_alerts_reconcile_job_reports_drift_then_applies(kube: FakeKube, config_path: Path, store: Store) -> None:
    from prometheus_client import REGISTRY

    from sre.jobs import run_job
    from sre.results import JobContext
    from sre.store.runs import CheckRow, Run

    def drift() -> float | None:
        return REGISTRY.get_sample_value("sre_provision_drift", {"kind": "alerts"})

    cfg = load_config(config_path)
    pending = run_job("alerts.reconcile", JobContext(cfg=cfg, store=store))
    assert pending.status == "warn" and pending.summary["applied"] is False
    assert not kube.requests_to("PATCH"), "apply is off by default: nothing written"
    assert drift() == 1

    cfg.alerts.apply = True
    applied = run_job("alerts.reconcile", JobContext(cfg=cfg, store=store))
    assert applied.status == "ok", applied.summary
    assert kube.get(GROUP, VERSION, NS, PLURAL, "sre-api") is not None
    again = run_job("alerts.reconcile", JobContext(cfg=cfg, store=store))
    assert again.status == "ok" and again.summary["requests"] == 1 and drift() == 0
    with store.session() as s:
        runs = [(r.kind, r.status) for r in s.query(Run).order_by(Run.id)]
        checks = [(c.check, c.status) for c in s.query(CheckRow).order_by(CheckRow.id)]
    assert runs == [("alerts.reconcile", "warn"), ("alerts.reconcile", "ok"), ("alerts.reconcile", "ok")]
    assert checks == [("provision.alerts", "warn"), ("provision.alerts", "ok"), ("provision.alerts", "ok")]
