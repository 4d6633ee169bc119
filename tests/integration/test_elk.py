"""`sre elk` against a fake Elasticsearch on loopback, through the real `elasticsearch` client.

Outcomes are asserted on what the fake received and holds: the requests, their order, the objects.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sre.config import SreConfig, load_config
from sre.errors import UnreachableError
from sre.provision.elasticsearch import (
    COMPONENT,
    ILM,
    INDEX,
    STREAM,
    Action,
    ElasticsearchTarget,
    adapter_for,
    default_dir,
    fetch_live,
    load_desired,
    plan,
    plan_live,
    verify,
)
from sre.provision.plan import ApplyResult, Plan
from sre.provision.target import apply as apply_plan
from tests.cli import sre
from tests.fakes.elasticsearch import FakeElasticsearch

API_KEY = "c3JlLXRlc3Q6bm90LWEtcmVhbC1rZXk="


@pytest.fixture
def fake() -> Iterator[FakeElasticsearch]:
    with FakeElasticsearch.start(api_keys=[API_KEY], users={"sre": "s3cret-pass"}) as f:
        yield f


def write_config(tmp_path: Path, fake: FakeElasticsearch, *, key: str = API_KEY, elk: dict[str, Any] | None = None,
                 endpoint: dict[str, Any] | None = None) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    secret = tmp_path / "es-api-key"
    secret.write_text(key + "\n")
    ep = endpoint or {"url": fake.url, "api_key": {"file": str(secret)}}
    path = tmp_path / "sre.yaml"
    path.write_text(yaml.safe_dump({"state": {"dir": str(tmp_path / "state")},
                                    "endpoints": {"elasticsearch": ep}, "elk": elk or {}}))
    return path


def config(tmp_path: Path, fake: FakeElasticsearch, **kw: Any) -> SreConfig:
    return load_config(write_config(tmp_path, fake, **kw))


def tree_copy(tmp_path: Path) -> Path:
    target = tmp_path / "elk"
    shutil.copytree(default_dir(), target)
    return target


def edit(path: Path, fn: Any) -> None:
    data = yaml.safe_load(path.read_text())
    fn(data)
    path.write_text(yaml.safe_dump(data))


def apply(p: Plan, adapter: Any) -> ApplyResult:
    return apply_plan(ElasticsearchTarget(adapter, load_desired(), verify=False), p)


def apply_tree(cfg: SreConfig, tree: Path | None = None, *, prune: bool = False,
               adopt: tuple[str, ...] = ()) -> tuple[Plan, ApplyResult]:
    desired = load_desired(tree or cfg.elk.dir, cfg.elk.data_streams)
    adapter = adapter_for(cfg)
    try:
        p = plan_live(adapter, desired, prune=prune, adopt=adopt)
        return p, apply_plan(ElasticsearchTarget(adapter, desired), p)
    finally:
        adapter.close()


def names(results: list[Any]) -> list[tuple[str, str]]:
    return [(r.change.kind, r.change.name) for r in results]


def test_apply_on_an_empty_cluster_creates_everything_in_dependency_order(tmp_path: Path,
                                                                          fake: FakeElasticsearch) -> None:
    cfg = config(tmp_path, fake, elk={"data_streams": ["logs-sre-production", "logs-messaging.api-production"]})
    p, report = apply_tree(cfg)
    assert {c.action for c in p.changes} == {Action.create}
    assert report.ok and len(report.verified) == 4, [r.message for r in report.verified]

    writes = [r for r in fake.requests if r.method == "PUT"]
    order = {"_component_template": 0, "_ilm": 1, "_index_template": 2, "_data_stream": 3}
    ranks = [order[r.path.split("/")[1]] for r in writes]
    assert ranks == sorted(ranks) and set(ranks) == {0, 1, 2, 3}
    assert all(r.status == 200 for r in writes)

    state = fake.state
    assert state.policies["messaging-audit-logs"].policy["phases"]["delete"]["min_age"] == "400d"
    assert state.component_templates["sre-service@mappings"].body["_meta"]["managed_by"] == "sre"
    assert state.index_templates["logs-sre"].body["_meta"]["managed_by"] == "sre"
    assert state.ds_policy("logs-sre-production") == "sre-service-logs"
    assert state.ds_policy("logs-messaging.api-production") == "messaging-api-logs"
    sims = fake.calls("POST", "/_index_template/_simulate_index/")
    assert sorted(r.path.rsplit("/", 1)[1] for r in sims) == [
        "logs-messaging.api-verify", "logs-messaging.audit-verify", "logs-messaging.websocket-verify",
        "logs-sre-verify"]


@pytest.mark.slow  # runs the sre command as a person or CI would
def test_second_plan_is_all_unchanged_in_one_list_request_per_kind(tmp_path: Path, fake: FakeElasticsearch) -> None:
    cfg = config(tmp_path, fake, elk={"data_streams": ["logs-sre-production"]})
    apply_tree(cfg)
    fake.reset_requests()

    out = sre("elk", "plan", "--config", str(write_config(tmp_path, fake, elk={"data_streams": [
        "logs-sre-production"]})), "--output", "json")
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads(out.stdout)
    assert data["counts"]["unchanged"] == 14 and sum(data["counts"].values()) == 14
    assert [(r.method, r.path) for r in fake.requests] == [
        ("GET", "/_component_template"), ("GET", "/_ilm/policy"), ("GET", "/_index_template"),
        ("GET", "/_data_stream/logs-sre-production*")]
    assert data["requests"] == 4

    # The answers carried the server's own fields and string settings, and still no diff.
    adapter = adapter_for(cfg)
    try:
        policies = adapter.list_ilm_policies()
        templates = adapter.list_index_templates()
    finally:
        adapter.close()
    entry = policies["sre-service-logs"]
    assert {"version", "modified_date", "in_use_by"} <= set(entry)
    assert entry["in_use_by"]["data_streams"] == ["logs-sre-production"]
    assert entry["policy"]["phases"]["delete"]["actions"]["delete"] == {"delete_searchable_snapshot": True}
    api = templates["logs-messaging.api"]
    assert api["template"]["settings"]["index"]["number_of_shards"] == "2" and "modified_date_millis" in api


def test_a_changed_policy_updates_only_that_policy(tmp_path: Path, fake: FakeElasticsearch) -> None:
    cfg = config(tmp_path, fake)
    apply_tree(cfg)
    tree = tree_copy(tmp_path)
    edit(tree / "ilm/messaging-api-logs.yaml", lambda d: d["policy"]["phases"]["delete"].update(min_age="45d"))

    desired = load_desired(tree)
    adapter = adapter_for(cfg)
    try:
        p = plan_live(adapter, desired)
        changed = [c for c in p.changes if c.action is not Action.unchanged]
        assert [(c.kind, c.name, c.action) for c in changed] == [(ILM, "messaging-api-logs", Action.update)]
        assert '-        "min_age": "30d"' in changed[0].diff and '+        "min_age": "45d"' in changed[0].diff
        fake.reset_requests()
        apply(p, adapter)
    finally:
        adapter.close()
    assert [(r.method, r.path) for r in fake.requests] == [("PUT", "/_ilm/policy/messaging-api-logs")]
    assert fake.state.policies["messaging-api-logs"].version == 2
    assert fake.state.policies["messaging-api-logs"].policy["phases"]["delete"]["min_age"] == "45d"


def test_hand_edits_show_as_drift_and_apply_restores_them(tmp_path: Path, fake: FakeElasticsearch) -> None:
    cfg = config(tmp_path, fake)
    apply_tree(cfg)
    with fake.state.lock:
        fake.state.policies["sre-service-logs"].policy["phases"]["delete"]["min_age"] = "90d"
    p, _ = apply_tree(cfg)
    drift = [c for c in p.changes if c.action is Action.drift]
    assert [(c.kind, c.name) for c in drift] == [(ILM, "sre-service-logs")] and "by hand" in drift[0].reason
    assert fake.state.policies["sre-service-logs"].policy["phases"]["delete"]["min_age"] == "14d"


@pytest.mark.slow  # runs the sre command as a person or CI would
def test_prune_refuses_a_policy_in_use_and_names_its_indices(tmp_path: Path, fake: FakeElasticsearch) -> None:
    cfg = config(tmp_path, fake, elk={"data_streams": ["logs-messaging.websocket-production"]})
    apply_tree(cfg)
    fake.add_index("websocket-legacy-000001", policy="messaging-websocket-logs")
    fake.state.put_policy("hand-made", {"policy": {"phases": {"delete": {"min_age": "1d", "actions": {"delete": {}}}}}})

    tree = tree_copy(tmp_path)
    (tree / "ilm/messaging-websocket-logs.yaml").unlink()
    (tree / "index_templates/logs-messaging.websocket.yaml").unlink()
    (tree / "component_templates/messaging-app@mappings.yaml").unlink()
    for name in ("logs-messaging.api", "logs-messaging.audit"):
        edit(tree / f"index_templates/{name}.yaml", lambda d: d["composed_of"].remove("messaging-app@mappings"))
    (tree / "ilm/orphan.yaml").write_text(yaml.safe_dump(
        {"policy": {"phases": {"delete": {"min_age": "3d", "actions": {"delete": {}}}}}}))
    apply_tree(cfg, tree)  # creates the policy that the next tree drops
    (tree / "ilm/orphan.yaml").unlink()

    out = sre("elk", "apply", "--prune", "--dir", str(tree), "--config", str(write_config(tmp_path, fake)),
              "--output", "json")
    assert out.returncode == 1, out.stdout + out.stderr
    (result,) = json.loads(out.stdout)["results"]
    reasons = {(r["kind"], r["name"]): r["message"] for r in result["refused"]}
    assert "websocket-legacy-000001" in reasons[(ILM, "messaging-websocket-logs")]
    assert [(a["kind"], a["name"], a["action"]) for a in result["applied"]] == [(ILM, "orphan", "delete")]

    desired = load_desired(tree)
    adapter = adapter_for(cfg)
    try:
        p = plan(desired, fetch_live(adapter, desired, prune=True), prune=True)
    finally:
        adapter.close()
    deletes = {(c.kind, c.name): c for c in p.of(Action.delete)}
    policy = deletes[(ILM, "messaging-websocket-logs")]
    assert policy.refused and "indices [" in policy.refusal and "websocket-legacy-000001" in policy.refusal
    assert ".ds-logs-messaging.websocket-production-" in policy.refusal
    assert deletes[(INDEX, "logs-messaging.websocket")].refused
    assert "backs data streams [logs-messaging.websocket-production]" in deletes[(INDEX, "logs-messaging.websocket")].refusal
    assert "composed into index templates [logs-messaging.websocket]" in deletes[(COMPONENT, "messaging-app@mappings")].refusal

    state = fake.state
    assert "messaging-websocket-logs" in state.policies and "logs-messaging.websocket" in state.index_templates
    assert "orphan" not in state.policies, "an unused managed policy is pruned"
    assert {"hand-made", "logs"} <= set(state.policies), "objects sre does not manage are never pruned"
    assert not [r for r in fake.requests if r.method == "DELETE" and "websocket" in r.path]


@pytest.mark.slow  # runs the sre command as a person or CI would
def test_a_server_validation_error_is_reported_with_its_reason_exit_1(tmp_path: Path,
                                                                      fake: FakeElasticsearch) -> None:
    tree = tree_copy(tmp_path)
    edit(tree / "ilm/sre-service-logs.yaml",
         lambda d: d["policy"]["phases"]["warm"]["actions"].update(shrinkk={"number_of_shards": 1}))
    out = sre("elk", "apply", "--dir", str(tree), "--config", str(write_config(tmp_path, fake)))
    assert out.returncode == 1
    assert "ilm_policy sre-service-logs" in out.stderr
    assert "400 x_content_parse_exception" in out.stderr and "unknown field [shrinkk]" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert "sre-service-logs" not in fake.state.policies

    edit(tree / "ilm/sre-service-logs.yaml", lambda d: (d["policy"]["phases"]["warm"]["actions"].pop("shrinkk"),
                                                        d["policy"]["phases"].update(lukewarm={"actions": {}})))
    out = sre("elk", "apply", "--dir", str(tree), "--config", str(write_config(tmp_path, fake)))
    assert out.returncode == 1
    assert "illegal_argument_exception: Timeseries lifecycle does not support phase [lukewarm]" in out.stderr


@pytest.mark.slow  # runs the sre command as a person or CI would
def test_wrong_credentials_give_a_clear_error_exit_2(tmp_path: Path, fake: FakeElasticsearch) -> None:
    out = sre("elk", "plan", "--config", str(write_config(tmp_path, fake, key="d3Jvbmc6a2V5")))
    assert out.returncode == 2
    assert "refused the credentials (401 security_exception)" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout and "d3Jvbmc6a2V5" not in out.stderr
    assert fake.requests and all(r.status == 401 for r in fake.requests)


def test_basic_auth_and_an_unreachable_cluster(tmp_path: Path, fake: FakeElasticsearch) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret-pass")
    cfg = config(tmp_path, fake, endpoint={"url": fake.url, "username": "sre", "password": {"file": str(secret)}})
    _p, report = apply_tree(cfg)
    assert report.ok and fake.requests[0].headers["authorization"].startswith("Basic ")

    closed = config(tmp_path / "x", fake, endpoint={"url": "http://127.0.0.1:9", "timeout": "2s"})
    adapter = adapter_for(closed)
    with pytest.raises(UnreachableError, match="unreachable"):
        adapter.list_ilm_policies()


def test_tls_with_a_ca_file(tmp_path: Path) -> None:
    with FakeElasticsearch.start(api_keys=[API_KEY], tls_dir=tmp_path / "tls") as tls:
        key = tmp_path / "key"
        key.write_text(API_KEY)
        assert tls.url.startswith("https://") and tls.ca_file is not None
        good = config(tmp_path / "a", tls, endpoint={"url": tls.url, "api_key": {"file": str(key)},
                                                     "ca_file": str(tls.ca_file)})
        _p, report = apply_tree(good)
        assert report.ok and len(report.applied) == 13

        untrusted = config(tmp_path / "b", tls, endpoint={"url": tls.url, "api_key": {"file": str(key)}})
        adapter = adapter_for(untrusted)
        with pytest.raises(UnreachableError):
            adapter.list_index_templates()


def test_verify_fails_when_a_higher_priority_template_takes_the_data_stream(tmp_path: Path,
                                                                           fake: FakeElasticsearch) -> None:
    fake.state.put_component_template("hand-made", {"template": {"settings": {"number_of_replicas": 0}}})
    fake.state.put_index_template("hand-made", {"index_patterns": ["logs-sre-*"], "priority": 500,
                                                "data_stream": {}, "composed_of": ["hand-made"]})
    _, report = apply_tree(config(tmp_path, fake))
    failed = {r.target: r.message for r in report.verified if r.status == "fail"}
    assert list(failed) == ["logs-sre-verify"]
    assert "higher-priority" in failed["logs-sre-verify"] and "expected 'sre-service-logs'" in failed["logs-sre-verify"]


def test_only_missing_data_streams_are_created(tmp_path: Path, fake: FakeElasticsearch) -> None:
    cfg = config(tmp_path, fake, elk={"data_streams": ["logs-sre-production"]})
    apply_tree(cfg)
    cfg = config(tmp_path, fake, elk={"data_streams": ["logs-sre-production", "logs-sre-staging"]})
    _p, report = apply_tree(cfg)
    assert names(report.applied) == [(STREAM, "logs-sre-staging")]
    assert sorted(fake.state.data_streams) == ["logs-sre-production", "logs-sre-staging"]


def test_reconcile_job_plans_then_applies_and_records_runs(tmp_path: Path, fake: FakeElasticsearch) -> None:
    from sre.jobs import run_job
    from sre.results import JobContext
    from sre.store import open_store
    from sre.store.runs import CheckRow, Run

    cfg = config(tmp_path, fake)
    store = open_store(cfg)
    try:
        pending = run_job("elk.reconcile", JobContext(cfg=cfg, store=store))
        assert pending.status == "warn" and len(pending.summary["pending"]) == 13
        assert [(r.check, r.status) for r in pending.results] == [("provision.elk", "warn")]
        assert not fake.state.policies.keys() - {"logs"}, "apply is off by default: nothing written"

        cfg.elk.apply = True
        applied = run_job("elk.reconcile", JobContext(cfg=cfg, store=store))
        assert applied.status == "ok", applied.summary
        again = run_job("elk.reconcile", JobContext(cfg=cfg, store=store))
        assert again.status == "ok" and again.summary["counts"]["unchanged"] == 13
        with store.session() as s:
            runs = [(r.kind, r.status) for r in s.query(Run).order_by(Run.id)]
            checks = s.query(CheckRow).filter(CheckRow.check == "elk.simulate_index").count()
        assert runs == [("elk.reconcile", "warn"), ("elk.reconcile", "ok"), ("elk.reconcile", "ok")]
        assert checks == 4
    finally:
        store.dispose()


def test_the_fake_answers_like_an_8x_server_on_every_response(fake: FakeElasticsearch) -> None:
    import urllib.error
    import urllib.request

    def call(path: str, headers: dict[str, str]) -> tuple[int, dict[str, Any], Any]:
        req = urllib.request.Request(fake.url + path, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, dict(resp.headers), json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), json.loads(exc.read())

    auth = {"Authorization": f"ApiKey {API_KEY}"}
    status, headers, body = call("/_ilm/policy/nope", auth)
    assert status == 404 and headers["X-Elastic-Product"] == "Elasticsearch"
    assert body["error"]["type"] == "resource_not_found_exception" and body["status"] == 404
    status, headers, body = call("/_index_template", {})
    assert status == 401 and headers["X-Elastic-Product"] == "Elasticsearch" and "ApiKey" in headers["WWW-Authenticate"]
    status, _, body = call("/_index_template", {**auth, "Accept": "application/vnd.elasticsearch+json; compatible-with=9"})
    assert status == 400 and body["error"]["type"] == "media_type_header_exception"


@pytest.mark.slow  # runs the sre command as a person or CI would
def test_render_writes_the_bodies_in_apply_order(tmp_path: Path) -> None:
    out = sre("elk", "render", "--out", str(tmp_path / "bodies"))
    assert out.returncode == 0, out.stderr
    requests = json.loads(out.stdout)
    kinds = [r["path"].split("/")[0] for r in requests]
    assert kinds == sorted(kinds, key=["_component_template", "_ilm", "_index_template"].index)
    policy = json.loads((tmp_path / "bodies/ilm_policy/messaging-audit-logs.json").read_text())
    assert policy["policy"]["_meta"]["managed_by"] == "sre" and policy["policy"]["phases"]["delete"]["min_age"] == "400d"


def test_a_hand_made_template_at_the_same_priority_is_refused_by_the_server(tmp_path: Path,
                                                                           fake: FakeElasticsearch) -> None:
    fake.state.put_index_template("hand-made", {"index_patterns": ["logs-sre-*"], "priority": 210})
    _, report = apply_tree(config(tmp_path, fake))
    assert not report.ok
    (template,) = report.failed
    assert (template.change.kind, template.change.name) == ("index_template", "logs-sre")
    assert "400 illegal_argument_exception" in template.message and "same priority [210]" in template.message
    assert "logs-messaging.api" in fake.state.index_templates, "the rest applied"


def _docs_role() -> dict[str, Any]:
    """The role descriptor docs/elk.md tells operators to give sre's API key."""
    text = (Path(__file__).parents[2] / "docs" / "elk.md").read_text()
    block = text.split("POST /_security/api_key", 1)[1].split("```", 1)[0]
    descriptors: dict[str, Any] = json.loads(block)["role_descriptors"]
    (role,) = descriptors.values()
    return role


