"""Escalations carry a graph: the alert's expression and the verification query over the last hour
from the sandbox's real Prometheus, the action marked; the same PNG at /api/remediations/{id}/graph.png
behind the read role, and from `sre remediation show --graph`."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import matplotlib.image
import numpy as np
import pytest
from pytest_httpserver import HTTPServer

from sre.sandbox import Stack
from tests.cli import sre
from tests.integration.test_remediation_worker import Rig, _rig
from tests.remediation_support import alert, write_runbook

pytestmark = pytest.mark.slow

EXPR = 'up{job="prometheus"}'
PNG = b"\x89PNG\r\n\x1a\n"
FIRST_LINE = (0x1F / 255, 0x77 / 255, 0xB4 / 255)  # matplotlib's first line colour (tab:blue)


@pytest.fixture
def rig(sandbox: Stack, sandbox_config_path: Path, tmp_path: Path, httpserver: HTTPServer) -> Iterator[Rig]:
    yield from _rig(sandbox, sandbox_config_path, tmp_path, httpserver)


def _draws_a_line(png: bytes) -> bool:
    """Some pixels have the first series' colour: the series is drawn, not only the axes."""
    pixels = matplotlib.image.imread(io.BytesIO(png))[:, :, :3]
    return bool((np.abs(pixels - np.array(FIRST_LINE)).max(axis=2) < 0.15).sum() > 40)


def test_an_escalation_carries_a_png_of_the_series(rig: Rig, tmp_path: Path) -> None:
    # A verification that never holds: the remediation escalates once its window is over.
    write_runbook(rig.runbooks, "GatewayMemoryHigh", verify={"query": f"{EXPR} > 1e9", "within": "1s"})
    firing = alert(fingerprint="g001")
    firing["generatorURL"] = f"http://prometheus:9090/graph?g0.expr={quote(EXPR)}&g0.tab=1"
    rig.deliver(firing)
    rig.drain()

    [sent] = [m for m in rig.escalated() if m["kind"] == "verify_failed"]
    png = base64.b64decode(sent["graph_png_base64"])
    assert png.startswith(PNG) and _draws_a_line(png)
    series = {s["query"]: s["points"] for s in sent["graph_series"]}
    assert series[EXPR] > 0  # the alert's own expression, from its generatorURL
    assert f"{EXPR} > 1e9" not in series or series[f"{EXPR} > 1e9"] == 0  # the verification never held
    rid = sent["remediation_id"]
    assert sent["graph_url"].endswith(f"/api/remediations/{rid}/graph.png")
    assert f"({sent['graph_url']})" in sent["summary_markdown"] and "verify_failed" in sent["summary_markdown"]

    served = rig.client.get(f"/api/remediations/{rid}/graph.png", headers=rig.read)
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert served.content.startswith(PNG)
    assert rig.client.get(f"/api/remediations/{rid}/graph.png").status_code == 401
    assert rig.client.get("/api/remediations/999999/graph.png", headers=rig.read).status_code == 404

    out = tmp_path / "graph.png"
    shown = sre("remediation", "show", str(rid), "--graph", str(out), "-o", "json",
                env={"SRE_CONFIG": str(tmp_path / "state" / "sre-remediation.yaml")})
    assert shown.returncode == 0, shown.stderr
    assert out.read_bytes().startswith(PNG)


def test_windows_are_listed_behind_the_read_role(rig: Rig) -> None:
    from datetime import timedelta

    from sre.remediation import windows
    from sre.store.base import utcnow

    w = windows.pause(rig.store, reason="node pool upgrade", by="alice", until=utcnow() + timedelta(hours=1),
                      scope_kind="namespace", scope_value="messaging")
    listed = rig.client.get("/api/remediations/windows", headers=rig.read)
    assert listed.status_code == 200
    assert [(x["id"], x["scope"], x["open"], x["reason"]) for x in listed.json()] == [
        (w.id, "namespace=messaging", True, "node pool upgrade")]
    assert rig.client.get("/api/remediations/windows").status_code == 401
