"""The fake Elasticsearch's rules, driven through the real `elasticsearch` client: a change that
loosens the fake fails here. Each test names the Elasticsearch behaviour it holds the fake to."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import ApiError, Elasticsearch

from tests.fakes.elasticsearch import FakeElasticsearch

KEY = "a2V5LWlkOmtleS1zZWNyZXQ="


@pytest.fixture
def fake() -> Iterator[FakeElasticsearch]:
    with FakeElasticsearch.start() as f:
        yield f


@pytest.fixture
def es(fake: FakeElasticsearch) -> Iterator[Elasticsearch]:
    client = Elasticsearch(fake.url)
    yield client
    client.close()


def refused(call: Any) -> tuple[int, str, str]:
    with pytest.raises(ApiError) as err:
        call()
    error = err.value.body["error"]
    return err.value.meta.status, error["type"], error["reason"]


def stamp_component(es: Elasticsearch, name: str, stamp_type: str) -> None:
    es.cluster.put_component_template(name=name, template={
        "mappings": {"properties": {"@timestamp": {"type": stamp_type}, "message": {"type": "match_only_text"}}}})


def ds_template(es: Elasticsearch, name: str, patterns: list[str], priority: int, **extra: Any) -> None:
    es.indices.put_index_template(name=name, index_patterns=patterns, priority=priority, **extra)


def test_a_component_update_that_breaks_a_composing_template_is_refused(es: Elasticsearch,
                                                                       fake: FakeElasticsearch) -> None:
    stamp_component(es, "app@mappings", "date")
    ds_template(es, "app", ["events-app-*"], 300, data_stream={}, composed_of=["app@mappings"])
    status, etype, reason = refused(lambda: stamp_component(es, "app@mappings", "keyword"))
    assert (status, etype) == (400, "illegal_argument_exception")
    assert reason == ("updating component template [app@mappings] results in invalid composable template [app] "
                      "after templates are merged")
    kept = fake.state.component_templates["app@mappings"].body["template"]["mappings"]
    assert kept["properties"]["@timestamp"]["type"] == "date"
    stamp_component(es, "unused@mappings", "keyword")  # composed into nothing: accepted


def test_a_template_change_that_orphans_a_data_stream_is_refused(es: Elasticsearch, fake: FakeElasticsearch) -> None:
    ds_template(es, "app", ["events-app-*"], 300, data_stream={})
    es.indices.create_data_stream(name="events-app-prod")
    status, etype, reason = refused(lambda: ds_template(es, "app", ["other-*"], 300, data_stream={}))
    assert (status, etype) == (400, "illegal_argument_exception")
    assert reason == ("composable template [app] with index patterns [other-*], priority [300] would cause data "
                      "streams [events-app-prod] to no longer match a data stream template")
    status, _, reason = refused(lambda: ds_template(es, "app", ["events-app-*"], 300))
    assert status == 400 and "priority [300] and no data stream configuration would cause" in reason
    status, _, reason = refused(lambda: ds_template(es, "plain", ["events-app-prod"], 400))
    assert status == 400 and "[events-app-prod] to no longer match" in reason
    assert fake.state.index_templates["app"].body["index_patterns"] == ["events-app-*"]
    assert "plain" not in fake.state.index_templates


def test_unknown_mapping_parameters_are_refused(es: Elasticsearch) -> None:
    status, etype, reason = refused(lambda: es.cluster.put_component_template(name="bad", template={
        "mappings": {"properties": {"http": {"properties": {"bytes": {"type": "long", "ignore_above": 1024}}}}}}))
    assert (status, etype) == (400, "mapper_parsing_exception")
    assert reason == "Failed to parse mapping: unknown parameter [ignore_above] on mapper [bytes] of type [long]"
    es.cluster.put_component_template(name="good", template={"mappings": {"properties": {
        "url": {"type": "keyword", "ignore_above": 1024, "fields": {"text": {"type": "match_only_text"}}}}}})
    status, _, reason = refused(lambda: es.cluster.put_component_template(name="sub", template={"mappings": {
        "properties": {"url": {"type": "keyword", "fields": {"text": {"type": "match_only_text", "norms": False}}}}}}))
    assert status == 400 and "unknown parameter [norms] on mapper [text]" in reason


def test_ilm_phases_whose_min_age_goes_backwards_are_refused(es: Elasticsearch) -> None:
    rollover = {"rollover": {"max_age": "1d"}}
    status, etype, reason = refused(lambda: es.ilm.put_lifecycle(name="p", policy={"phases": {
        "hot": {"actions": rollover}, "warm": {"min_age": "10d", "actions": {}},
        "cold": {"min_age": "5d", "actions": {}}, "delete": {"min_age": "30d", "actions": {"delete": {}}}}}))
    assert (status, etype) == (400, "illegal_argument_exception")
    assert reason.startswith("Your policy is configured to run the cold phase (min_age: 5d) before the warm phase "
                             "(min_age: 10d).")
    status, _, reason = refused(lambda: es.ilm.put_lifecycle(name="p", policy={"phases": {
        "warm": {"min_age": "36h", "actions": {}}, "delete": {"min_age": "1d", "actions": {"delete": {}}}}}))
    assert status == 400 and "delete phase (min_age: 1d) before the warm phase (min_age: 36h)" in reason
    es.ilm.put_lifecycle(name="p", policy={"phases": {  # equal ages, and phases without min_age, are fine
        "hot": {"actions": rollover}, "warm": {"min_age": "2d", "actions": {}}, "cold": {"actions": {}},
        "delete": {"min_age": "2d", "actions": {"delete": {}}}}})


def test_missing_privileges_are_403_security_exceptions() -> None:
    role = {"cluster": ["manage_index_templates"], "indices": [{"names": ["events-app-*"],
                                                                "privileges": ["view_index_metadata"]}]}
    with FakeElasticsearch.start(api_keys=[KEY], roles={KEY: role}) as fake:
        es = Elasticsearch(fake.url, api_key=KEY)
        status, etype, reason = refused(lambda: es.ilm.put_lifecycle(name="p", policy={"phases": {}}))
        assert (status, etype) == (403, "security_exception")
        assert reason == ("action [cluster:admin/ilm/put] is unauthorized for API key id [fake-key-id] of user [sre], "
                          "this action is granted by the cluster privileges [manage_ilm,manage,all]")
        ds_template(es, "app", ["events-*"], 300, data_stream={})
        status, _, reason = refused(lambda: es.indices.create_data_stream(name="events-app-prod"))
        assert status == 403 and "on indices [events-app-prod]" in reason and "[create_index,manage,all]" in reason
        fake.state.create_data_stream("events-app-prod")
        fake.state.create_data_stream("events-other-prod")
        seen = es.indices.get_data_stream(name="events-*")
        assert [d["name"] for d in seen["data_streams"]] == ["events-app-prod"], "a wildcard shows what may be seen"
        status, _, _ = refused(lambda: es.indices.get_data_stream(name="events-other-prod"))
        assert status == 403
        es.close()


def test_simulate_index_without_a_match_answers_an_empty_object(es: Elasticsearch) -> None:
    assert es.indices.simulate_index_template(name="nothing-matches-this").body == {}
    ds_template(es, "app", ["events-app-*"], 300, data_stream={})
    assert "template" in es.indices.simulate_index_template(name="events-app-x").body


def test_a_data_streams_template_and_policy_are_computed_on_every_read(es: Elasticsearch) -> None:
    for policy in ("old-policy", "new-policy"):
        es.ilm.put_lifecycle(name=policy, policy={"phases": {"delete": {"min_age": "1d", "actions": {"delete": {}}}}})
    ds_template(es, "old", ["events-app-*"], 300, data_stream={},
                template={"settings": {"index.lifecycle.name": "old-policy"}})
    es.indices.create_data_stream(name="events-app-prod")
    assert es.indices.get_data_stream(name="events-app-prod")["data_streams"][0]["template"] == "old"
    ds_template(es, "new", ["events-app-prod*"], 400, data_stream={},
                template={"settings": {"index.lifecycle.name": "new-policy"}})
    stream = es.indices.get_data_stream(name="events-app-prod")["data_streams"][0]
    assert (stream["template"], stream["ilm_policy"]) == ("new", "new-policy")
    policies = es.ilm.get_lifecycle()
    assert policies["new-policy"]["in_use_by"]["data_streams"] == ["events-app-prod"]
    assert policies["old-policy"]["in_use_by"]["data_streams"] == []
    status, _, reason = refused(lambda: es.indices.delete_index_template(name="new"))
    assert status == 400 and "in use by a data streams [events-app-prod]" in reason
    es.indices.delete_index_template(name="old")  # no longer backs the stream
