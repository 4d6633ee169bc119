"""Runbooks: `runbooks/<alertname>.md`, Markdown with a YAML front matter that may automate a fix.

```yaml
---
alert: WebsocketGatewayMemoryHigh
severity: ticket
remediation:
  action: kubernetes.rollout_restart
  target: {namespace: "{{ labels.namespace }}", deployment: "{{ labels.deployment }}"}
  guards: {cooldown: 30m, max_per_day: 3, only_namespaces: [messaging]}
  verify: {query: 'max(...{namespace="{{ labels.namespace }}"}) < 0.9', within: 10m}
---
```

The front matter is validated here, once, for everyone: `sre alerts lint` checks every file
against it, and the remediation worker loads runbooks through `load_runbook(s)` and fills the
templates with `Remediation.render(labels, annotations)`. Templates know exactly two names,
`labels.<name>` and `annotations.<name>` of the alert; anything else is an error at load time,
and a label the alert does not carry is an error when rendering, never an empty string.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sre.config import Environment, Seconds, format_validation_error
from sre.errors import UsageError
from sre.remediation.promql_template import UnsafeValue, render_promql
from sre.rules import yamlio
from sre.rules.tree import SEVERITIES, Severity

# action -> the target keys it needs. The remediation actions define their own parameter schemas;
# this table is what a runbook must name so that an action knows what to act on.
ACTION_TARGETS: dict[str, frozenset[str]] = {
    "kubernetes.rollout_restart": frozenset({"namespace", "deployment"}),
    "kubernetes.scale": frozenset({"namespace", "deployment"}),
    "kubernetes.delete_pod": frozenset({"namespace", "pod"}),
    "postgres.cancel_long_queries": frozenset({"cluster", "node"}),
    "postgres.terminate_idle_in_transaction": frozenset({"cluster", "node"}),
    "alertmanager.silence": frozenset(),
    "notify": frozenset(),
    "job.run": frozenset({"job"}),
    "backup.take": frozenset({"backup"}),
}
# Actions that change a system need a verification query (and, for workloads and databases, an allowlist).
_CHANGES_SYSTEM = frozenset(a for a in ACTION_TARGETS if a.startswith(("kubernetes.", "postgres.", "job.",
                                                                        "backup.")))

_TEMPLATE = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_REF = re.compile(r"^(labels|annotations)\.([a-zA-Z_][a-zA-Z0-9_]*)$")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*\r?$\n?", re.S | re.M)


class TemplateError(ValueError):
    """A template names something the alert does not carry."""


def template_refs(text: str) -> set[tuple[str, str]]:
    """The (labels|annotations, name) pairs a template string uses; ValueError on anything else."""
    refs: set[tuple[str, str]] = set()
    for expr in _TEMPLATE.findall(text):
        m = _REF.match(expr)
        if not m:
            raise ValueError(f"template {{{{ {expr} }}}}: only labels.<name> and annotations.<name> are known")
        refs.add((m.group(1), m.group(2)))
    return refs


def _lookup(labels: dict[str, str], annotations: dict[str, str] | None) -> Callable[[re.Match[str]], str]:
    scope = {"labels": labels, "annotations": annotations or {}}

    def value(m: re.Match[str]) -> str:
        ref = _REF.match(m.group(1))
        if not ref:
            raise TemplateError(f"template {m.group(0)}: only labels.<name> and annotations.<name> are known")
        kind, name = ref.groups()
        if name not in scope[kind]:
            raise TemplateError(f"the alert has no {kind[:-1]} {name!r} (template {m.group(0)})")
        return scope[kind][name]

    return value


def render_template(text: str, labels: dict[str, str], annotations: dict[str, str] | None = None) -> str:
    """Fill `{{ labels.x }}` / `{{ annotations.x }}`; TemplateError if the alert lacks one."""
    return _TEMPLATE.sub(_lookup(labels, annotations), text)


def render_query(text: str, labels: dict[str, str], annotations: dict[str, str] | None = None) -> str:
    """Fill a PromQL template with each value escaped for its place in the query (labels are data,
    never code); TemplateError if the alert lacks one or a value cannot be made safe."""
    try:
        return render_promql(text, _TEMPLATE, _lookup(labels, annotations))
    except UnsafeValue as exc:
        raise TemplateError(f"verify query: {exc}") from None


def _render_any(value: Any, labels: dict[str, str], annotations: dict[str, str]) -> Any:
    if isinstance(value, str):
        return render_template(value, labels, annotations)
    if isinstance(value, dict):
        return {k: _render_any(v, labels, annotations) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_any(v, labels, annotations) for v in value]
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Guards(_Model):
    cooldown: Seconds = Field(1800.0, description="Least time between two actions on the same target.")
    max_per_day: int = Field(3, ge=1, description="Most actions on the same target in 24 hours.")
    only_namespaces: list[str] = Field(default_factory=list, description="Kubernetes namespaces it may act in.")
    only_clusters: list[str] = Field(default_factory=list, description="PostgreSQL clusters it may act on.")
    only_environments: list[Environment] = Field(default_factory=list)
    dry_run: bool = Field(False, description="Describe the action, never perform it (per runbook).")


class Verify(_Model):
    query: str = Field(description="PromQL that returns a result once the condition has cleared.")
    within: Seconds = Field(600.0, description="How long to wait for the query to hold before escalating.")

    @field_validator("query")
    @classmethod
    def _query_templates(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        template_refs(v)
        return v


class Remediation(_Model):
    action: str
    target: dict[str, str] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    guards: Guards = Field(default_factory=Guards)
    verify: Verify | None = None

    @field_validator("action")
    @classmethod
    def _known_action(cls, v: str) -> str:
        if v not in ACTION_TARGETS:
            raise ValueError(f"unknown action {v!r} (known: {', '.join(sorted(ACTION_TARGETS))})")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Remediation:
        needed = ACTION_TARGETS[self.action]
        missing = sorted(needed - set(self.target))
        if missing:
            raise ValueError(f"target of {self.action} needs {', '.join(missing)}")
        for s in _strings(self.target) + _strings(self.params):
            template_refs(s)
        if self.action in _CHANGES_SYSTEM and self.verify is None:
            raise ValueError(f"{self.action} changes a system: give verify {{query, within}}")
        if self.action.startswith("kubernetes.") and not self.guards.only_namespaces:
            raise ValueError(f"{self.action} needs guards.only_namespaces (the namespaces it may touch)")
        if self.action.startswith("postgres.") and not self.guards.only_clusters:
            raise ValueError(f"{self.action} needs guards.only_clusters (the clusters it may touch)")
        return self

    def label_refs(self) -> set[str]:
        """Alert labels the templates of target, params and verify use."""
        texts = _strings(self.target) + _strings(self.params) + ([self.verify.query] if self.verify else [])
        return {name for t in texts for kind, name in template_refs(t) if kind == "labels"}

    def render(self, labels: dict[str, str], annotations: dict[str, str] | None = None) -> RenderedRemediation:
        ann = annotations or {}
        return RenderedRemediation(
            action=self.action,
            target=_render_any(self.target, labels, ann),
            params=_render_any(self.params, labels, ann),
            guards=self.guards,
            verify_query=render_query(self.verify.query, labels, ann) if self.verify else None,
            verify_within=self.verify.within if self.verify else None,
        )


@dataclass(frozen=True)
class RenderedRemediation:
    action: str
    target: dict[str, str]
    params: dict[str, Any]
    guards: Guards
    verify_query: str | None
    verify_within: float | None


_ALERT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class FrontMatter(_Model):
    alert: str = Field(pattern=_ALERT_NAME.pattern)
    severity: Severity
    remediation: Remediation | None = None


@dataclass(frozen=True)
class Runbook:
    path: Path
    alert: str
    severity: str
    remediation: Remediation | None
    body: str

    @property
    def title(self) -> str:
        for line in self.body.splitlines():
            if line.startswith("# "):
                return line[2:].strip()
        return self.alert


class RunbookError(UsageError):
    """A runbook file that cannot be used: names the file, the key path and what was expected."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = Path(path)
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


