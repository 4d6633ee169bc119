"""The shipped elk/ tree: retention as promised, templates that win over logs-*-*, and a
normalisation under which the server's answers equal what was sent."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from sre.errors import UsageError
from sre.provision.elasticsearch import (
    COMPONENT,
    ILM,
    INDEX,
    Desired,
    body_hash,
    default_dir,
    load_desired,
    meta_of,
    normalise,
    patterns_overlap,
    simulated_index_name,
)
from tests.fakes.elasticsearch import State

ELK = default_dir()


@pytest.fixture(scope="module")
def desired() -> Desired:
    return load_desired(ELK)


def phases(desired: Desired, name: str) -> dict[str, Any]:
    result: dict[str, Any] = desired.objects[ILM][name]["policy"]["phases"]
    return result


def test_application_logs_roll_over_at_50gb_or_1d_warm_at_7d_delete_at_30d(desired: Desired) -> None:
    p = phases(desired, "messaging-api-logs")
    assert p["hot"]["actions"]["rollover"] == {"max_primary_shard_size": "50gb", "max_age": "1d"}
    assert p["warm"]["min_age"] == "7d"
    assert p["warm"]["actions"]["shrink"] == {"number_of_shards": 1}
    assert p["warm"]["actions"]["forcemerge"] == {"max_num_segments": 1}
    assert p["delete"]["min_age"] == "30d" and "delete" in p["delete"]["actions"]


def days(age: str) -> int:
    assert age.endswith("d"), age
    return int(age[:-1])


def test_websocket_logs_are_kept_shorter_than_application_logs(desired: Desired) -> None:
    ws, api = phases(desired, "messaging-websocket-logs"), phases(desired, "messaging-api-logs")
    assert days(ws["delete"]["min_age"]) < days(api["delete"]["min_age"])
    assert ws["hot"]["actions"]["rollover"]["max_primary_shard_size"] == "50gb"


def test_audit_logs_are_kept_400_days_with_no_earlier_delete(desired: Desired) -> None:
    p = phases(desired, "messaging-audit-logs")
    assert days(p["delete"]["min_age"]) == 400
    for name, phase in p.items():
        if name != "delete":
            assert "delete" not in phase["actions"]


def test_every_data_stream_has_a_template_naming_its_policy_above_the_builtin_priority(desired: Desired) -> None:
    expected = {
        "logs-messaging.api-*": "messaging-api-logs",
        "logs-messaging.websocket-*": "messaging-websocket-logs",
        "logs-messaging.audit-*": "messaging-audit-logs",
        "logs-sre-*": "sre-service-logs",
    }
    seen = {}
    for name, body in desired.objects[INDEX].items():
        assert "data_stream" in body
        assert body["priority"] > 100, f"{name} must beat the built-in logs-*-* template (priority 100)"
        for comp in body["composed_of"]:
            assert comp in desired.objects[COMPONENT] or comp in body["ignore_missing_component_templates"]
        for pattern in body["index_patterns"]:
            seen[pattern] = desired.resolved_settings(name)["index.lifecycle.name"]
    assert seen == expected
    priorities = [b["priority"] for b in desired.objects[INDEX].values()]
    assert len(set(priorities)) == len(priorities)


def test_mappings_cover_http_url_user_agent_event_traces_and_sre_fields(desired: Desired) -> None:
    api = desired.resolved_fields("logs-messaging.api")
    for fld in ("http.request.method", "http.response.status_code", "url.path", "user_agent.original",
                "event.dataset", "event.outcome", "trace.id", "transaction.id", "span.id", "@timestamp"):
        assert fld in api
    sre = desired.resolved_fields("logs-sre")
    for fld in ("job", "status", "duration_seconds", "run_id", "alertname", "fingerprint", "action", "outcome",
                "remediation_id", "drill_id", "cluster", "replica", "check"):
        assert f"sre.{fld}" in sre
    assert sre["sre.duration_seconds"] == "double" and sre["sre.run_id"] == "long"


def test_every_body_is_stamped_managed_with_the_hash_of_its_content(desired: Desired) -> None:
    for kind in (COMPONENT, ILM, INDEX):
        for body in desired.objects[kind].values():
            meta = meta_of(kind, body)
            assert meta["managed_by"] == "sre"
            assert meta["hash"] == body_hash(kind, body) and len(meta["hash"]) == 12


def test_server_views_normalise_to_the_desired_bodies(desired: Desired) -> None:
    """What GET returns (strings for settings, defaults, dates, version, in_use_by) is no diff."""
    state = State()
    for name, body in desired.objects[COMPONENT].items():
        state.put_component_template(name, copy.deepcopy(body))
        view = state.template_view(state.component_templates[name], index_template=False)
        assert "modified_date_millis" in view
        assert normalise(COMPONENT, view) == normalise(COMPONENT, body)
    for name, body in desired.objects[ILM].items():
        state.put_policy(name, copy.deepcopy(body))
        view = state.policy_view(name)
        assert view["policy"]["phases"]["hot"]["min_age"] == "0ms" and "in_use_by" in view
        assert normalise(ILM, {"policy": view["policy"]}) == normalise(ILM, body)
    for name, body in desired.objects[INDEX].items():
        state.put_index_template(name, copy.deepcopy(body))
        view = state.template_view(state.index_templates[name], index_template=True)
        assert view["data_stream"] == {"hidden": False, "allow_custom_routing": False}
        assert normalise(INDEX, view) == normalise(INDEX, body)
    api = state.template_view(state.index_templates["logs-messaging.api"], index_template=True)
    assert api["template"]["settings"]["index"]["number_of_shards"] == "2"


scalars = st.one_of(st.integers(-5, 10**6), st.booleans(), st.text("abc0123.", min_size=1, max_size=6))


@given(st.dictionaries(st.sampled_from(["number_of_shards", "index.refresh_interval", "codec", "hidden",
                                        "mapping.total_fields.limit", "index.query.default_field"]),
                       st.one_of(scalars, st.lists(scalars, max_size=3)), max_size=5))
def test_settings_in_any_spelling_normalise_like_the_server_returns_them(settings: dict[str, Any]) -> None:
    state = State()
    body = {"template": {"settings": settings}}
    state.put_component_template("c", copy.deepcopy(body))
    view = state.template_view(state.component_templates["c"], index_template=False)
    assert normalise(COMPONENT, view) == normalise(COMPONENT, body)


def test_pattern_overlap_and_simulated_names() -> None:
    assert patterns_overlap("logs-sre-*", "logs-*-*")
    assert patterns_overlap("logs-messaging.api-*", "logs-*-*")
    assert not patterns_overlap("logs-messaging.api-*", "logs-messaging.websocket-*")
    assert not patterns_overlap("logs-sre-*", "logs-messaging.api-*")
    assert simulated_index_name("logs-sre-*") == "logs-sre-verify"


def copy_tree(tmp_path: Path) -> Path:
    target = tmp_path / "elk"
    shutil.copytree(ELK, target)
    return target


def edit(path: Path, fn: Any) -> None:
    data = yaml.safe_load(path.read_text())
    fn(data)
    path.write_text(yaml.safe_dump(data))


def test_same_priority_overlap_is_refused_before_any_request(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    edit(tree / "index_templates/logs-sre.yaml", lambda d: d.update(index_patterns=["logs-*-*"], priority=200))
    with pytest.raises(UsageError, match="same priority 200"):
        load_desired(tree)


def test_priority_at_or_below_the_builtin_is_refused(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    edit(tree / "index_templates/logs-sre.yaml", lambda d: d.update(priority=100))
    with pytest.raises(UsageError, match="does not beat the built-in"):
        load_desired(tree)


def test_unknown_key_missing_policy_and_hand_written_hash_are_named(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    edit(tree / "component_templates/sre-service@mappings.yaml", lambda d: d.update(templat={}))
    with pytest.raises(UsageError, match=r"sre-service@mappings.yaml: unknown key 'templat'"):
        load_desired(tree)
    tree = copy_tree(tmp_path / "b")
    (tree / "ilm/sre-service-logs.yaml").unlink()
    with pytest.raises(UsageError, match="names ILM policy 'sre-service-logs'"):
        load_desired(tree)
    tree = copy_tree(tmp_path / "c")
    edit(tree / "ilm/sre-service-logs.yaml", lambda d: d["policy"]["_meta"].update(hash="abc"))
    with pytest.raises(UsageError, match="set by sre"):
        load_desired(tree)
