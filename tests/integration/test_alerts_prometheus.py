"""The rules against the sandbox's real Prometheus: loaded and healthy, confirmed by hash, a
refused reload that keeps the old rules serving, pruning only what sre wrote, and `lint --live`."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from sre.local.procs import wait_until
from sre.provision.prometheus import desired_files, desired_group_hash, loaded_group_hash
from sre.sandbox import Stack
from tests.cli import sre

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "alerts_lint" / "base"


def _groups(prom_url: str) -> list[dict]:
    return httpx.get(f"{prom_url}/api/v1/rules", timeout=5).json()["data"]["groups"]


@pytest.fixture
def rules_dir(sandbox: Stack) -> Iterator[Path]:
    """The sandbox Prometheus's rules directory, left as it was found."""
    assert sandbox.prometheus
    d = sandbox.prometheus.rules_dir
    before = {p.name for p in d.iterdir()}
    yield d
    for p in d.iterdir():
        if p.name not in before:
            p.unlink()
    sandbox.prometheus.reload()


def _names(result: dict, *actions: str) -> list[str]:
    """Names of the applied changes (writes: create, update, drift; or the actions given)."""
    wanted = actions or ("create", "update", "drift")
    return [c["name"] for c in result["applied"] if c["action"] in wanted]


def _config(sandbox: Stack, tmp_path: Path, alerts_dir: Path, prom_url: str | None = None) -> Path:
    assert sandbox.prometheus
    path = tmp_path / "sre.yaml"
    path.write_text(yaml.safe_dump({
        "state": {"dir": str(tmp_path / "state")},
        "endpoints": {"prometheus": {"url": prom_url or sandbox.prometheus.url, "timeout": "3s"}},
        "alerts": {"rules_dir": str(sandbox.prometheus.rules_dir), "source_dir": str(alerts_dir),
                   "runbook_base_url": "https://runbooks.example.com"},
    }))
    return path


