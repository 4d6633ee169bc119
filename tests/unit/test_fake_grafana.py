"""The fake Grafana's rules, driven through the real `grafana-client`: a change that loosens the
fake fails here. Each test names the Grafana behaviour it holds the fake to."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaException

from tests.fakes.grafana import FakeGrafana

TOKEN = "test-token"


def client(fake: FakeGrafana, token: str = TOKEN) -> GrafanaApi:
    port = int(fake.url.rsplit(":", 1)[1])
    return GrafanaApi(auth=token, host="127.0.0.1", port=port, protocol="http", timeout=5)


@pytest.fixture
def fake() -> Iterator[FakeGrafana]:
    with FakeGrafana(tokens={TOKEN: "Editor", "viewer": "Viewer"}) as f:
        yield f


def save(api: GrafanaApi, uid: str | None, title: str, folder: str = "", *, overwrite: bool = False,
         **extra: Any) -> Any:
    dash: dict[str, Any] = {"title": title, "panels": [], **extra}
    if uid is not None:
        dash["uid"] = uid
    return api.client.POST("/dashboards/db", json={"dashboard": dash, "folderUid": folder, "overwrite": overwrite})


def refused(call: Any) -> tuple[int, Any]:
    with pytest.raises(GrafanaException) as err:
        call()
    return err.value.status_code, err.value.response


def test_health_needs_no_credentials_and_says_the_version() -> None:
    with FakeGrafana(version="12.0.1") as fake:
        assert client(fake, "no-such-token").client.GET("/health")["version"] == "12.0.1"


@pytest.mark.parametrize("version", ["11.0.0", "11.2.3"])
def test_up_to_11_2_a_title_is_unique_in_its_folder_and_overwrite_takes_the_holder(version: str) -> None:
    with FakeGrafana(version=version) as fake:
        api = client(fake)
        save(api, "theirs", "Cache")
        save(api, "mine", "Redis")
        status, body = refused(lambda: save(api, "other", "cache"))
        assert (status, body["status"]) == (412, "name-exists")
        answer = save(api, "mine", "Cache", overwrite=True, version=1)
        assert answer["uid"] == "theirs", "the sent uid is ignored: the body lands in the title's holder"
        assert fake.dashboard("theirs")["panels"] == [] and fake.dashboard("mine")["title"] == "Redis"


def test_from_11_3_titles_need_not_be_unique() -> None:
    with FakeGrafana(version="11.3.0") as fake:
        api = client(fake)
        save(api, "theirs", "Cache")
        assert save(api, "mine", "Cache")["uid"] == "mine"
        assert {d.title for d in fake.dashboards.values()} == {"Cache"} and len(fake.dashboards) == 2


def test_an_existing_uid_without_its_version_is_a_version_mismatch(fake: FakeGrafana) -> None:
    api = client(fake)
    save(api, "d1", "One")
    status, body = refused(lambda: save(api, "d1", "One again"))
    assert (status, body["status"]) == (412, "version-mismatch")
    status, body = refused(lambda: save(api, "d1", "One again", version=7))
    assert (status, body["status"]) == (412, "version-mismatch")
    assert save(api, "d1", "One again", version=1)["version"] == 2


def test_titles_are_trimmed(fake: FakeGrafana) -> None:
    api = client(fake)
    save(api, "d1", "  Spaced  ")
    assert api.dashboard.get_dashboard("d1")["dashboard"]["title"] == "Spaced"
    assert [h["title"] for h in api.search.search_dashboards(type_="dash-db")] == ["Spaced"]
    folder = api.client.POST("/folders", json={"uid": "f1", "title": " Team "})
    assert folder["title"] == "Team"


@pytest.mark.parametrize("title", ["General", "general", " GENERAL "])
def test_a_folder_may_not_be_named_general(fake: FakeGrafana, title: str) -> None:
    status, body = refused(lambda: client(fake).client.POST("/folders", json={"uid": "g", "title": title}))
    assert status == 400 and "already exists" in body["message"]
    assert not fake.folders


def test_provisioned_dashboards_refuse_save_and_delete(fake: FakeGrafana) -> None:
    api = client(fake)
    fake.provision({"uid": "prov", "title": "From a file", "panels": []}, external_id="/etc/dash/prov.json")
    got = api.dashboard.get_dashboard("prov")
    assert got["meta"]["provisioned"] is True and got["meta"]["provisionedExternalId"] == "/etc/dash/prov.json"
    status, body = refused(lambda: save(api, "prov", "From a file", overwrite=True))
    assert status == 400 and body["message"] == "Cannot save provisioned dashboard"
    status, body = refused(lambda: api.dashboard.delete_dashboard("prov"))
    assert status == 400 and "provisioned" in body["message"]
    assert fake.dashboard("prov")["title"] == "From a file"


def test_search_limit_above_5000_is_422_and_results_sort_by_title_only() -> None:
    with FakeGrafana(version="11.3.0") as fake:  # two dashboards of one title
        _search_rules(fake)


def _search_rules(fake: FakeGrafana) -> None:
    api = client(fake)
    for uid, title in [("z", "beta"), ("a", "Alpha"), ("m", "beta"), ("b", "Gamma")]:
        save(api, uid, title)
    status, body = refused(lambda: api.client.GET("/search?limit=5001"))
    assert status == 422 and "5000" in body["message"]
    hits = api.client.GET("/search?limit=5000")
    assert [h["uid"] for h in hits] == ["a", "z", "m", "b"], "by title; equal titles in the order made, not by uid"
    desc = api.client.GET("/search?sort=alpha-desc")
    assert [h["title"] for h in desc] == ["Gamma", "beta", "beta", "Alpha"]
    assert [h["uid"] for h in api.client.GET("/search?limit=2&page=2")] == ["m", "b"]


@pytest.mark.parametrize(("version", "depth"), [("11.6.0", 8), ("12.0.0", 4)])
def test_nested_folders_stop_at_the_versions_depth(version: str, depth: int) -> None:
    with FakeGrafana(version=version) as fake:
        api = client(fake)
        parent = None
        for level in range(1, depth + 1):
            api.client.POST("/folders", json={"uid": f"l{level}", "title": f"L{level}",
                                              **({"parentUid": parent} if parent else {})})
            parent = f"l{level}"
        status, body = refused(lambda: api.client.POST("/folders", json={"uid": "deep", "title": "Deep",
                                                                          "parentUid": parent}))
        assert (status, body["messageId"]) == (400, "folder.maximum-depth-reached")


def test_folder_permissions_refuse_one_folder_and_a_viewer_everywhere(fake: FakeGrafana) -> None:
    api = client(fake)
    api.client.POST("/folders", json={"uid": "open", "title": "Open"})
    api.client.POST("/folders", json={"uid": "locked", "title": "Locked"})
    fake.deny_folder("locked")
    status, body = refused(lambda: save(api, "d1", "Mine", "locked"))
    assert status == 403 and "accessErrorId" not in body
    assert save(api, "d2", "Mine", "open")["uid"] == "d2"
    status, body = refused(lambda: api.client.POST("/folders", json={"uid": "sub", "title": "Sub",
                                                                      "parentUid": "locked"}))
    assert status == 403
    status, body = refused(lambda: save(client(fake, "viewer"), "d3", "Viewer's", "open"))
    assert status == 403 and body["accessErrorId"], "the role is refused by the route, not by a folder"
