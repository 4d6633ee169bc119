"""The rules tree's model: `alerts/*.yaml` rule groups as `RuleFile`s of `Group`s of `Rule`s, and
`Finding`s; reading one rule file. `sre.rules.loader.load_tree` reads the whole tree.

Reading never raises for bad content: each problem becomes a `Finding` naming file, group and
rule, so `sre alerts lint` can report them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml

from sre.hashing import content_hash
from sre.rules import yamlio

RULE_SUFFIXES = (".yaml", ".yml")
# The `severity` label every alert carries, and every runbook repeats (docs/decisions/runbook-severity-levels.md).
Severity = Literal["page", "ticket", "info"]
SEVERITIES: tuple[str, ...] = ("page", "ticket", "info")
SPECIAL_DIRS = ("tests", "slos")


@dataclass(frozen=True)
class Finding:
    """One problem found in the tree: where it is, which check found it, and what to do."""

    check: str
    file: str
    message: str
    group: str | None = None
    rule: str | None = None

    def where(self) -> str:
        out = self.file
        if self.group is not None:
            out += f': group "{self.group}"'
        if self.rule is not None:
            out += f', rule "{self.rule}"'
        return out

    def __str__(self) -> str:
        return f"{self.where()}: {self.message} [{self.check}]"

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "file": self.file, "group": self.group, "rule": self.rule,
                "message": self.message}


@dataclass
class Rule:
    kind: Literal["alert", "record"]
    name: str
    expr: str
    raw: dict[str, Any]
    file: str  # as findings name it (display_path)
    group: str
    index: int  # 1-based within its group, as promtool counts

    @cached_property
    def labels(self) -> dict[str, str]:
        labels = self.raw.get("labels")
        return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}

    @cached_property
    def annotations(self) -> dict[str, str]:
        ann = self.raw.get("annotations")
        return {str(k): str(v) for k, v in ann.items()} if isinstance(ann, dict) else {}

    @property
    def for_(self) -> str | None:
        value = self.raw.get("for")
        return None if value in (None, "", "0", "0s", "0m") else str(value)

    @property
    def severity(self) -> str | None:
        return self.labels.get("severity")


@dataclass
class Group:
    name: str
    rules: list[Rule]
    raw: dict[str, Any]


@dataclass
class RuleFile:
    """One rendered rule file: its source (a rules file or an SLO file) and its groups."""

    source: str  # path relative to the alerts dir, e.g. "api.yaml" or "slos/api.yaml"
    out_name: str  # the rendered file's name, e.g. "api.yaml" or "slos-api.yaml"
    groups: list[Group]
    generated: bool = False

    def data(self) -> dict[str, Any]:
        return {"groups": [g.raw for g in self.groups]}

    def hash(self) -> str:
        return content_hash(self.data())


@dataclass
class Tree:
    root: Path
    files: list[RuleFile] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    slo_specs: list[Any] = field(default_factory=list)  # sre.rules.slo.Slo, for docs and dashboards

    def rules(self) -> list[Rule]:
        return [r for f in self.files for g in f.groups for r in g.rules]

    def alerts(self) -> list[Rule]:
        return [r for r in self.rules() if r.kind == "alert"]

    def records(self) -> set[str]:
        return {r.name for r in self.rules() if r.kind == "record"}

    def file(self, source: str) -> RuleFile | None:
        return next((f for f in self.files if f.source == source), None)


def display_path(path: Path) -> str:
    """How findings name a file: relative to the working directory when under it, else absolute."""
    p = path if path.is_absolute() else Path.cwd() / path
    try:
        return p.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return p.as_posix()


def out_name(source: str) -> str:
    """`api.yaml` -> `api.yaml`; `slos/api.yaml` -> `slos-api.yaml`; `team/x.yml` -> `team-x.yaml`."""
    stem = source.rsplit(".", 1)[0]
    return stem.replace("/", "-") + ".yaml"


def read_yaml(path: Path, rel: str, findings: list[Finding]) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        findings.append(Finding("yaml", rel, f"cannot read: {exc.strerror or exc}"))
        return None
    try:
        return yamlio.load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        findings.append(Finding("yaml", rel, f"{where}not valid YAML ({getattr(exc, 'problem', None) or exc})"))
        return None


def parse_groups(data: Any, rel: str, findings: list[Finding]) -> list[Group]:
    """The groups of one rule-file document; structural problems become findings."""
    if data is None:
        return []
    if not isinstance(data, dict) or not isinstance(data.get("groups"), list):
        findings.append(Finding("structure", rel, "expected a mapping with a `groups:` list"))
        return []
    groups: list[Group] = []
    for gi, graw in enumerate(data["groups"]):
        if not isinstance(graw, dict) or not isinstance(graw.get("name"), str):
            findings.append(Finding("structure", rel, f"groups[{gi}]: expected a mapping with name and rules"))
            continue
        gname = graw["name"]
        rules: list[Rule] = []
        for ri, rraw in enumerate(graw.get("rules") or []):
            if not isinstance(rraw, dict):
                findings.append(Finding("structure", rel, f"rule {ri + 1}: expected a mapping", gname))
                continue
            kind: Literal["alert", "record"] = "alert" if "alert" in rraw else "record"
            name = rraw.get(kind)
            expr = rraw.get("expr")
            if not isinstance(name, str) or not isinstance(expr, str | int | float):
                findings.append(Finding("structure", rel, f"rule {ri + 1}: needs `alert` or `record`, and `expr`",
                                        gname))
                continue
            rules.append(Rule(kind, name, str(expr), rraw, rel, gname, ri + 1))
        groups.append(Group(gname, rules, graw))
    return groups


def runbook_url(base: str, alert: str) -> str:
    return f"{base.rstrip('/')}/{alert}.md"