STREAMS = {"data_streams": ["logs-sre-production", "logs-messaging.api-production"]}


@pytest.mark.slow  # runs the sre command as a person or CI would
def test_the_privileges_in_docs_elk_md_are_enough_and_a_missing_one_fails_its_objects(tmp_path: Path) -> None:
    role = _docs_role()
    with FakeElasticsearch.start(api_keys=[API_KEY], roles={API_KEY: role}) as fake:
        _, report = apply_tree(config(tmp_path, fake, elk=STREAMS))
        assert report.ok, [(r.change.name, r.message) for r in report.changes]
        assert sorted(fake.state.data_streams) == sorted(STREAMS["data_streams"])
        assert all(r.status == "ok" for r in report.verified)
    fewer = {**role, "indices": [{**role["indices"][0], "privileges": ["view_index_metadata"]}]}
    with FakeElasticsearch.start(api_keys=[API_KEY], roles={API_KEY: fewer}) as fake:
        _, report = apply_tree(config(tmp_path / "fewer", fake, elk=STREAMS))
        assert sorted(names(report.failed)) == [("data_stream", n) for n in sorted(STREAMS["data_streams"])]
        assert all("403 security_exception" in r.message and "docs/elk.md" in r.message for r in report.failed)
        assert "logs-sre" in fake.state.index_templates, "templates applied: only the data streams failed"
    no_ilm = {**role, "cluster": ["manage_index_templates", "monitor"]}
    with FakeElasticsearch.start(api_keys=[API_KEY], roles={API_KEY: no_ilm}) as fake:
        out = sre("elk", "plan", "--config", str(write_config(tmp_path / "no-ilm", fake)))
        assert out.returncode == 2 and "403" in out.stderr and "manage_ilm" in out.stderr, out.stderr
        assert "Traceback" not in out.stderr


