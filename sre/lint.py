"""`sre alerts lint`: the content tree (rules, SLO specs, runbooks, tests) linted at once:
promtool on the rendered rules, plus the checks promtool cannot make.

The checks, each named in its findings:

- promtool         `promtool check rules` on the rules as rendered (and on the runbooks' verify queries)
- promql           expressions the PromQL parser refuses, with the line and column of the problem
- slo-tests        SLOs whose tests cannot be generated (`sre alerts test` reports those)
- yaml, structure  files that do not parse, or are not rule groups
- slo-spec         SLO specs that do not validate
- labels, annotations, for, duplicate, never-matches
                   the rule checks of `sre.rules.lint` (described there)
- runbook          a runbook per alert, naming that alert, with valid front matter and the
                   alert's severity; no runbook for an alert that does not exist; templates
                   only use labels the alert carries (as its firing tests show)
- tests            each alert has a promtool test where it fires and one where it does not
- runbook-tests    `runbooks/tests/*.yaml` pass (`sre remediation test`); every runbook whose action
                   changes something has a case that acts, one that refuses, and a
                   "## Why this is safe to automate" section

The rule checks are `sre.rules.lint`'s; the runbook checks are here, since they need both the
rules tree and the remediation engine. Everything is parsed once; promtool runs in its own
process while the other checks run here.
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sre.remediation.runbook import Runbook, scan_runbooks
from sre.remediation.runbook_tests import coverage_problems, needs_tests, run_suite, tests_dir
from sre.rules import promtool
from sre.rules.lint import check_duplicates, check_rule_fields, check_selectors, check_tests
from sre.rules.loader import load_tree, rule_sources
from sre.rules.render import RenderedFile, render_files
from sre.rules.slo_tests import generated_alerts
from sre.rules.tree import SEVERITIES, Finding, Rule, Tree, display_path
from sre.rules.unittests import Suite, load_suite

_TEMPLATE = re.compile(r"\{\{.*?\}\}")


@dataclass
class LintReport:
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    tree: Tree | None = None

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "counts": self.counts, "findings": [f.to_dict() for f in self.findings],
                "timings": self.timings}


# ---------------------------------------------------------------- runbooks and tests


def check_runbooks(alerts: dict[str, Rule], runbooks_dir: Path,
                   suite: Suite | None) -> tuple[list[Finding], dict[str, Runbook]]:
    runbooks, errors = scan_runbooks(runbooks_dir)
    out = [Finding("runbook", display_path(e.path), p) for e in errors for p in e.problems]
    bad = {e.path.stem for e in errors}
    for name, rule in alerts.items():
        rb = runbooks.get(name)
        if rb is None:
            if name not in bad:
                out.append(Finding("runbook", rule.file, f"no runbook: write {display_path(runbooks_dir / (name + '.md'))}",
                                   rule.group, name))
            continue
        if rule.severity in SEVERITIES and rb.severity != rule.severity:
            out.append(Finding("runbook", display_path(rb.path), f"severity: {rb.severity} but the alert says "
                                                            f"{rule.severity}"))
        if rb.remediation is not None and suite is not None:
            fired = suite.fired_labels(name)
            needed = rb.remediation.label_refs()
            for labels in fired[:1]:
                missing = sorted(needed - set(labels))
                if missing:
                    out.append(Finding("runbook", display_path(rb.path),
                                       f"remediation uses label(s) {', '.join(missing)} that {name} does not "
                                       f"carry (see its firing tests)"))
    for name, rb in runbooks.items():
        if name not in alerts:
            out.append(Finding("runbook", display_path(rb.path), f"alert: {name} is not an alert in the rules tree"))
    return out, runbooks


SAFE_SECTION = "## Why this is safe to automate"


def check_runbook_tests(runbooks_dir: Path, runbooks: dict[str, Runbook]) -> list[Finding]:
    """The runbook tests pass, and cover every runbook that changes something both ways."""
    result = run_suite(runbooks_dir, runbooks=runbooks)
    where = display_path(tests_dir(runbooks_dir))
    out = [Finding("runbook-tests", where, e) for e in result.errors]
    out += [Finding("runbook-tests", display_path(Path(c.file)), f"{c.name}: {'; '.join(c.problems)}")
            for c in result.cases if not c.ok]
    out += [Finding("runbook-tests", display_path(rb.path), msg) for rb, msg in coverage_problems(runbooks, result)]
    out += [Finding("runbook", display_path(rb.path), f"automated: add a '{SAFE_SECTION}' section")
            for rb in runbooks.values() if needs_tests(rb) and SAFE_SECTION not in rb.body]
    return out


def verify_query_file(runbooks: dict[str, Runbook]) -> tuple[dict[str, Any], list[Runbook]]:
    """A rule file of the runbooks' verify queries, so promtool checks their PromQL too."""
    rules, order = [], []
    for name in sorted(runbooks):
        rb = runbooks[name]
        if rb.remediation is None or rb.remediation.verify is None:
            continue
        expr = _TEMPLATE.sub("sre_template_value", rb.remediation.verify.query)
        rules.append({"record": f"sre:runbook_verify:{name}", "expr": expr})
        order.append(rb)
    return {"groups": [{"name": "runbook-verify", "rules": rules}]} if rules else {"groups": []}, order


