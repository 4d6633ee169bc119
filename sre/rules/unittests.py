"""promtool unit tests (`alerts/tests/*.yaml`) over the rendered rules, and their coverage.

Test files are ordinary promtool test files. Their `rule_files` name source files under
`alerts/` (`../api.yaml` or `api.yaml`; `../slos/api.yaml` for the rules an SLO spec
generates); the runner points them at the rendered files instead, and adds to each expected
alert the `runbook_url` annotation that rendering adds from config, so tests do not repeat it.
All files go to one `promtool test rules` call.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sre.rules.render import RenderedFile
from sre.rules.tree import RULE_SUFFIXES, Finding, display_path, read_yaml, runbook_url


@dataclass
class AlertCase:
    file: str  # as findings name it
    test: int  # index of the test in the file
    eval_time: str
    alertname: str
    fires: bool
    exp_labels: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Suite:
    root: Path
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # shown path -> parsed test file
    rule_files: dict[str, list[str]] = field(default_factory=dict)  # shown path -> sources it loads
    cases: list[AlertCase] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def coverage(self) -> dict[str, tuple[bool, bool]]:
        """alertname -> (has a test where it fires, has a test where it does not)."""
        out: dict[str, tuple[bool, bool]] = {}
        for c in self.cases:
            fires, quiet = out.get(c.alertname, (False, False))
            out[c.alertname] = (fires or c.fires, quiet or not c.fires)
        return out

    def fired_labels(self, alertname: str) -> list[dict[str, str]]:
        return [labels for c in self.cases if c.alertname == alertname and c.fires for labels in c.exp_labels]


def _source_ref(entry: str, tests_dir: Path, root: Path) -> str | None:
    for base in (tests_dir, root):
        candidate = (base / entry).resolve()
        try:
            rel = candidate.relative_to(root.resolve()).as_posix()
        except ValueError:
            continue
        if candidate.is_file():
            return rel
    return None


def load_suite(root: str | Path) -> Suite:
    root = Path(root)
    tests_dir = root / "tests"
    suite = Suite(root=root)
    if not tests_dir.is_dir():
        return suite
    for path in sorted(p for p in tests_dir.rglob("*") if p.suffix in RULE_SUFFIXES and p.is_file()):
        rel = display_path(path)
        data = read_yaml(path, rel, suite.findings)
        if data is None:
            continue
        if not isinstance(data, dict) or not isinstance(data.get("tests"), list):
            suite.findings.append(Finding("test-file", rel, "expected a promtool test file with a `tests:` list"))
            continue
        sources = []
        for entry in data.get("rule_files") or []:
            ref = _source_ref(str(entry), tests_dir, root)
            if ref is None:
                suite.findings.append(Finding("test-file", rel, f"rule_files: {entry} is not a file under {root}"))
            else:
                sources.append(ref)
        suite.files[rel] = data
        suite.rule_files[rel] = sources
        for ti, test in enumerate(data["tests"]):
            for case in (test or {}).get("alert_rule_test") or []:
                if not isinstance(case, dict) or "alertname" not in case:
                    continue
                exp = case.get("exp_alerts") or []
                suite.cases.append(AlertCase(
                    rel, ti, str(case.get("eval_time", "")), str(case["alertname"]), bool(exp),
                    [{str(k): str(v) for k, v in (e.get("exp_labels") or {}).items()} for e in exp
                     if isinstance(e, dict)],
                ))
    return suite


def prepare(suite: Suite, rendered: list[RenderedFile], workdir: Path, base_url: str) -> dict[Path, str]:
    """Write the rendered rules and the rewritten tests under `workdir`; test path -> source test file."""
    rules_dir, tests_dir = workdir / "rules", workdir / "tests"
    rules_dir.mkdir(parents=True, exist_ok=True)
    tests_dir.mkdir(parents=True, exist_ok=True)
    by_source = {}
    for f in rendered:
        path = rules_dir / f.name
        path.write_text(json.dumps(f.data))  # JSON is YAML; promtool reads it as fast as it can
        by_source[f.source] = path
    out: dict[Path, str] = {}
    for rel, data in suite.files.items():
        doc = dict(data)
        doc["rule_files"] = [str(by_source[s]) for s in suite.rule_files.get(rel, []) if s in by_source]
        doc["tests"] = [_with_runbook_urls(t, base_url) for t in data["tests"]]
        path = tests_dir / rel.strip("/").replace("/", "__")
        path.write_text(json.dumps(doc))
        out[path] = rel
    return out


def _with_runbook_urls(test: Any, base_url: str) -> Any:
    if not isinstance(test, dict):
        return test
    cases = []
    for case in test.get("alert_rule_test") or []:
        if isinstance(case, dict) and case.get("exp_alerts"):
            name = str(case.get("alertname"))
            exp = []
            for e in case["exp_alerts"]:
                if isinstance(e, dict):
                    ann = dict(e.get("exp_annotations") or {})
                    ann.setdefault("runbook_url", runbook_url(base_url, name))
                    e = {**e, "exp_annotations": ann}
                exp.append(e)
            case = {**case, "exp_alerts": exp}
        cases.append(case)
    return {**test, "alert_rule_test": cases} if "alert_rule_test" in test else test


@dataclass
class FileResult:
    file: str
    ok: bool
    output: str = ""


def parse_test_output(stdout: str, stderr: str, files: dict[Path, str]) -> list[FileResult]:
    """Per test file, SUCCESS or the failure details.

    promtool writes `Unit Testing: <file>` (and SUCCESS) on stdout, and each failing file's
    `FAILED:` block on stderr, in the same order: the n-th block belongs to the n-th file
    without SUCCESS.
    """
    names = {str(p): rel for p, rel in files.items()}
    order: list[FileResult] = []
    for line in stdout.splitlines():
        if line.startswith("Unit Testing:"):
            path = line.split(":", 1)[1].strip()
            order.append(FileResult(names.get(path, path), False))
        elif line.strip() == "SUCCESS" and order:
            order[-1].ok = True
    blocks = [b.strip("\n") for b in re.split(r"^\s*FAILED:\s*$", stderr, flags=re.M)[1:]]
    failed = [r for r in order if not r.ok]
    for result, block in zip(failed, blocks, strict=False):
        for p, rel in names.items():
            block = block.replace(p, rel)
        result.output = block
    reported = {r.file for r in order}
    for rel in files.values():
        if rel not in reported:
            order.append(FileResult(rel, False, stderr.strip() or "promtool did not report on this file"))
    return sorted(order, key=lambda r: r.file)