def test_the_sandbox_prometheus_loads_the_rendered_rules(sandbox: Stack, rules_dir: Path, tmp_path: Path) -> None:
    assert sandbox.prometheus
    cfg = _config(sandbox, tmp_path, ROOT / "alerts")
    proc = sre("alerts", "apply", "--config", str(cfg), "--output", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (result,) = json.loads(proc.stdout)["results"]
    files = desired_files(ROOT / "alerts", "https://runbooks.example.com")
    n_groups = sum(len(f.data["groups"]) for f in files)
    assert result["confirmed_groups"] == n_groups
    assert sorted(_names(result)) == sorted(f.name for f in files)

    def all_healthy() -> bool:
        ours = [g for g in _groups(sandbox.prometheus.url) if Path(g["file"]).name in _names(result)]  # type: ignore[union-attr]
        return len(ours) == n_groups and all(r["health"] == "ok" for g in ours for r in g["rules"])

    wait_until(all_healthy, timeout=30, interval=0.5, what="every rule group evaluated and healthy")
    # the loaded view hashes the same as the desired one, group by group
    want = {(f.name, g["name"]): desired_group_hash(g) for f in files for g in f.data["groups"]}
    got = {(Path(g["file"]).name, g["name"]): loaded_group_hash(g) for g in _groups(sandbox.prometheus.url)
           if Path(g["file"]).name in _names(result)}
    assert got == want

    again = sre("alerts", "plan", "--config", str(cfg), "--output", "json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["counts"]["unchanged"] == len(files)


def test_a_refused_reload_keeps_the_old_rules_serving(sandbox: Stack, rules_dir: Path, tmp_path: Path) -> None:
    assert sandbox.prometheus
    tree = tmp_path / "tree"
    shutil.copytree(FIXTURES, tree)
    cfg = _config(sandbox, tmp_path, tree / "alerts")
    assert sre("alerts", "apply", "--config", str(cfg)).returncode == 0
    v1_text = (rules_dir / "demo.yaml").read_text()
    v1 = {g["name"]: desired_group_hash(g) for g in yaml.safe_load(v1_text)["groups"]}

    # someone drops a broken file into the directory; our next apply's reload is refused
    (rules_dir / "zz-handmade.yaml").write_text("groups:\n  - name: handmade\n    rules:\n"
                                                "      - record: x:y\n        expr: sum(up\n")
    source = tree / "alerts" / "demo.yaml"
    source.write_text(source.read_text().replace("job:demo_errors:rate5m > 1", "job:demo_errors:rate5m > 2"))
    proc = sre("alerts", "apply", "--config", str(cfg))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "failed to reload config" in proc.stderr  # Prometheus's own answer
    assert "previous rule files are back" in proc.stderr
    assert "zz-handmade.yaml" in proc.stderr and "Traceback" not in proc.stderr
    assert (rules_dir / "demo.yaml").read_text() == v1_text
    loaded = {g["name"]: loaded_group_hash(g) for g in _groups(sandbox.prometheus.url)
              if Path(g["file"]).name == "demo.yaml"}
    assert loaded == v1

    (rules_dir / "zz-handmade.yaml").unlink()
    proc = sre("alerts", "apply", "--config", str(cfg), "--output", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _names(json.loads(proc.stdout)["results"][0]) == ["demo.yaml"]
    assert "job:demo_errors:rate5m > 2" in (rules_dir / "demo.yaml").read_text()


def test_prune_removes_only_files_sre_wrote(sandbox: Stack, rules_dir: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(FIXTURES, tree)
    extra = tree / "alerts" / "extra.yaml"
    extra.write_text("groups:\n  - name: extra\n    rules:\n      - record: extra:up:sum\n        expr: sum(up)\n")
    handmade = rules_dir / "handmade.yaml"
    handmade.write_text("groups:\n  - name: handmade\n    rules:\n      - record: handmade:up:count\n"
                        "        expr: count(up)\n")
    cfg = _config(sandbox, tmp_path, tree / "alerts")
    assert sre("alerts", "apply", "--config", str(cfg)).returncode == 0
    assert (rules_dir / "extra.yaml").exists()

    extra.unlink()
    plan = sre("alerts", "plan", "--prune", "--config", str(cfg), "--output", "json")
    changes = {c["name"]: c["action"] for c in json.loads(plan.stdout)["changes"]}
    assert changes == {"demo.yaml": "unchanged", "extra.yaml": "delete"}
    proc = sre("alerts", "apply", "--prune", "--config", str(cfg), "--output", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _names(json.loads(proc.stdout)["results"][0], "delete") == ["extra.yaml"]
    assert not (rules_dir / "extra.yaml").exists() and handmade.exists()


def test_a_file_sre_did_not_write_is_refused_unless_adopted(sandbox: Stack, rules_dir: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(FIXTURES, tree)
    extra = tree / "alerts" / "extra.yaml"
    extra.write_text("groups:\n  - name: extra\n    rules:\n      - record: extra:up:sum\n        expr: sum(up)\n")
    handmade = "groups:\n  - name: handmade\n    rules:\n      - record: handmade:up:count\n        expr: count(up)\n"
    (rules_dir / "extra.yaml").write_text(handmade)  # someone's file, under the name sre renders
    cfg = _config(sandbox, tmp_path, tree / "alerts")

    plan = sre("alerts", "plan", "--config", str(cfg), "--output", "json")
    assert plan.returncode == 1
    change = next(c for c in json.loads(plan.stdout)["changes"] if c["name"] == "extra.yaml")
    assert change["action"] == "update" and "not owned by sre" in change["refused"]
    proc = sre("alerts", "apply", "--config", str(cfg), "--output", "json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (result,) = json.loads(proc.stdout)["results"]
    assert [c["name"] for c in result["refused"]] == ["extra.yaml"] and _names(result) == ["demo.yaml"]
    assert (rules_dir / "extra.yaml").read_text() == handmade
    assert result["confirmed_groups"] == 1, "the refused file's groups are not sre's to confirm"

    proc = sre("alerts", "apply", "--adopt", "extra.yaml", "--config", str(cfg), "--output", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _names(json.loads(proc.stdout)["results"][0]) == ["extra.yaml"]
    assert "extra:up:sum" in (rules_dir / "extra.yaml").read_text()
    assert sre("alerts", "plan", "--config", str(cfg)).returncode == 0


def _scraped(sandbox: Stack) -> None:
    """Wait for the first scrape: before it, a fresh Prometheus has no `up` series at all."""
    assert sandbox.prometheus
    url = f"{sandbox.prometheus.url}/api/v1/query"
    wait_until(lambda: httpx.get(url, params={"query": "up"}, timeout=5).json()["data"]["result"],
               timeout=20, what="the first scrape")


def test_lint_live_names_missing_metrics_and_labels(sandbox: Stack, tmp_path: Path) -> None:
    _scraped(sandbox)
    cfg = _config(sandbox, tmp_path, FIXTURES / "alerts")
    proc = sre("alerts", "lint", "--live", "--config", str(cfg), "--runbooks-dir", str(FIXTURES / "runbooks"),
               "--output", "json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    live = {(f["rule"], f["message"]) for f in json.loads(proc.stdout)["findings"] if f["check"] == "live"}
    assert ("job:demo_errors:rate5m", 'demo_errors_total: metric demo_errors_total has no series') in live
    assert ("DemoDown", 'up{job="demo"}: no series of up has job="demo"') in live
    assert len(live) == 2  # job:demo_errors:rate5m is recorded by the tree: its input is checked instead


def test_lint_live_lists_selectors_the_config_expects_absent_apart(sandbox: Stack, tmp_path: Path) -> None:
    _scraped(sandbox)
    cfg = _config(sandbox, tmp_path, FIXTURES / "alerts")
    data = yaml.safe_load(cfg.read_text())
    data["alerts"]["live_absent"] = {"demo_errors_total": "demo has no exporter here",
                                     r'up\{job="demo"\}': "nor a demo target"}
    cfg.write_text(yaml.safe_dump(data))
    proc = sre("alerts", "lint", "--live", "--config", str(cfg), "--runbooks-dir", str(FIXTURES / "runbooks"),
               "--output", "json")
    out = json.loads(proc.stdout)
    assert [f for f in out["findings"] if f["check"] == "live"] == []
    assert {(f["rule"], f["check"]) for f in out["expected_absent"]} == {
        ("job:demo_errors:rate5m", "live-absent"), ("DemoDown", "live-absent")}
    assert any("(listed: nor a demo target)" in f["message"] for f in out["expected_absent"])


def test_unreachable_prometheus_is_one_line_and_exit_2(sandbox: Stack, tmp_path: Path) -> None:
    cfg = _config(sandbox, tmp_path, FIXTURES / "alerts", prom_url="http://127.0.0.1:9")
    for args in (("lint", "--live", "--runbooks-dir", str(FIXTURES / "runbooks")), ("apply",)):
        proc = sre("alerts", *args, "--config", str(cfg))
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert proc.stderr.startswith("error: Prometheus at http://127.0.0.1:9 is unreachable")
        assert len(proc.stderr.strip().splitlines()) == 1


def test_sre_up_step_loads_the_shipped_rules(sandbox: Stack, rules_dir: Path, sandbox_config_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from sre.config import load_config
    from sre.sandbox.steps import alert_rules

    monkeypatch.chdir("/")  # the shipped rules are found whatever the working directory
    (note,) = alert_rules(sandbox, load_config(sandbox_config_path), None)
    n_groups = sum(len(f.data["groups"]) for f in desired_files(ROOT / "alerts", "https://x"))
    assert note.startswith(f"alerts: {n_groups} rule groups from {ROOT / 'alerts'} loaded into Prometheus")
