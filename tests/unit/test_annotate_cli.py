"""`sre annotate deploy|flush` against the fake Grafana, and sre's annotations on every shipped dashboard."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sre.provision.dashboards import load
from tests.cli import sre
from tests.fakes.grafana import FakeGrafana


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    fake = FakeGrafana().start()
    try:
        yield fake
    finally:
        fake.stop()


def _config(tmp_path: Path, url: str) -> str:
    token = tmp_path / "grafana-token"
    token.write_text("test-token\n")
    path = tmp_path / "sre.yaml"
    path.write_text(yaml.safe_dump({"environment": "production", "state": {"dir": str(tmp_path / "state")},
                                    "endpoints": {"grafana": {"url": url, "token": {"file": str(token)}}}}))
    return str(path)


def test_deploy_is_annotated_with_its_tags(tmp_path: Path, grafana: FakeGrafana) -> None:
    cfg = _config(tmp_path, grafana.url)
    run = sre("annotate", "deploy", "--service", "api", "--version", "1.4.2", "-c", cfg, "-o", "json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["pending"] == 0
    [note] = grafana.annotations
    assert note["tags"] == ["sre", "deploy", "api", "version:1.4.2", "production"]
    assert note["text"] == "deploy api 1.4.2 to production" and note["timeEnd"] == note["time"]


def test_a_deploy_annotation_waits_for_grafana(tmp_path: Path, grafana: FakeGrafana) -> None:
    cfg = _config(tmp_path, grafana.url)
    grafana.fail_next("POST", "/api/annotations", 503, times=10)
    run = sre("annotate", "deploy", "--service", "api", "--version", "1.4.3", "-c", cfg, "-o", "json")
    assert run.returncode == 0, run.stderr  # the pipeline is never failed by Grafana
    assert json.loads(run.stdout)["pending"] == 1 and grafana.annotations == []

    grafana.faults.clear()
    flushed = sre("annotate", "flush", "-c", cfg, "-o", "json")

    assert flushed.returncode == 0 and json.loads(flushed.stdout) == {"sent": 1, "pending": 0}
    assert [a["tags"][2:4] for a in grafana.annotations] == [["api", "version:1.4.3"]]


def test_every_shipped_dashboard_shows_sres_annotations() -> None:
    for d in load().dashboards:
        if d.uid == "rYdddlPWk":
            continue  # the dashboard exported from Grafana is kept as exported
        queries = d.body.get("annotations", {}).get("list", [])
        assert any(q.get("target", {}).get("tags") == ["sre"] and q["datasource"]["type"] == "grafana"
                   for q in queries), d.uid


def test_an_apply_that_changed_something_is_annotated(tmp_path: Path, grafana: FakeGrafana) -> None:
    from sre.annotate import annotate_apply
    from sre.config import load_config

    cfg = load_config(_config(tmp_path, grafana.url))
    annotate_apply(cfg, "dashboards", 0, "", 1_700_000_000.0)  # nothing changed: no annotation
    annotate_apply(cfg, "dashboards", 2, "update dashboard sre-api, create folder SRE", 1_700_000_000.0)

    [note] = grafana.annotations
    assert note["tags"] == ["sre", "apply", "dashboards"] and note["time"] == 1_700_000_000_000
    assert note["timeEnd"] > note["time"] and "2 change(s)" in note["text"]