def test_an_unknown_mapping_parameter_fails_its_component_and_what_needs_it(tmp_path: Path,
                                                                          fake: FakeElasticsearch) -> None:
    tree = tree_copy(tmp_path)
    edit(tree / "component_templates" / "sre-service@mappings.yaml",
         lambda d: d["template"]["mappings"]["properties"]["sre"]["properties"]["run_id"].update(ignore_above=1024))
    _, report = apply_tree(config(tmp_path, fake, elk={"data_streams": ["logs-sre-production"]}), tree)
    assert names(report.failed) == [
        ("component_template", "sre-service@mappings"), ("index_template", "logs-sre"),
        ("data_stream", "logs-sre-production")]
    component, template, stream = (r.message for r in report.failed)
    assert "mapper_parsing_exception" in component and "unknown parameter [ignore_above] on mapper [run_id]" in component
    assert template == "not attempted: it needs component_template sre-service@mappings, which was failed"
    assert "index_template logs-sre" in stream
    assert "logs-messaging.api" in fake.state.index_templates and "logs-sre" not in fake.state.index_templates


def test_a_component_update_that_breaks_its_index_template_is_refused_alone(tmp_path: Path,
                                                                           fake: FakeElasticsearch) -> None:
    tree = tree_copy(tmp_path)
    cfg = config(tmp_path, fake, elk={"data_streams": ["logs-sre-production"]})
    apply_tree(cfg, tree)
    edit(tree / "component_templates" / "sre-service@mappings.yaml",
         lambda d: d["template"]["mappings"]["properties"].update({"@timestamp": {"type": "keyword"}}))
    edit(tree / "ilm" / "messaging-api-logs.yaml", lambda d: d["policy"]["phases"]["delete"].update(min_age="60d"))
    _, report = apply_tree(cfg, tree)
    (failed,) = report.failed
    assert (failed.change.kind, failed.change.name) == ("component_template", "sre-service@mappings")
    assert "results in invalid composable template [logs-sre] after templates are merged" in failed.message
    assert "[@timestamp] is of type [keyword]" in failed.message
    assert names(report.applied) == [("ilm_policy", "messaging-api-logs")]


