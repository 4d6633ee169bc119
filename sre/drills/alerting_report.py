"""The alerting part of a drill report: its Markdown section, its marks on the timeline picture,
and the `sre_drill_alert_detection_seconds` gauge (set when a drill finishes, and from the store
by the service, like the other drill gauges)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import Gauge

from sre.store.drills import DrillReport

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from sqlalchemy.orm import Session

DETECTION = Gauge("sre_drill_alert_detection_seconds",
                  "Seconds from the last drill's fault to each expected alert firing (absent: it did not fire).",
                  ["cluster", "alertname"])

_CLASS_COLORS = {"expected": "#2e7d32", "may_fire": "#757575", "unexpected": "#ef6c00", "stop": "#6a1b9a"}
_VERDICT = {"pass": "PASS", "fail": "FAIL", "not_checked": "not checked"}


def verdict_word(alerting: dict[str, Any] | None) -> str:
    return _VERDICT.get((alerting or {}).get("verdict", "not_checked"), "-")


def _labels(labels: dict[str, str]) -> str:
    keep = {k: v for k, v in labels.items() if k not in ("alertname", "severity", "job", "instance")}
    return ", ".join(f"{k}={v}" for k, v in sorted(keep.items()))


def _since(ts: float | None, fault: float | None) -> str:
    if ts is None or fault is None:
        return "-"
    return f"{ts - fault:+.1f} s"


def markdown(al: dict[str, Any]) -> list[str]:
    """The `## Alerting` section (empty when the drill had no alerting to check)."""
    if not al:
        return []
    lines = ["## Alerting", "", f"**{verdict_word(al)}**: {al.get('message', '')}", ""]
    if al.get("stopped_by"):
        lines += [f"**Stopped**: {al['stopped_by']['why']} at {al['stopped_by']['at']}; the drill was undone.", ""]
    fault = al.get("fault_ts")
    if al.get("expected"):
        lines += ["| expected alert | fired (UTC) | after the fault | bound (for + interval + margin) | verdict |",
                  "|---|---|---|---|---|"]
        for e in al["expected"]:
            bound = (f"{e['bound_seconds']:g} s ({e['for_seconds']:g} + {e['interval_seconds']:g} + "
                     f"{e['margin_seconds']:g})")
            after = "-" if e["detection_seconds"] is None else f"{e['detection_seconds']:g} s"
            lines.append(f"| {e['alertname']} ({al.get('cluster')}) | {e['fired_at'] or '-'} | {after} | "
                         f"{bound} | {'PASS' if e['pass'] else 'FAIL'}: {e['verdict']} |")
        lines.append("")
    unexpected = al.get("unexpected") or []
    if unexpected:
        lines += ["Unexpected alerts (not silenced: they paged as usual):", ""]
        lines += [f"- **{u['alertname']}** {{{_labels(u['labels'])}}} fired {u['fired_at']} "
                  f"({_since(u['fired_ts'], fault)} from the fault){'' if u['paged'] else ', not delivered'}"
                  for u in unexpected]
        lines.append("")
    others = [f for f in al.get("fired") or [] if f["class"] in ("may_fire", "stop")]
    if others:
        lines += ["Also fired: " + "; ".join(f"{f['alertname']} ({f['class'].replace('_', '-')}, "
                                             f"{_since(f['fired_ts'], fault)})" for f in others), ""]
    for s in al.get("silences") or []:
        lines.append(f"- silence {s['id']}: {', '.join(s['matchers'])}, created {s['created']}, until "
                     f"{s['ends_at']}; removed {s['removed'] or 'NOT removed'} ({s['removal'] or '-'})")
    for n in al.get("notes") or []:
        lines.append(f"> {n}")
    lines.append("")
    return lines


def has_marks(rep: dict[str, Any]) -> bool:
    al = rep.get("alerting") or {}
    return bool(al.get("fired") or al.get("expected"))


def track_count(rep: dict[str, Any]) -> int:
    return len(_tracks(rep.get("alerting") or {}))


def _tracks(al: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]], str]]:
    """One picture row per alert name and class: (label, firings, class)."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in al.get("expected") or []:
        out.setdefault((e["alertname"], "expected"), [])
    for f in al.get("fired") or []:
        out.setdefault((f["alertname"] or "?", f["class"]), []).append(f)
    return [(name, fs, cls) for (name, cls), fs in out.items()]


def draw(ax: Axes, rep: dict[str, Any], t0: float, end: float) -> None:
    """Alert firing marks on the drill's time axis: a bar while it fired, a triangle where it
    started; the fault as a dashed line and each expected alert's bound as a tick."""
    al = rep.get("alerting") or {}
    tracks = _tracks(al)
    fault = al.get("fault_ts")
    bounds = {e["alertname"]: e for e in al.get("expected") or []}
    for i, (name, firings, cls) in enumerate(tracks):
        y = len(tracks) - 1 - i
        color = _CLASS_COLORS.get(cls, "#757575")
        if cls == "expected" and name in bounds and not bounds[name]["pass"]:
            color = "#c62828"
        for f in firings:
            stop = f["resolved_ts"] if f["resolved_ts"] is not None else end
            ax.broken_barh([(f["fired_ts"] - t0, max(stop - f["fired_ts"], 0.05))], (y - 0.3, 0.6), color=color,
                           alpha=0.5)
            ax.plot([f["fired_ts"] - t0], [y], marker="v", color=color, markersize=7)
        if fault is not None and name in bounds and cls == "expected":
            ax.plot([fault + bounds[name]["bound_seconds"] - t0], [y], marker="|", color="#212121", markersize=14)
            det = bounds[name]["detection_seconds"]
            ax.annotate(f"{'never fired' if det is None else f'{det:.1f}s'} / bound {bounds[name]['bound_seconds']:g}s",
                        (fault - t0, y + 0.32), fontsize=7, color=color)
    if fault is not None:
        ax.axvline(fault - t0, color="#c62828", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(tracks)))
    ax.set_yticklabels([f"{name} ({cls.replace('_', '-')})" for name, _, cls in reversed(tracks)], fontsize=8)
    ax.set_ylim(-0.8, max(len(tracks), 1) - 0.2)
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel("seconds since the drill started")
    ax.set_title(f"alerts (alerting verdict: {verdict_word(al)}; dashed: the fault, |: bound)", fontsize=9)


def export(cluster: str, rep: dict[str, Any]) -> None:
    al = rep.get("alerting") or {}
    if not al.get("checked"):
        return
    for e in al.get("expected") or []:
        if e["detection_seconds"] is None:
            try:
                DETECTION.remove(cluster, e["alertname"])
            except KeyError:
                pass
        else:
            DETECTION.labels(cluster, e["alertname"]).set(e["detection_seconds"])


def sync_metrics(session: Session) -> None:
    """Set the detection gauge from the latest graded drill of each cluster in the store (reports
    are large, with the canary's writes: one at a time, newest first, a few per cluster at most)."""
    from sqlalchemy import select


    clusters = session.scalars(select(DrillReport.cluster).distinct())
    for cluster in list(clusters):
        ids = session.scalars(select(DrillReport.id).where(DrillReport.cluster == cluster,
                                                           DrillReport.finished.is_not(None))
                              .order_by(DrillReport.id.desc()).limit(5))
        for drill_id in list(ids):
            report = session.scalar(select(DrillReport.report).where(DrillReport.id == drill_id)) or {}
            if (report.get("alerting") or {}).get("checked"):
                export(cluster, report)
                break
