"""`sre alerts test`: the promtool unit tests of the tree, the tests generated from each SLO spec,
and the rule that every alert has tests."""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sre.rules import promtool
from sre.rules.lint import check_tests
from sre.rules.loader import load_tree
from sre.rules.render import RenderedFile, render_files
from sre.rules.slo_tests import CannotGenerate, generated_alerts, generated_tests, test_group
from sre.rules.tree import Finding, Rule, Tree, display_path
from sre.rules.unittests import FileResult, load_suite, parse_test_output, prepare

GENERATED = "generated"  # how results of generated tests are named: generated/<slo>/<page|ticket>


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


def write_generated(tree: Tree, rendered: list[RenderedFile], workdir: Path,
                    severity: dict[str, str] | None = None) -> tuple[dict[Path, str], list[Finding]]:
    """The generated tests of every SLO under `workdir`; test path -> its name in results."""
    by_source = {f.source: f for f in rendered}
    out: dict[Path, str] = {}
    findings: list[Finding] = []
    gen_dir = workdir / GENERATED
    gen_dir.mkdir(parents=True, exist_ok=True)
    for slo in tree.slo_specs:
        source = next((f for f in tree.files if f.generated and any(g.name == f"slo-{slo.name}" for g in f.groups)),
                      None)
        if source is None or source.source not in by_source:
            continue
        group = next(g for g in by_source[source.source].data["groups"] if g["name"] == f"slo-{slo.name}")
        labels = {k: v for k, v in group["rules"][0].get("labels", {}).items()}
        try:
            docs = generated_tests(slo, labels, severity)
        except CannotGenerate as exc:
            findings.append(Finding("slo-tests", display_path(tree.root / source.source),
                                    f"slo {slo.name}: cannot generate tests: {exc}"))
            continue
        for kind, (alert, doc) in docs.items():
            rules_path = gen_dir / f"{slo.name}.{alert}.rules.json"
            if not rules_path.exists():
                rules_path.write_text(json.dumps({"groups": [test_group(group, alert)]}))
            path = gen_dir / f"{slo.name}.{kind}.json"
            path.write_text(json.dumps({"rule_files": [str(rules_path)], **doc}))
            out[path] = f"{GENERATED}/{slo.name}/{kind}"
    return out, findings


def run_tests(alerts_dir: str | Path, runbook_base_url: str, *, generated: bool = True,
              slo_severity: dict[str, str] | None = None) -> UnitTestReport:
    """Render, point the test files at the rendered rules, add the SLOs' generated tests, run
    promtool once, check coverage."""

    t0 = time.monotonic()
    tree = load_tree(alerts_dir, slo_severity=slo_severity)
    suite = load_suite(alerts_dir)
    alerts: dict[str, Rule] = {}
    for r in tree.alerts():
        alerts.setdefault(r.name, r)
    report = UnitTestReport(alerts=len(alerts), cases=len(suite.cases))
    covered = generated_alerts(tree) if generated else set()
    report.findings = list(tree.findings) + check_tests(alerts, suite, covered=covered)
    with tempfile.TemporaryDirectory(prefix="sre-test-") as tmp:
        rendered = render_files(tree, runbook_base_url)
        files = prepare(suite, rendered, Path(tmp), runbook_base_url) if suite.files else {}
        gen_files: dict[Path, str] = {}
        gen_run = None
        if generated:
            gen_files, gen_findings = write_generated(tree, rendered, Path(tmp), slo_severity)
            report.findings += gen_findings
            report.cases += sum(len(t.get("alert_rule_test", [])) for p in gen_files
                                for t in json.loads(p.read_text())["tests"])
            # a second promtool process: the generated tests are the slow part (days of samples)
            # and run on the other core while the hand-written ones run
            gen_run = promtool.start(["test", "rules", *[str(p) for p in gen_files]]) if gen_files else None
        if files:
            _, out, err = promtool.start(["test", "rules", *[str(p) for p in files]]).wait()
            report.files = parse_test_output(out, err, files)
        if generated and gen_run is not None:
            _, out, err = gen_run.wait()
            report.files += parse_test_output(out, err, gen_files)
    report.seconds = time.monotonic() - t0
    return report