def test_a_template_change_that_would_orphan_a_data_stream_is_refused(tmp_path: Path,
                                                                     fake: FakeElasticsearch) -> None:
    tree = tree_copy(tmp_path)
    cfg = config(tmp_path, fake, elk={"data_streams": ["logs-sre-production"]})
    apply_tree(cfg, tree)
    edit(tree / "index_templates" / "logs-sre.yaml", lambda d: d.pop("data_stream"))
    _, report = apply_tree(cfg, tree)
    (failed,) = report.failed
    assert (failed.change.kind, failed.change.name) == ("index_template", "logs-sre")
    assert "would cause data streams [logs-sre-production] to no longer match a data stream template" in \
        failed.message
    assert "data_stream" in fake.state.index_templates["logs-sre"].body


def test_ilm_phases_out_of_order_are_refused_with_the_servers_words(tmp_path: Path, fake: FakeElasticsearch) -> None:
    tree = tree_copy(tmp_path)
    cfg = config(tmp_path, fake)
    apply_tree(cfg, tree)
    edit(tree / "ilm" / "sre-service-logs.yaml", lambda d: d["policy"]["phases"]["warm"].update(min_age="20d"))
    _, report = apply_tree(cfg, tree)
    (failed,) = report.failed
    assert failed.change.name == "sre-service-logs"
    assert "run the delete phase (min_age: 14d) before the warm phase (min_age: 20d)" in failed.message


