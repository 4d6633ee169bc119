"""`sre alerts lint` finds each kind of defect, one fixture per kind, and nothing else."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from sre.lint import lint
from tests.cli import sre

FIXTURES = Path(__file__).parent.parent / "fixtures" / "alerts_lint"
DEFECTS = sorted(p.name for p in (FIXTURES / "defects").iterdir() if p.is_dir())
BASE_URL = "https://runbooks.example.com"


def tree_with(defect: str | None, root: Path) -> Path:
    """The base tree under `root` with the defect's files laid over it (and its deletions)."""
    shutil.copytree(FIXTURES / "base", root, dirs_exist_ok=True)
    if defect is None:
        return root
    overlay = FIXTURES / "defects" / defect
    expect = yaml.safe_load((overlay / "expect.yaml").read_text())
    for path in overlay.rglob("*"):
        rel = path.relative_to(overlay)
        if path.is_file() and rel.name != "expect.yaml":
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, root / rel)
    for rel in expect.get("delete", []):
        (root / rel).unlink()
    return root


def test_the_base_tree_is_clean(tmp_path: Path) -> None:
    root = tree_with(None, tmp_path)
    report = lint(root / "alerts", root / "runbooks", BASE_URL)
    assert report.findings == []
    assert report.counts["alerts"] == 2 and report.counts["runbooks"] == 2


@pytest.mark.parametrize("defect", DEFECTS)
def test_each_defect_is_found_alone(defect: str, tmp_path: Path) -> None:
    root = tree_with(defect, tmp_path)
    expect = yaml.safe_load((FIXTURES / "defects" / defect / "expect.yaml").read_text())
    report = lint(root / "alerts", root / "runbooks", BASE_URL)
    assert len(report.findings) == 1, "\n".join(str(f) for f in report.findings)
    found = report.findings[0]
    assert found.check == expect["check"]
    assert found.file.endswith(expect["file"]), found.file
    assert found.group == expect.get("group")
    assert found.rule == expect.get("rule")
    assert expect["contains"] in found.message, found.message


def test_the_shipped_tree_is_clean() -> None:
    root = Path(__file__).parents[2]
    report = lint(root / "alerts", root / "runbooks", BASE_URL)
    assert report.findings == [], "\n".join(str(f) for f in report.findings)
    assert report.counts["alerts"] >= 40
    assert report.counts["runbooks"] == report.counts["alerts"]


def test_cli_names_file_group_rule_and_where_the_syntax_error_is(tmp_path: Path) -> None:
    root = tree_with("promql_error", tmp_path)
    proc = sre("alerts", "lint", "--alerts-dir", str(root / "alerts"), "--runbooks-dir", str(root / "runbooks"),
               "--output", "json")
    assert proc.returncode == 1, proc.stderr
    (finding,) = json.loads(proc.stdout)["findings"]
    assert finding["file"].endswith("alerts/demo.yaml")
    assert (finding["group"], finding["rule"], finding["check"]) == ("demo", "job:demo_errors:rate5m", "promql")
    assert "column 44: unclosed left parenthesis" in finding["message"]
    table = sre("alerts", "lint", "--alerts-dir", str(root / "alerts"), "--runbooks-dir", str(root / "runbooks"))
    assert table.returncode == 1
    assert "Traceback" not in table.stderr


def test_cli_lint_and_test_pass_on_the_shipped_tree() -> None:
    root = Path(__file__).parents[2]
    lint_run = sre("alerts", "lint", cwd=root)
    assert lint_run.returncode == 0, lint_run.stdout + lint_run.stderr
    test_run = sre("alerts", "test", "--output", "json", cwd=root)
    assert test_run.returncode == 0, test_run.stdout + test_run.stderr
    report = json.loads(test_run.stdout)
    assert report["ok"] and report["findings"] == []
    assert all(f["ok"] for f in report["files"]) and report["alerts"] >= 40
