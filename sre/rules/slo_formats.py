"""SLO specs in three formats, read into one model: the native one, Sloth's `prometheus/v1` and
OpenSLO v1 `SLO` documents (ratio metrics), plus Sloth `AlertWindows` files as presets.

A file's format is told by its content, not its name: `version: prometheus/v1` is Sloth,
`apiVersion: openslo/v1` + `kind: SLO` is OpenSLO (several documents per file allowed),
`apiVersion: sloth.slok.dev/v1` + `kind: AlertWindows` is a preset; anything else is native.
Conversion maps each field to its native counterpart and refuses what has none (a Sloth raw
error-ratio query, an OpenSLO calendar window), so a team moves its SLOs over unchanged or is
told exactly what cannot move.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sre.config import format_validation_error
from sre.rules.slo import Alerting, AlertToggle, Sli, Slo, SloFile, build_rule_file, load_slo_file
from sre.rules.slo_windows import Preset, builtin_presets, is_sloth_alert_windows, load_sloth_alert_windows
from sre.rules.tree import RULE_SUFFIXES, Finding, RuleFile, display_path

SLOTH_VERSION = "prometheus/v1"
OPENSLO_API = "openslo/v1"
SLOTH_DEFAULT_WINDOW = "30d"  # Sloth's default SLO period (its specs carry none)
# OpenSLO has no field for alert windows: a short window names its preset in this annotation
PRESET_ANNOTATION = "sre/alert-windows"


class _Open(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# ---------------------------------------------------------------- Sloth prometheus/v1


class _SlothEvents(_Open):
    error_query: str
    total_query: str


class _SlothSli(_Open):
    events: _SlothEvents | None = None
    raw: dict[str, Any] | None = None
    plugin: dict[str, Any] | None = None


class _SlothAlert(_Open):
    disable: bool = False
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    for_: str | None = Field(None, alias="for")


class _SlothAlerting(_Open):
    name: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    page_alert: _SlothAlert = Field(default_factory=_SlothAlert)
    ticket_alert: _SlothAlert = Field(default_factory=_SlothAlert)


class _SlothSlo(_Open):
    name: str
    objective: Decimal
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    sli: _SlothSli
    alerting: _SlothAlerting = Field(default_factory=_SlothAlerting)
    plugins: dict[str, Any] | None = None


class _SlothSpec(_Open):
    version: str
    service: str
    labels: dict[str, str] = Field(default_factory=dict)
    slos: list[_SlothSlo] = Field(min_length=1)
    slo_plugins: dict[str, Any] | None = None


def _toggle(alert: _SlothAlert, common: dict[str, str]) -> AlertToggle:
    # severity comes from config (alerts.slo_severity), like every SLO alert's
    labels = {k: v for k, v in {**common, **alert.labels}.items() if k != "severity"}
    return AlertToggle(enabled=not alert.disable, labels=labels, **{"for": alert.for_})


def from_sloth(data: Any) -> SloFile:
    """A Sloth `prometheus/v1` spec as a native one (window: Sloth's default, 30d)."""
    spec = _SlothSpec.model_validate(data)
    slos = []
    for i, s in enumerate(spec.slos):
        if s.sli.events is None:
            raise ValueError(f"slos[{i}].sli: only `events` (error_query + total_query) can move over; "
                             "write a raw ratio or a plugin as events")
        slos.append(Slo(
            name=s.name, alert=s.alerting.name, description=s.description, objective=s.objective,
            window=SLOTH_DEFAULT_WINDOW, labels=s.labels,
            sli=Sli(bad=s.sli.events.error_query, total=s.sli.events.total_query),
            alerting=Alerting(page=_toggle(s.alerting.page_alert, s.alerting.labels),
                              ticket=_toggle(s.alerting.ticket_alert, s.alerting.labels)),
        ))
    return SloFile(service=spec.service, labels=spec.labels, slos=slos)


# ---------------------------------------------------------------- OpenSLO v1


class _OsMetricSourceSpec(BaseModel):
    model_config = ConfigDict(extra="allow")
    query: str


class _OsMetricSource(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = "Prometheus"
    spec: _OsMetricSourceSpec


class _OsMetric(_Open):
    metricSource: _OsMetricSource


class _OsRatio(_Open):
    counter: bool = True
    good: _OsMetric | None = None
    bad: _OsMetric | None = None
    total: _OsMetric


class _OsIndicatorSpec(BaseModel):
    model_config = ConfigDict(extra="allow")
    ratioMetric: _OsRatio | None = None


class _OsIndicator(BaseModel):
    model_config = ConfigDict(extra="allow")
    spec: _OsIndicatorSpec


class _OsWindow(BaseModel):
    model_config = ConfigDict(extra="allow")
    duration: str
    isRolling: bool = True


class _OsObjective(BaseModel):
    model_config = ConfigDict(extra="allow")
    target: Decimal | None = None
    targetPercent: Decimal | None = None
    indicator: _OsIndicator | None = None


class _OsSpec(BaseModel):
    model_config = ConfigDict(extra="allow")
    service: str
    description: str = ""
    indicator: _OsIndicator | None = None
    indicatorRef: str | None = None
    timeWindow: list[_OsWindow] = Field(min_length=1, max_length=1)
    budgetingMethod: str = "Occurrences"
    objectives: list[_OsObjective] = Field(min_length=1, max_length=1)


class _OsSlo(BaseModel):
    model_config = ConfigDict(extra="allow")
    apiVersion: str
    kind: str
    metadata: dict[str, Any]
    spec: _OsSpec


def is_openslo(data: Any) -> bool:
    return isinstance(data, dict) and data.get("apiVersion") == OPENSLO_API and data.get("kind") == "SLO"


def from_openslo(data: Any) -> Slo:
    """An OpenSLO v1 `SLO` with an inline ratio-metric indicator (Prometheus queries) as a native SLO."""
    doc = _OsSlo.model_validate(data)
    spec = doc.spec
    (objective,) = spec.objectives
    indicator = objective.indicator or spec.indicator
    if indicator is None:
        raise ValueError("spec.indicator: give the indicator inline (an indicatorRef to another document "
                         "cannot be followed)")
    ratio = indicator.spec.ratioMetric
    if ratio is None:
        raise ValueError("spec.indicator.spec: only ratioMetric indicators can move over")
    for part in (ratio.good, ratio.bad, ratio.total):
        if part is not None and part.metricSource.type.lower() != "prometheus":
            raise ValueError(f"metricSource.type: {part.metricSource.type!r}, expected Prometheus")
    if spec.budgetingMethod != "Occurrences":
        raise ValueError(f"spec.budgetingMethod: {spec.budgetingMethod!r}; only Occurrences (a ratio of events)")
    (window,) = spec.timeWindow
    if not window.isRolling:
        raise ValueError("spec.timeWindow: only rolling windows (a calendar window resets its budget)")
    if objective.target is not None:
        target = objective.target * 100
    elif objective.targetPercent is not None:
        target = objective.targetPercent
    else:
        raise ValueError("spec.objectives[0]: give target (e.g. 0.999) or targetPercent")
    labels = {str(k): str(v) for k, v in (doc.metadata.get("labels") or {}).items() if isinstance(v, str)}
    preset = (doc.metadata.get("annotations") or {}).get(PRESET_ANNOTATION)
    return Slo(
        alerting=Alerting(preset=str(preset)) if preset else Alerting(),
        name=str(doc.metadata.get("name")), service=spec.service, objective=target.normalize(),
        description=spec.description or str(doc.metadata.get("displayName") or ""),
        window=window.duration, labels=labels,
        sli=Sli(good=ratio.good.metricSource.spec.query if ratio.good else None,
                bad=ratio.bad.metricSource.spec.query if ratio.bad else None,
                total=ratio.total.metricSource.spec.query),
    )


# ---------------------------------------------------------------- the slos/ directory


def _documents(path: Path, shown: str, findings: list[Finding]) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        findings.append(Finding("yaml", shown, f"cannot read: {exc.strerror or exc}"))
        return []
    try:
        return [d for d in yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
                if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        findings.append(Finding("yaml", shown, f"{where}not valid YAML ({getattr(exc, 'problem', None) or exc})"))
        return []


def _problems(exc: Exception) -> list[str]:
    return format_validation_error(exc) if isinstance(exc, ValidationError) else [str(exc)]


def load_slo_dir(root: Path, slo_dir: Path, findings: list[Finding], *,
                 severity: dict[str, str] | None = None) -> tuple[list[RuleFile], list[Slo]]:
    """Every SLO spec under `slo_dir` as rule files, presets (AlertWindows) read first."""
    paths = sorted(p for p in slo_dir.rglob("*") if p.suffix in RULE_SUFFIXES and p.is_file())
    docs = {p: _documents(p, display_path(p), findings) for p in paths}
    presets: dict[str, Preset] = builtin_presets()
    for path, items in docs.items():
        for data in items:
            if is_sloth_alert_windows(data):
                shown = display_path(path)
                preset, problems = load_sloth_alert_windows(data, path.stem, shown)
                findings.extend(Finding("slo-spec", shown, p) for p in problems)
                if preset is not None:
                    if preset.name in presets:
                        findings.append(Finding("slo-spec", shown, f"preset {preset.name!r} is also defined in "
                                                                   f"{presets[preset.name].source}"))
                    else:
                        presets[preset.name] = preset
    files: list[RuleFile] = []
    specs: list[Slo] = []
    for path, items in docs.items():
        rel, shown = path.relative_to(root).as_posix(), display_path(path)
        items = [d for d in items if not is_sloth_alert_windows(d)]
        if not items:
            continue
        if all(is_openslo(d) for d in items):
            slos: list[Slo] = []
            for i, data in enumerate(items):
                try:
                    slos.append(from_openslo(data))
                except (ValidationError, ValueError) as exc:
                    findings.extend(Finding("slo-spec", shown, f"document {i + 1}: {p}") for p in _problems(exc))
            if not slos:
                continue
            rule_file, kept = build_rule_file(SloFile(slos=slos), rel, shown, findings, presets=presets,
                                              severity=severity)
        elif len(items) > 1:
            findings.append(Finding("slo-spec", shown, "several YAML documents: only OpenSLO files may have more "
                                                       "than one"))
            continue
        elif isinstance(items[0], dict) and items[0].get("version") == SLOTH_VERSION:
            try:
                spec = from_sloth(items[0])
            except (ValidationError, ValueError) as exc:
                findings.extend(Finding("slo-spec", shown, p) for p in _problems(exc))
                continue
            rule_file, kept = build_rule_file(spec, rel, shown, findings, presets=presets, severity=severity)
        else:
            rule_file, kept = load_slo_file(items[0], rel, shown, findings, presets=presets, severity=severity)
        if rule_file is not None:
            files.append(rule_file)
            specs.extend(kept)
    return files, specs
