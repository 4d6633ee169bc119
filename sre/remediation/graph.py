"""A PNG of what a remediation was about: the alert's expression and the runbook's verification query
over the hour up to the remediation's end, with the action marked. Rendered with matplotlib from
Prometheus `query_range` (prometheus-api-client), for escalations, `sre remediation show --graph`
and `/api/remediations/{id}/graph.png`.

The alert's expression is the one Prometheus evaluated: the `g0.expr` of the alert's
generatorURL (kept in the inbox), else the rule of that name in the rules tree.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from sre.adapters.prometheus import PrometheusClient
from sre.content import content_dir
from sre.errors import SreError
from sre.remediation.verify import VerifyError
from sre.rules.loader import load_tree
from sre.store.base import utcnow
from sre.store.remediation import InboxRow, Remediation

if TYPE_CHECKING:
    from sre.config import SreConfig
    from sre.store import Store

WINDOW = timedelta(hours=1)
POINTS = 720  # steps per query: 5 s over an hour (Prometheus allows 11,000)
MAX_SERIES = 8  # per query: a graph with more lines says nothing


class GraphError(Exception):
    """No graph: the remediation does not exist, or Prometheus could not answer."""


@dataclass
class Series:
    query: str
    name: str
    points: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class Graph:
    png: bytes
    series: list[Series]
    start: datetime
    end: datetime

    def summary(self) -> list[dict[str, Any]]:
        return [{"query": s.query, "name": s.name, "points": len(s.points)} for s in self.series]


def alert_expression(generator_url: str) -> str | None:
    """The expression of a Prometheus generatorURL (`.../graph?g0.expr=...&g0.tab=1`)."""
    exprs = parse_qs(urlsplit(generator_url).query).get("g0.expr")
    return exprs[0] if exprs and exprs[0].strip() else None


def _rule_expression(cfg: SreConfig, alertname: str) -> str | None:
    try:
        tree = load_tree(cfg.alerts.source_dir or content_dir("alerts"))
    except Exception:  # a broken tree must not cost the escalation its graph of the verification
        return None
    return next((r.expr for r in tree.rules() if r.kind == "alert" and r.name == alertname), None)


def _query_range(cfg: SreConfig, query: str, start: datetime, end: datetime) -> list[Series]:
    step = max(1, int((end - start).total_seconds() / POINTS))
    try:
        with PrometheusClient.from_config(cfg) as prom:
            result = prom.query_range(query, start.timestamp(), end.timestamp(), step)
    except SreError as exc:
        raise VerifyError(str(exc)) from None
    out = []
    for item in (result or [])[:MAX_SERIES]:
        metric = item.get("metric") or {}
        labels = ", ".join(f"{k}={v}" for k, v in sorted(metric.items()) if k != "__name__")
        name = (metric.get("__name__", "") + (f"{{{labels}}}" if labels else "")) or query
        out.append(Series(query, name[:80], [(float(t), float(v)) for t, v in item.get("values") or []]))
    return out


def render(cfg: SreConfig, store: Store, remediation_id: int, *, now: datetime | None = None) -> Graph:
    """The remediation's graph; GraphError when there is no such remediation or Prometheus failed."""
    with store.session() as s:
        r = s.get(Remediation, remediation_id)
        if r is None:
            raise GraphError(f"no remediation {remediation_id}")
        inbox = s.get(InboxRow, r.inbox_id) if r.inbox_id else None
        alertname, target, action, outcome, state = r.alertname, r.target, r.action, r.outcome, r.state
        acted = r.started_at or r.created_at
        ended = r.verified_at or r.resolved_at or r.finished_at
        verify_query = r.verify_query
        generator = inbox.generator_url if inbox is not None else ""
    end = min(max(ended or acted, acted) + timedelta(minutes=5), now or utcnow())
    start = end - WINDOW
    queries = [(q, title) for q, title in (
        (alert_expression(generator) or _rule_expression(cfg, alertname), f"alert {alertname}"),
        (verify_query, "verification")) if q]
    try:
        panels = [(title, q, _query_range(cfg, q, start, end)) for q, title in queries]
    except VerifyError as exc:
        raise GraphError(str(exc)) from None
    png = _png(f"remediation #{remediation_id} {alertname}: {action} on {target} ({state if state != 'done' else outcome})",
               panels, acted, ended, start, end)
    return Graph(png, [s for _, _, ss in panels for s in ss], start, end)


def _png(title: str, panels: list[tuple[str, str, list[Series]]], acted: datetime, ended: datetime | None,
         start: datetime, end: datetime) -> bytes:
    import matplotlib  # not at module level: the API and the CLI import this module at start

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    # A series younger than the hour (a new pod, a fresh Prometheus) is shown over its own span, not
    # squeezed against the right edge.
    first = min((p[0] for _, _, ss in panels for s in ss for p in s.points[:1]), default=None)
    if first is not None:
        start = max(start, min(datetime.fromtimestamp(first, acted.tzinfo), acted) - timedelta(seconds=30))
    rows = max(1, len(panels))
    fig, axes = plt.subplots(rows, 1, figsize=(10, 2.6 * rows + 0.6), sharex=True, squeeze=False)
    try:
        for ax, (label, query, series) in zip(axes[:, 0], panels or [("no query", "", [])], strict=False):
            for s in series:
                # Markers when points are few (a series younger than the hour): a line of two points
                # would be a speck.
                ax.plot([datetime.fromtimestamp(t, acted.tzinfo) for t, _ in s.points], [v for _, v in s.points],
                        linewidth=1.6, label=s.name, marker="o" if len(s.points) < 60 else None, markersize=3)
            if not series:
                ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="#777")
            ax.axvline(acted, color="#c62828", linewidth=1.5, linestyle="--", label="action")
            if ended is not None and ended > acted:
                ax.axvspan(acted, ended, color="#c62828", alpha=0.08)
            ax.set_title(f"{label}: {query[:110]}", fontsize=8, loc="left")
            ax.set_xlim(start, end)
            ax.grid(True, alpha=0.3)
            if series:
                ax.legend(fontsize=7, loc="upper left")
        short = end - start < timedelta(minutes=15)
        axes[-1, 0].xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S" if short else "%H:%M",
                                                                   tz=acted.tzinfo))
        axes[-1, 0].set_xlabel("UTC")
        fig.suptitle(title, fontsize=9)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90)
        return buf.getvalue()
    finally:
        plt.close(fig)


def markdown(message: dict[str, Any], graph_url: str | None) -> str:
    """The Markdown summary that goes with an escalation (chat hooks render it)."""
    lines = [f"### sre remediation #{message['remediation_id']}: {message['alertname']}",
             f"**{message['kind']}**: {message['reason']}", "",
             f"- action: `{message['action']}` on `{message['target']}`",
             f"- runbook: {message['runbook']}",
             "- labels: " + ", ".join(f"`{k}={v}`" for k, v in sorted((message.get("labels") or {}).items()))]
    if graph_url:
        lines += ["", f"![alert and verification over the last hour]({graph_url})"]
    return "\n".join(lines) + "\n"
