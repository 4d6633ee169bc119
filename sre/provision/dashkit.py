"""The conventions every dashboard in `dashboards/` follows, on top of grafana-foundation-sdk.

A `Board` wraps the SDK's dashboard builder so that a dashboard module says what it charts and
the kit does the rest the same way everywhere: a `datasource` template variable used by every
panel and variable (never a data source uid), region/namespace variables on request, panel ids
in order, a runbook link on each panel that watches an alert, and that alert's threshold drawn
as a dashed line, the value read from the rule in `alerts/` so chart and alert never disagree.

`Context` is what a dashboard module may read: the runbook base URL, the alert rules and the SLO
specs. It is built from files and config only, so rendering is deterministic.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sre.content import content_dir
from sre.rules.loader import load_tree

if TYPE_CHECKING:
    from sre.config import SreConfig

DATASOURCE_VAR = "datasource"
DS_REF = {"type": "prometheus", "uid": "${" + DATASOURCE_VAR + "}"}
_TRAILING_COMPARISON = re.compile(r"(>=|<=|==|!=|>|<)\s*(?:bool\s+)?([-+*/()0-9.eE\s]+)$")
_SET_OPERATOR = re.compile(r"\b(and|or|unless)\b")


def to_json(obj: Any) -> dict[str, Any]:
    """A grafana-foundation-sdk model or builder as plain JSON."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    if hasattr(obj, "build") and not hasattr(obj, "to_json"):
        obj = obj.build()
    data: dict[str, Any] = json.loads(json.dumps(obj, cls=JSONEncoder))
    return data