def _front_matter(path: Path, text: str) -> re.Match[str]:
    m = _FRONT_MATTER.match(text)
    if not m:
        raise RunbookError(path, ["no YAML front matter (the file must start with a line '---', "
                                  "then alert/severity keys, then a closing '---')"])
    return m


_UNPARSED = object()


def parse_runbook(path: Path, text: str, data: Any = _UNPARSED) -> Runbook:
    """Parse one runbook's text (its front matter already parsed as `data`, if given);
    RunbookError with every problem found."""
    m = _front_matter(path, text)
    if data is _UNPARSED:
        try:
            data = yamlio.load(m.group(1))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 2}: " if mark else ""  # the front matter starts on the file's line 2
            raise RunbookError(path, [f"{where}not valid YAML ({getattr(exc, 'problem', None) or exc})"]) \
                from None
    if not isinstance(data, dict):
        raise RunbookError(path, ["(front matter): expected a mapping with alert and severity"])
    if data.keys() == {"alert", "severity"} and data["severity"] in SEVERITIES and isinstance(data["alert"], str) \
            and _ALERT_NAME.match(data["alert"]):
        fm = FrontMatter.model_construct(alert=data["alert"], severity=data["severity"], remediation=None)
    else:  # the fast path above is the model's own rules for the common case; pydantic judges the rest
        try:
            fm = FrontMatter.model_validate(data)
        except ValidationError as exc:
            raise RunbookError(path, format_validation_error(exc)) from None
    if path.suffix == ".md" and path.stem != fm.alert:
        raise RunbookError(path, [f"alert: names {fm.alert!r} but the file is {path.name} "
                                  f"(runbooks are found by alert name: rename it to {fm.alert}.md)"])
    return Runbook(path=path, alert=fm.alert, severity=fm.severity, remediation=fm.remediation,
                   body=text[m.end():])


