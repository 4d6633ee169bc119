"""The fake Grafana's annotations answer as Grafana's API documents, through the real grafana-client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaBadInputError

from tests.fakes.grafana import FakeGrafana


@pytest.fixture
def api() -> Iterator[GrafanaApi]:
    fake = FakeGrafana().start()
    try:
        yield GrafanaApi.from_url(fake.url, credential="test-token")
    finally:
        fake.stop()


def test_annotations_are_added_and_found_by_tags_and_time(api: GrafanaApi) -> None:
    first = api.annotations.add_annotation(time_from=1000, time_to=2000, tags=["sre", "drill"], text="a drill")
    api.annotations.add_annotation(time_from=5000, tags=["sre", "remediation"], text="a fix")
    assert first["message"] == "Annotation added" and isinstance(first["id"], int)

    assert [a["text"] for a in api.annotations.get_annotation(tags=["sre"])] == ["a fix", "a drill"]
    assert [a["text"] for a in api.annotations.get_annotation(tags=["sre", "drill"])] == ["a drill"]
    assert [a["text"] for a in api.annotations.get_annotation(time_from=1500, time_to=3000)] == ["a drill"]
    found = api.annotations.get_annotation(tags=["drill"])[0]
    assert (found["time"], found["timeEnd"], found["tags"]) == (1000, 2000, ["sre", "drill"])


def test_an_empty_text_is_refused(api: GrafanaApi) -> None:
    with pytest.raises(GrafanaBadInputError, match="Failed to save annotation"):
        api.annotations.add_annotation(time_from=1000, tags=["sre"], text="")
