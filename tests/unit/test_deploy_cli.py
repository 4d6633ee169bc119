"""`sre deploy render`: writes the chart's generated files, and `--check` exits 1 while they are stale."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.cli import sre

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "sre"


def test_render_check_fails_on_stale_files_and_render_mends_them(tmp_path: Path) -> None:
    chart = tmp_path / "sre"
    shutil.copytree(CHART, chart)
    rules = sorted((chart / "files" / "prometheusrules").glob("*.yaml"))
    rules[0].write_text(rules[0].read_text() + "# edited by hand\n")
    rules[1].unlink()
    (chart / "files" / "dashboards" / "sre-dashboard-gone.yaml").write_text("kind: ConfigMap\n")

    stale = sre("deploy", "render", "--chart", str(chart), "--check", "-o", "json")
    assert stale.returncode == 1, stale.stderr
    found = json.loads(stale.stdout)
    assert found["changed"] == [f"files/prometheusrules/{rules[0].name}"]
    assert found["missing"] == [f"files/prometheusrules/{rules[1].name}"]
    assert found["extra"] == ["files/dashboards/sre-dashboard-gone.yaml"]

    assert sre("deploy", "render", "--chart", str(chart)).returncode == 0
    assert sre("deploy", "render", "--chart", str(chart), "--check").returncode == 0
    assert not (chart / "files" / "dashboards" / "sre-dashboard-gone.yaml").exists()


def test_an_invalid_chart_config_is_a_usage_error(tmp_path: Path) -> None:
    chart = tmp_path / "sre"
    shutil.copytree(CHART, chart)
    values = chart / "values.yaml"
    values.write_text(values.read_text().replace("  environment: staging\n", "  environment: qa\n", 1))
    out = sre("deploy", "render", "--chart", str(chart), "--check")
    assert out.returncode == 2
    assert "environment" in out.stderr and "Traceback" not in out.stderr


def test_a_missing_chart_is_one_line_and_exit_2(tmp_path: Path) -> None:
    out = sre("deploy", "render", "--chart", str(tmp_path / "nowhere"), "--check")
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and "Traceback" not in out.stderr
