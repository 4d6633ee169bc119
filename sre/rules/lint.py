"""`sre alerts lint`: promtool on the rendered rules, plus the checks promtool cannot make.

The checks, each named in its findings:

- promtool         `promtool check rules` on the rules as rendered (and on the runbooks' verify queries)
- promql           expressions the PromQL parser refuses, with the line and column of the problem
- slo-tests        SLOs whose tests cannot be generated (`sre alerts test` reports those)
- yaml, structure  files that do not parse, or are not rule groups
- slo-spec         SLO specs that do not validate
- labels           a `severity` label of page, ticket or info on every alert
- annotations      `summary` and `description` on every alert; `runbook_url` only from config
- for              every paging alert waits (`for:`) before it pages
- duplicate        an alert name defined twice
- never-matches    a selector no series can satisfy (contradicting matchers, `le` off a bucket,
                   a histogram's bare name, the service's metrics under a job other than its own)
- runbook          a runbook per alert, naming that alert, with valid front matter and the
                   alert's severity; no runbook for an alert that does not exist; templates
                   only use labels the alert carries (as its firing tests show)
- tests            each alert has a promtool test where it fires and one where it does not
- runbook-tests    `runbooks/tests/*.yaml` pass (`sre remediation test`); every runbook whose action
                   changes something has a case that acts, one that refuses, and a
                   "## Why this is safe to automate" section

Everything is parsed once; promtool runs in its own process while the other checks run here.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections import defaultdict
from collections.abc import Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sre.remediation.runbook import SEVERITIES, Runbook, scan_runbooks
from sre.remediation.runbook_tests import coverage_problems, needs_tests, run_suite, tests_dir
from sre.rules import promtool
from sre.rules.promql import PromQLSyntaxError, Selector, selectors_many
from sre.rules.render import RenderedFile, render_files
from sre.rules.slo_tests import generated_alerts
from sre.rules.tree import Finding, Rule, Tree, display_path, load_tree, rule_sources, runbook_url
from sre.rules.unittests import Suite, load_suite

SERVICE_JOB = "sre"  # the scrape job of this service; its metrics' own `job` label becomes exported_job
REQUIRED_ANNOTATIONS = ("summary", "description")
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


# ---------------------------------------------------------------- rule checks


def check_rule_fields(rule: Rule, base_url: str) -> list[Finding]:
    out: list[Finding] = []
    if rule.kind != "alert":
        return out

    def finding(check: str, msg: str) -> None:
        out.append(Finding(check, rule.file, msg, rule.group, rule.name))

    sev = rule.severity
    if sev is None:
        finding("labels", f"no severity label (give one of {', '.join(SEVERITIES)})")
    elif sev not in SEVERITIES:
        finding("labels", f"severity {sev!r} is not one of {', '.join(SEVERITIES)}")
    ann = rule.annotations
    for key in REQUIRED_ANNOTATIONS:
        if not ann.get(key, "").strip():
            finding("annotations", f"no {key} annotation")
    if "runbook_url" in ann and ann["runbook_url"] != runbook_url(base_url, rule.name):
        finding("annotations", "runbook_url is added from config alerts.runbook_base_url: remove it here")
    if sev == "page" and rule.for_ is None:
        finding("for", "a paging alert needs `for:` (how long the condition holds before it pages)")
    return out


def _fullmatch(pattern: str, value: str) -> bool | None:
    try:
        return re.fullmatch(pattern, value) is not None
    except re.error:
        return None  # RE2 syntax Python lacks: promtool judges the regex itself


def never_matches(sel: Selector, histograms: set[str]) -> str | None:
    """Why no series can ever satisfy `sel`, or None."""
    labels = [m.label for m in sel.matchers]
    if sel.name:
        labels.append("__name__")
    if len(set(labels)) != len(labels):  # two matchers on one label: can they both hold?
        by_label: dict[str, list[tuple[str, str]]] = defaultdict(list)
        if sel.name:
            by_label["__name__"].append(("=", sel.name))
        for m in sel.matchers:
            by_label[m.label].append((m.op, m.value))
        for label, ms in by_label.items():
            eq = sorted({v for op, v in ms if op == "="})
            if len(eq) > 1:
                return f"{label} cannot equal both {eq[0]!r} and {eq[1]!r}"
            if not eq:
                continue
            value = eq[0]
            for op, v in ms:
                if op == "!=" and v == value:
                    return f"{label} cannot both equal and differ from {value!r}"
                if op == "=~" and _fullmatch(v, value) is False:
                    return f"{label}={value!r} never matches the regex {v!r}"
                if op == "!~" and _fullmatch(v, value) is True:
                    return f"{label}={value!r} is excluded by !~{v!r}"
    name = sel.metric()
    if name is None:
        return None
    if name in histograms:
        return f"{name} is a histogram: its series are {name}_bucket, {name}_sum and {name}_count"
    for m in sel.matchers:
        if m.label == "le" and m.op in ("=", "=~") and m.value and not name.endswith("_bucket"):
            return f"only histogram _bucket series carry an le label, not {name}"
        if m.label == "job" and m.op == "=" and m.value != SERVICE_JOB and name.startswith("sre_"):
            return (f"the service's metrics are scraped as job={SERVICE_JOB!r}; their own job label is "
                    f"exported_job (use exported_job={m.value!r})")
    return None


def check_selectors(rules: list[Rule]) -> list[Finding]:
    parsed: list[tuple[Rule, list[Selector]]] = []
    out: list[Finding] = []
    for rule, found in zip(rules, selectors_many([r.expr for r in rules]), strict=True):
        if isinstance(found, PromQLSyntaxError):
            # promtool reports it too, in its own words; this one says where
            out.append(Finding("promql", rule.file, f"expr: {found}", rule.group, rule.name))
            continue
        parsed.append((rule, found))
    histograms = {s.name[: -len("_bucket")] for _, sels in parsed for s in sels
                  if s.name and s.name.endswith("_bucket")}
    for rule, sels in parsed:
        for sel in sels:
            why = never_matches(sel, histograms)
            if why:
                out.append(Finding("never-matches", rule.file, f"{sel.promql()} can never match: {why}",
                                   rule.group, rule.name))
    return out


def check_duplicates(rules: list[Rule]) -> list[Finding]:
    seen: dict[str, Rule] = {}
    out = []
    for rule in rules:
        if rule.kind != "alert":
            continue
        first = seen.setdefault(rule.name, rule)
        if first is not rule:
            out.append(Finding("duplicate", rule.file, f"alert {rule.name} is also defined in {first.file} "
                                                       f'(group "{first.group}"): alert names must be unique',
                               rule.group, rule.name))
    return out


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


def check_tests(alerts: dict[str, Rule], suite: Suite, *, covered: Set[str] = frozenset()) -> list[Finding]:
    """Every alert fires in a test and stays quiet in another (`covered`: by generated tests)."""
    out = list(suite.findings)
    cov = suite.coverage()
    for name, rule in alerts.items():
        fires, quiet = (True, True) if name in covered else cov.get(name, (False, False))
        if not fires:
            out.append(Finding("tests", rule.file, "no promtool test where it fires (alerts/tests/)", rule.group,
                               name))
        if not quiet:
            out.append(Finding("tests", rule.file, "no promtool test where it stays quiet (alerts/tests/)",
                               rule.group, name))
    for case in suite.cases:
        if case.alertname not in alerts:
            out.append(Finding("tests", case.file, f"tests[{case.test}]: alert {case.alertname} does not exist"))
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