# ---------------------------------------------------------------- the whole lint


def lint(root: str | Path, runbooks_dir: str | Path, runbook_base_url: str, *,
         tree: Tree | None = None, slo_severity: dict[str, str] | None = None) -> LintReport:
    """Lint the tree under `root` with the runbooks of `runbooks_dir`.

    promtool starts first, on the hand-written rule files as they are: rendering them only adds
    the runbook_url annotation, a plain string (checked here not to be a template), so promtool's
    verdict on a source file is its verdict on the rendered one, and it can work on the other
    core while this process parses. The rules the SLO specs generate, and the runbooks' verify
    queries, go to promtool as rendered, as soon as they exist. (`sre alerts apply` runs promtool
    on the exact rendered bytes before it writes them.)
    """
    t0 = time.perf_counter()
    root, runbooks_dir = Path(root), Path(runbooks_dir)
    sources = [root / f.source for f in tree.files if not f.generated] if tree else rule_sources(root)
    report = LintReport()
    with tempfile.TemporaryDirectory(prefix="sre-lint-") as tmp:
        src_run = promtool.start_check(sources) if sources else None
        tree = tree or load_tree(root, slo_severity=slo_severity)
        report.tree = tree
        gen_paths = _write_for_promtool(render_files(tree, runbook_base_url, generated_only=True), Path(tmp))
        gen_run = promtool.start_check(list(gen_paths)) if gen_paths else None
        t_render = time.perf_counter()

        rules = tree.rules()
        alerts: dict[str, Rule] = {}
        for r in rules:
            if r.kind == "alert":
                alerts.setdefault(r.name, r)
        findings = list(tree.findings)
        if "{{" in runbook_base_url:
            findings.append(Finding("annotations", "sre.yaml", "alerts.runbook_base_url must not contain {{ "
                                                               "(annotations are templates)"))
        for rule in rules:
            findings += check_rule_fields(rule, runbook_base_url)
        findings += check_duplicates(rules)
        findings += check_selectors(rules)
        suite = load_suite(root)
        findings += check_tests(alerts, suite, covered=generated_alerts(tree))
        rb_findings, runbooks = check_runbooks(alerts, runbooks_dir, suite)
        findings += rb_findings
        findings += check_runbook_tests(runbooks_dir, runbooks)
        verify_data, verify_order = verify_query_file(runbooks)
        verify_run = None
        if verify_order:
            vpath = Path(tmp) / "runbook-verify.json"
            vpath.write_text(_json(verify_data))
            verify_run = promtool.start_check([vpath])
        t_own = time.perf_counter()

        unparsed = {f.file for f in tree.findings if f.check in ("yaml", "structure")}
        if src_run is not None:
            _, _, err = src_run.wait()
            findings += [f for f in promtool.check_findings(err, {p: display_path(p) for p in sources})
                         if f.file not in unparsed]  # already reported, in this file's own words
        if gen_run is not None:
            _, _, err = gen_run.wait()
            findings += promtool.check_findings(err, {p: display_path(root / f.source) for p, f in gen_paths.items()})
        if verify_run is not None:
            _, _, err = verify_run.wait()
            by_record = {f"sre:runbook_verify:{rb.alert}": rb for rb in verify_order}
            for pf in promtool.check_findings(err, {vpath: "runbook-verify"}):
                rb = by_record.get(pf.rule or "")
                where = display_path(rb.path) if rb else display_path(runbooks_dir)
                findings.append(Finding("promtool", where, f"remediation.verify.query: {pf.message}"))
    # a syntax error the parser found (with its position) is not repeated in promtool's words
    flagged = {(f.file, f.group, f.rule) for f in findings if f.check == "promql"}
    findings = [f for f in findings if not (f.check == "promtool" and (f.file, f.group, f.rule) in flagged
                                            and "parse error" in f.message)]
    report.findings = _sorted(findings)
    report.counts = {"files": len(tree.files), "groups": sum(len(f.groups) for f in tree.files),
                     "rules": len(rules), "alerts": len(alerts), "runbooks": len(runbooks),
                     "test_cases": len(suite.cases)}
    t_end = time.perf_counter()
    report.timings = {"parse_render": round(t_render - t0, 4), "own_checks": round(t_own - t_render, 4),
                      "promtool_wait": round(t_end - t_own, 4), "total": round(t_end - t0, 4)}
    return report


def _sorted(findings: list[Finding]) -> list[Finding]:
    seen: set[Finding] = set()
    out = []
    for f in sorted(findings, key=lambda f: (f.file, f.group or "", f.rule or "", f.check, f.message)):
        if f not in seen:
            seen.add(f)
            out.append(f)
    return out


def _json(data: Any) -> str:
    import json

    return json.dumps(data)


def _write_for_promtool(rendered: list[RenderedFile], tmp: Path) -> dict[Path, RenderedFile]:
    """The rendered files as JSON (valid YAML, and the cheapest to write and for promtool to read)."""
    out = {}
    for f in rendered:
        p = tmp / f.name
        p.write_text(_json(f.data))
        out[p] = f
    return out