def test_verify_says_so_when_no_template_matches(tmp_path: Path, fake: FakeElasticsearch) -> None:
    cfg = config(tmp_path, fake)
    apply_tree(cfg)
    fake.state.delete_index_template("logs-sre")
    fake.state.delete_index_template("logs")  # the built-in logs-*-* template would match too
    adapter = adapter_for(cfg)
    try:
        results = {r.target: r for r in verify(load_desired(cfg.elk.dir), adapter)}
    finally:
        adapter.close()
    assert (results["logs-sre-verify"].status, results["logs-sre-verify"].message) == ("fail", "no index template matches")


def test_prune_reads_which_template_backs_a_data_stream_now(tmp_path: Path, fake: FakeElasticsearch) -> None:
    # An older managed template, gone from code, that the data stream was created under.
    fake.state.put_index_template("logs-sre-old", {"index_patterns": ["logs-sre-*"], "priority": 150,
                                                   "data_stream": {}, "_meta": {"managed_by": "sre", "hash": "x"}})
    fake.state.create_data_stream("logs-sre-production")
    cfg = config(tmp_path, fake)
    first, report = apply_tree(cfg, prune=True)
    assert [(c.name, c.refusal) for c in first.changes if c.action.value == "delete" and c.kind == "index_template"] == [
        ("logs-sre-old", "backs data streams [logs-sre-production]")]
    _, report = apply_tree(cfg, prune=True)
    assert report.ok and names(report.applied) == [("index_template", "logs-sre-old")]