def load_runbook(path: str | Path) -> Runbook:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise RunbookError(p, [f"cannot read: {exc.strerror or exc}"]) from None
    return parse_runbook(p, text)


def scan_runbooks(directory: str | Path) -> tuple[dict[str, Runbook], list[RunbookError]]:
    """Every `*.md` runbook of `directory` (README.md excepted), and the errors of the bad ones."""
    d = Path(directory)
    runbooks: dict[str, Runbook] = {}
    errors: list[RunbookError] = []
    if not d.is_dir():
        return runbooks, [RunbookError(d, ["runbooks directory not found"])]
    texts: list[tuple[Path, str]] = []
    # os.scandir and plain names: with thousands of runbooks, sorting Path objects costs more
    # than reading the files.
    names = sorted(e.name for e in os.scandir(d) if e.name.endswith(".md") and e.name.lower() != "readme.md")
    for name in names:
        path = d / name
        try:
            with open(os.path.join(d, name), encoding="utf-8") as fh:
                texts.append((path, fh.read()))
        except OSError as exc:
            errors.append(RunbookError(path, [f"cannot read: {exc.strerror or exc}"]))
    # All front matters in one YAML stream when they all parse (thousands of files: one loader,
    # not one per file); file by file otherwise, so each error names its own file and line.
    matches = [_FRONT_MATTER.match(t) for _, t in texts]
    parsed = _load_front_matters([m.group(1) for m in matches if m]) if all(matches) else None
    for i, (path, text) in enumerate(texts):
        try:
            rb = parse_runbook(path, text, parsed[i]) if parsed is not None else parse_runbook(path, text)
        except RunbookError as exc:
            errors.append(exc)
            continue
        runbooks[rb.alert] = rb
    return runbooks, errors


# Front matter that is just `alert: Name` and `severity: level` (most runbooks) is read without a
# YAML parser; its plain scalars are words YAML reads as strings (the reserved words excepted).
_SIMPLE = re.compile(r"\A(?:(alert|severity):[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*\r?\n){2}\Z")
_SIMPLE_LINE = re.compile(r"(alert|severity):[ \t]*([A-Za-z_][A-Za-z0-9_]*)")
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "true", "false", "on", "off", "null"})


def _load_front_matters(texts: list[str]) -> list[Any] | None:
    out: list[Any] = []
    hard: list[int] = []
    for i, t in enumerate(texts):
        if _SIMPLE.match(t):
            data = dict(_SIMPLE_LINE.findall(t))
            if len(data) == 2 and not any(v.lower() in _YAML_WORDS for v in data.values()):
                out.append(data)
                continue
        out.append(None)
        hard.append(i)
    if hard:
        parsed = yamlio.load_many([texts[i] for i in hard])
        if parsed is None:
            return None
        for i, data in zip(hard, parsed, strict=True):
            out[i] = data
    return out


def load_runbooks(directory: str | Path) -> dict[str, Runbook]:
    """alertname -> Runbook for every runbook of `directory`; RunbookError naming every bad file."""
    runbooks, errors = scan_runbooks(directory)
    if errors:
        problems = [f"{e.path}: {p}" for e in errors for p in e.problems]
        err = RunbookError(Path(directory), problems)
        err.args = (f"{len(errors)} bad runbook(s): " + "; ".join(problems),)
        raise err
    return runbooks

