"""`sre slo status|gate|report` against a real Prometheus holding recorded SLO series.

The series are written the way an operator backfills history: an OpenMetrics file turned into
TSDB blocks by `promtool tsdb create-blocks-from openmetrics`, in the data directory of a sandbox
Prometheus started for this module (loading blocks at start-up takes no wait; a running one only
picks new blocks up at its next compaction, up to a minute later). Two days of samples, the last
a minute ago: `api-availability` is burning (5% of its budget left, 20x over 1h and 5m), the
other SLOs are healthy.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sre.local.procs import free_port
from sre.rules.loader import load_tree
from sre.rules.slo import BUDGET_REMAINING, ERROR_RATIO
from sre.sandbox.prometheus import Prometheus
from tests.cli import sre

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
BURNING = "api-availability"
HOURS, STEP = 48, 240  # a sample every 4 minutes: within the 5-minute lookback of every query step


def openmetrics(now: float) -> str:
    """Two days of the recording rules' series for every shipped SLO."""
    lines: list[str] = []
    specs = load_tree(ROOT / "alerts").slo_specs
    stamps = [now - 60 - i * STEP for i in reversed(range(HOURS * 3600 // STEP))]
    families: dict[str, list[str]] = {}
    for slo in specs:
        budget = float(slo.budget)
        burning = slo.name == BURNING
        labels = f'service="{slo.service}",slo="{slo.name}"'
        for window in [*slo.alert_windows(), slo.window]:
            short = window in ("5m", "30m", "1h")
            ratio = budget * (20 if burning and short else 0.3)
            families.setdefault(ERROR_RATIO + window, []).extend(
                f"{ERROR_RATIO}{window}{{{labels}}} {ratio} {ts:.0f}" for ts in stamps)
        left = [(0.05 if burning else 0.9) + 0.001 * (len(stamps) - 1 - i) for i in range(len(stamps))]
        families.setdefault(BUDGET_REMAINING, []).extend(
            f"{BUDGET_REMAINING}{{{labels}}} {value:.6f} {ts:.0f}" for value, ts in zip(left, stamps, strict=True))
    for name, samples in families.items():
        lines += [f"# TYPE {name} gauge", *samples]
    return "\n".join([*lines, "# EOF", ""])


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    root = tmp_path_factory.mktemp("slo-prometheus")
    source = root / "series.om"
    source.write_text(openmetrics(time.time()))
    (root / "data").mkdir()
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(root / "data")],
                   check=True, capture_output=True, text=True)
    prom = Prometheus(root=root, port=free_port())
    prom.start()
    try:
        yield prom
    finally:
        prom.stop()


@pytest.fixture(scope="module")
def config(prometheus: Prometheus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("slo-config") / "sre.yaml"
    path.write_text(f"endpoints:\n  prometheus: {{url: \"{prometheus.url}\"}}\n")
    return path


def test_gate_blocks_a_burning_slo_with_one_line_per_reason(config: Path) -> None:
    proc = sre("slo", "gate", "--service", "api", "--config", str(config))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    blocked = [line for line in proc.stdout.splitlines() if line.startswith("blocked")]
    assert len(blocked) == 2, proc.stdout
    assert "api-availability: 5% of the 30d error budget left, below the 10% floor" in blocked[0]
    assert "api-availability: burning its error budget 20x over 1h (20x over 5m), above --max-burn 1" in blocked[1]
    as_json = json.loads(sre("slo", "gate", "--service", "api", "--config", str(config), "--output", "json").stdout)
    assert as_json["ok"] is False and len(as_json["reasons"]) == 2


def test_gate_passes_a_healthy_service_and_thresholds_are_the_callers(config: Path) -> None:
    proc = sre("slo", "gate", "--service", "websocket-gateway", "--config", str(config))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "may deploy" in proc.stdout
    lenient = sre("slo", "gate", "--service", "api", "--min-budget", "0.01", "--max-burn", "25", "--config",
                  str(config))
    assert lenient.returncode == 0, lenient.stdout


def test_gate_cannot_judge_without_prometheus_or_without_data(config: Path, tmp_path: Path) -> None:
    down = tmp_path / "down.yaml"
    down.write_text(f"endpoints:\n  prometheus: {{url: \"http://127.0.0.1:{free_port()}\"}}\n")
    proc = sre("slo", "gate", "--service", "api", "--config", str(down))
    assert proc.returncode == 2 and "unreachable" in proc.stderr and "Traceback" not in proc.stderr
    alerts = tmp_path / "alerts" / "slos"
    alerts.mkdir(parents=True)
    (alerts / "new.yaml").write_text((ROOT / "alerts" / "slos" / "api.yaml").read_text().replace(
        "api-availability", "api-checkout"))
    no_data = sre("slo", "gate", "--service", "api", "--alerts-dir", str(alerts.parent), "--config", str(config))
    assert no_data.returncode == 2 and "no current value for api-checkout" in no_data.stderr
    unknown = sre("slo", "gate", "--service", "billing", "--config", str(config))
    assert unknown.returncode == 2 and "no SLO for service 'billing'" in unknown.stderr


def test_status_shows_sli_budget_burn_and_exhaustion(config: Path) -> None:
    proc = sre("slo", "status", "--config", str(config), "--output", "json")
    assert proc.returncode == 0, proc.stderr
    slos = {s["slo"]: s for s in json.loads(proc.stdout)["slos"]}
    assert sorted(slos) == ["api-availability", "api-latency", "websocket-delivery"]
    burning = slos[BURNING]
    assert burning["sli"] == pytest.approx(1 - 0.0003)
    assert burning["budget_remaining"] == pytest.approx(0.05)
    assert burning["budget_remaining_seconds"] == pytest.approx(0.05 * 0.001 * 30 * 86400)
    burn = {b["window"]: b for b in burning["burn"]}
    assert burn["1h"]["burn_rate"] == pytest.approx(20) and burn["1h"]["factor"] == 14.4
    assert burn["3d"]["burn_rate"] == pytest.approx(0.3) and burn["3d"]["alert"] == "ticket"
    assert burning["exhaustion_seconds"] == pytest.approx(0.05 * 30 * 86400 / 20)
    table = sre("slo", "status", "--service", "websocket-gateway", "--config", str(config), env={"COLUMNS": "160"})
    assert table.returncode == 0 and "websocket-delivery" in table.stdout and "api-" not in table.stdout


def test_report_draws_a_png_per_slo(config: Path, tmp_path: Path) -> None:
    proc = sre("slo", "report", "--out", str(tmp_path / "review"), "--config", str(config), "--output", "json")
    assert proc.returncode == 0, proc.stderr
    files = json.loads(proc.stdout)["files"]
    assert [f["slo"] for f in files] == ["api-availability", "api-latency", "websocket-delivery"]
    for f in files:
        assert f["points"] >= 30  # two days of the 30d window, in steps of 30d/500 (86 min)
        assert Path(f["path"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