def test_an_object_sre_does_not_own_is_refused_unless_adopted(tmp_path: Path, fake: FakeElasticsearch) -> None:
    hand_made = {"policy": {"phases": {"delete": {"min_age": "7d", "actions": {"delete": {}}}}}}
    fake.state.put_policy("sre-service-logs", hand_made)  # made by hand under a name elk/ holds
    cfg = config(tmp_path, fake)
    p, report = apply_tree(cfg)
    change = next(c for c in p.changes if c.name == "sre-service-logs")
    assert change.action is Action.update and "not owned by sre" in change.refusal
    assert names(report.refused)[0] == (ILM, "sre-service-logs") and not report.failed
    assert not [r for r in fake.requests if r.method == "PUT" and r.path == "/_ilm/policy/sre-service-logs"]
    assert fake.state.policies["sre-service-logs"].policy["phases"]["delete"]["min_age"] == "7d"
    assert (INDEX, "logs-sre") in names(report.refused), "what needs the refused policy is not attempted"

    p, report = apply_tree(cfg, adopt=("sre-service-logs",))
    assert next(c for c in p.changes if c.name == "sre-service-logs").reason.startswith("adopted")
    assert report.ok, [(r.change.name, r.message) for r in report.changes]
    assert fake.state.policies["sre-service-logs"].policy["_meta"]["managed_by"] == "sre"
