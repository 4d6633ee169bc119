"""`sre alerts test`: the promtool unit tests of the tree, and the rule that every alert has them."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sre.rules import promtool
from sre.rules.render import render_files
from sre.rules.tree import Finding, Rule, load_tree
from sre.rules.unittests import FileResult, load_suite, parse_test_output, prepare


@dataclass
class UnitTestReport:
    files: list[FileResult] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    alerts: int = 0
    cases: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.findings and all(f.ok for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "alerts": self.alerts, "cases": self.cases, "seconds": round(self.seconds, 3),
                "files": [{"file": f.file, "ok": f.ok, "output": f.output} for f in self.files],
                "findings": [f.to_dict() for f in self.findings]}


def run_tests(alerts_dir: str | Path, runbook_base_url: str) -> UnitTestReport:
    """Render, point the test files at the rendered rules, run promtool once, check coverage."""
    from sre.rules.lint import check_tests

    t0 = time.monotonic()
    tree = load_tree(alerts_dir)
    suite = load_suite(alerts_dir)
    alerts: dict[str, Rule] = {}
    for r in tree.alerts():
        alerts.setdefault(r.name, r)
    report = UnitTestReport(alerts=len(alerts), cases=len(suite.cases))
    report.findings = list(tree.findings) + check_tests(alerts, suite)
    if suite.files:
        with tempfile.TemporaryDirectory(prefix="sre-test-") as tmp:
            files = prepare(suite, render_files(tree, runbook_base_url), Path(tmp), runbook_base_url)
            _, out, err = promtool.start(["test", "rules", *[str(p) for p in files]]).wait()
            report.files = parse_test_output(out, err, files)
    report.seconds = time.monotonic() - t0
    return report