def _constant(text: str) -> float | None:
    """The value of a constant arithmetic expression such as `64 * 1024 * 1024`, else None."""
    import ast
    import operator

    ops = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return float(ops[type(node.op)](ev(node.left), ev(node.right)))
        raise ValueError(text)

    try:
        return ev(ast.parse(text.strip(), mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError):
        return None


# ---------------------------------------------------------------- context


@dataclass(frozen=True)
class AlertRule:
    name: str
    expr: str
    severity: str = ""
    source: str = ""

    @property
    def threshold(self) -> tuple[str, float] | None:
        """The comparison a simple rule ends with (`... > 0.05`, `... > 64 * 1024 * 1024`).

        None for rules joined with and/or/unless: their last comparison may be a guard on
        another series, not the threshold of what a panel charts.
        """
        expr = self.expr.strip()
        if _SET_OPERATOR.search(re.sub(r'"[^"]*"', '""', expr)):
            return None
        m = _TRAILING_COMPARISON.search(expr)
        if not m or m.group(2).count("(") != m.group(2).count(")"):
            return None
        value = _constant(m.group(2))
        return (m.group(1), value) if value is not None else None


@dataclass
class Context:
    runbook_base_url: str = "https://github.com/example/sre/blob/main/runbooks"
    alerts: dict[str, AlertRule] = field(default_factory=dict)
    records: set[str] = field(default_factory=set)  # recording rule names in alerts/
    slos: list[dict[str, Any]] = field(default_factory=list)  # alerts/slos/*.yaml: name, service, objective, ...
    regions: list[str] = field(default_factory=list)
    rpo: float = 300.0  # seconds: the tightest objective of the configured PostgreSQL clusters
    rto: float = 60.0
    backup_max_age: float = 300.0  # seconds: the tightest backups.<name>.max_age (default: its cluster's RPO)

    @classmethod
    def from_project(cls, cfg: SreConfig | None = None, alerts_dir: Path | None = None) -> Context:
        alerts_dir = alerts_dir or content_dir("alerts")
        ctx = cls()
        if cfg is not None:
            ctx.runbook_base_url = cfg.alerts.runbook_base_url.rstrip("/")
            ctx.regions = list(cfg.regions)
            objectives = [c.objectives for c in cfg.postgres.clusters.values()]
            if objectives:
                ctx.rpo = min(o.rpo for o in objectives)
                ctx.rto = min(o.rto for o in objectives)
            ages = [b.max_age if b.max_age is not None else cfg.postgres.clusters[b.cluster].objectives.rpo
                    for b in cfg.backups.values()]
            ctx.backup_max_age = min(ages) if ages else ctx.rpo
        ctx.alerts, ctx.records, ctx.slos = read_rules(alerts_dir)
        return ctx

    def runbook_url(self, alert: str) -> str:
        return f"{self.runbook_base_url}/{alert}.md"


def read_rules(alerts_dir: Path) -> tuple[dict[str, AlertRule], set[str], list[dict[str, Any]]]:
    """Alert rules, recording rule names (SLO rules generated from alerts/slos included) and the
    SLO specs, as `sre alerts` reads them."""
    tree = load_tree(alerts_dir)
    alerts = {r.name: AlertRule(r.name, r.expr, r.severity or "", r.file) for r in tree.alerts()}
    slos = [{"name": s.name, "service": s.service, "description": s.description, "objective": float(s.objective),
             "window": s.window, "budget": float(s.budget), "alert_prefix": s.alert_prefix,
             # burn factors of the first pair of each alert (0: the alert is off), for thresholds
             "factors": {ba.kind: float(ba.pairs[0][2]) for ba in s.burn_alerts()}}
            for s in tree.slo_specs]
    return alerts, tree.records(), slos


def _drawn(op: str, value: float) -> tuple[float, bool]:
    """Where to draw a rule's threshold and which side is bad. `x == 0` on a 0/1 series is
    "bad below 1"; `x == 1` is "bad from 1"."""
    if op == "==":
        return (1.0, True) if value == 0 else (value, False)
    return value, op in ("<", "<=")


# ---------------------------------------------------------------- queries and variables


@dataclass(frozen=True)
class Q:
    """One PromQL query of a panel and its legend."""

    expr: str
    legend: str = ""
    instant: bool = False


def _query(q: Q | str, ref: str) -> Any:
    from grafana_foundation_sdk.builders import prometheus

    q = Q(q) if isinstance(q, str) else q
    b = prometheus.Dataquery().expr(q.expr).ref_id(ref).datasource(_ds())
    if q.legend:
        b = b.legend_format(q.legend)
    return b.instant() if q.instant else b.range()


def _ds() -> Any:
    from grafana_foundation_sdk.models import dashboard as dm

    return dm.DataSourceRef(type_val=DS_REF["type"], uid=DS_REF["uid"])


@dataclass(frozen=True)
class Var:
    """A query template variable: `label_values(<metric>, <label>)` unless `query` is given."""

    name: str
    label: str
    metric: str = ""
    query: str = ""
    multi: bool = True
    include_all: bool = True

    def expr(self) -> str:
        return self.query or f"label_values({self.metric}, {self.name})"


def region(metric: str) -> Var:
    return Var("region", "Region", metric)


def namespace(metric: str = 'kube_pod_info{region=~"$region"}') -> Var:
    return Var("namespace", "Namespace", metric)


# ---------------------------------------------------------------- the board


# sre marks what it did (remediations, drills, applies, deploys) as organization annotations tagged
# `sre` (sre.annotate); every dashboard shows them with this tag query of Grafana's own data source.
SRE_ANNOTATION_TAG = "sre"


def sre_annotations() -> Any:
    from grafana_foundation_sdk.builders import dashboard as d
    from grafana_foundation_sdk.models import dashboard as dm

    return (d.AnnotationQuery().name("sre actions").enable(True).icon_color("purple")
            .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
            .target(d.AnnotationTarget().type("tags").tags([SRE_ANNOTATION_TAG]).match_any(False).limit(100)))


class Board:
    """One dashboard being built; panels flow left to right, 24 columns a row."""

    def __init__(self, ctx: Context, *, uid: str, title: str, description: str = "", tags: Sequence[str] = (),
                 variables: Sequence[Var] = (), refresh: str = "1m", time_from: str = "now-6h") -> None:
        from grafana_foundation_sdk.builders import dashboard as d
        from grafana_foundation_sdk.models import dashboard as dm

        self.ctx = ctx
        self._b = (
            d.Dashboard(title).uid(uid).description(description).tags(list(tags)).refresh(refresh)
            .time(time_from, "now").timezone("browser").tooltip(dm.DashboardCursorSync.CROSSHAIR)
            .with_variable(d.DatasourceVariable(DATASOURCE_VAR).label("Data source").type("prometheus"))
            .annotation(sre_annotations())
        )
        for v in variables:
            qv = (d.QueryVariable(v.name).label(v.label).query(v.expr()).datasource(_ds())
                  .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC))
            if v.multi:
                qv = qv.multi(True)
            if v.include_all:
                qv = qv.include_all(True).all_value(".*")
            self._b = self._b.with_variable(qv)
        self.alerts_used: list[str] = []

    # -- layout

    def row(self, title: str) -> Board:
        from grafana_foundation_sdk.builders import dashboard as d

        self._b = self._b.with_row(d.Row(title))
        return self

    def text(self, title: str, markdown: str, *, w: int = 24, h: int = 3) -> Board:
        from grafana_foundation_sdk.builders import text

        self._b = self._b.with_panel(text.Panel().title(title).content(markdown).span(w).height(h))
        return self

    # -- panels

    def _common(self, p: Any, title: str, queries: Sequence[Q | str], *, unit: str, description: str,
                w: int, h: int, alert: str | None, threshold: float | None, warn: float | None,
                below: bool, minimum: float | None, maximum: float | None, runbook: str | None = None) -> Any:
        from grafana_foundation_sdk.builders import dashboard as d
        from grafana_foundation_sdk.models import dashboard as dm

        p = p.title(title).datasource(_ds()).unit(unit).span(w).height(h)
        if description:
            p = p.description(description)
        for i, q in enumerate(queries):
            p = p.with_target(_query(q, chr(ord("A") + i)))
        if minimum is not None:
            p = p.min(minimum)
        if maximum is not None:
            p = p.max(maximum)
        value = threshold
        if alert is not None:
            rule = self.ctx.alerts.get(alert)
            if rule is not None and rule.threshold is not None:
                value, below = _drawn(*rule.threshold)
        link = alert or runbook
        if link is not None:
            self.alerts_used.append(link)
            p = p.links([d.DashboardLink(f"Runbook: {link}").url(self.ctx.runbook_url(link)).target_blank(True)])
        if value is not None:
            if below:  # the alert fires under the value: red below it, green above (orange up to warn)
                steps = [dm.Threshold(value=None, color="red"), dm.Threshold(value=value, color="green")]
                if warn is not None and warn > value:
                    steps[1:] = [dm.Threshold(value=value, color="orange"), dm.Threshold(value=warn, color="green")]
            else:
                steps = [dm.Threshold(value=None, color="green"), dm.Threshold(value=value, color="red")]
                if warn is not None and warn < value:
                    steps.insert(1, dm.Threshold(value=warn, color="orange"))
            p = p.thresholds(d.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(steps))
        return p, value is not None

    def timeseries(self, title: str, *queries: Q | str, unit: str = "short", description: str = "",
                   w: int = 12, h: int = 8, alert: str | None = None, threshold: float | None = None,
                   warn: float | None = None, below: bool = False, stack: bool = False,
                   minimum: float | None = None, maximum: float | None = None, runbook: str | None = None) -> Board:
        from grafana_foundation_sdk.builders import common as cb
        from grafana_foundation_sdk.builders import timeseries
        from grafana_foundation_sdk.models import common as cm

        p, has_threshold = self._common(
            timeseries.Panel(), title, queries, unit=unit, description=description, w=w, h=h, alert=alert,
            threshold=threshold, warn=warn, below=below, minimum=minimum, maximum=maximum, runbook=runbook)
        p = p.fill_opacity(10).line_width(1).legend(
            cb.VizLegendOptions().display_mode(cm.LegendDisplayMode.TABLE).placement(cm.LegendPlacement.BOTTOM)
            .show_legend(True).calcs(["lastNotNull", "max"]))
        if has_threshold:
            p = p.thresholds_style(cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED))
        if stack:
            p = p.stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL)).fill_opacity(40)
        self._b = self._b.with_panel(p)
        return self

    def stat(self, title: str, *queries: Q | str, unit: str = "short", description: str = "", w: int = 6,
             h: int = 4, alert: str | None = None, threshold: float | None = None, warn: float | None = None,
             below: bool = False, graph: bool = True, minimum: float | None = None,
             maximum: float | None = None, runbook: str | None = None) -> Board:
        from grafana_foundation_sdk.builders import common as cb
        from grafana_foundation_sdk.builders import stat
        from grafana_foundation_sdk.models import common as cm

        p, has_threshold = self._common(
            stat.Panel(), title, queries, unit=unit, description=description, w=w, h=h, alert=alert,
            threshold=threshold, warn=warn, below=below, minimum=minimum, maximum=maximum, runbook=runbook)
        p = (p.reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
             .graph_mode(cm.BigValueGraphMode.AREA if graph else cm.BigValueGraphMode.NONE)
             .color_mode(cm.BigValueColorMode.VALUE if has_threshold else cm.BigValueColorMode.NONE))
        self._b = self._b.with_panel(p)
        return self

    def gauge(self, title: str, *queries: Q | str, unit: str = "percentunit", description: str = "", w: int = 6,
              h: int = 6, alert: str | None = None, threshold: float | None = None, warn: float | None = None,
              below: bool = False, minimum: float | None = 0, maximum: float | None = 1) -> Board:
        from grafana_foundation_sdk.builders import common as cb
        from grafana_foundation_sdk.builders import gauge

        p, _ = self._common(
            gauge.Panel(), title, queries, unit=unit, description=description, w=w, h=h, alert=alert,
            threshold=threshold, warn=warn, below=below, minimum=minimum, maximum=maximum)
        p = p.reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        self._b = self._b.with_panel(p.show_threshold_markers(True))
        return self

    def table(self, title: str, *queries: Q | str, unit: str = "short", description: str = "", w: int = 24,
              h: int = 8) -> Board:
        from grafana_foundation_sdk.builders import table

        p, _ = self._common(
            table.Panel(), title, [Q(q.expr, q.legend, True) if isinstance(q, Q) else Q(q, "", True)
                                   for q in queries],
            unit=unit, description=description, w=w, h=h, alert=None, threshold=None, warn=None,
            below=False, minimum=None, maximum=None)
        self._b = self._b.with_panel(p)
        return self

    # -- result

    def build(self) -> dict[str, Any]:
        body = to_json(self._b)
        next_id = 1
        for panel in body.get("panels") or []:
            panel["id"] = next_id
            next_id += 1
            for inner in panel.get("panels") or []:
                inner["id"] = next_id
                next_id += 1
        return body
