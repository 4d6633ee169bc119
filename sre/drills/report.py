"""The drill report: verdicts per objective, the timeline, what was undone; as JSON, Markdown and a
PNG timeline (matplotlib), stored in the state store and under the reports directory, and
exported as metrics."""

from __future__ import annotations

import io
import json
import os
import socket
import time
from collections import Counter as Tally
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge

from sre.annotate import annotate
from sre.dr.drill_estimate import compare as compare_estimate
from sre.dr.drill_estimate import markdown as estimate_markdown
from sre.drills import alerting_report
from sre.drills.alerting import not_configured
from sre.drills.recommend import patroni
from sre.drills.steps import Event, iso
from sre.store.drills import DrillReport
from sre.telemetry import get_logger

if TYPE_CHECKING:
    from sre.drills.context import DrillContext, DrillRecord
    from sre.store import Store

log = get_logger("sre.drills.report")

LAST_RTO = Gauge("sre_drill_last_rto_seconds", "RTO measured by the last failover drill (canary write gap).",
                 ["cluster"])
LAST_RPO_ROWS = Gauge("sre_drill_last_rpo_rows", "Acknowledged canary rows the new primary lacked in the last drill.",
                      ["cluster"])
LAST_SUCCESS = Gauge("sre_drill_last_success_timestamp_seconds", "Unix time of the last drill that passed.",
                     ["cluster"])
RUNS = Counter("sre_drill_runs_total", "Failover drills by outcome (passed, failed, aborted, refused).",
               ["outcome"])

MAX_ACKS_IN_REPORT = 20000


# --------------------------------------------------------------------------- the row


def create_row(store: Store, d: DrillContext) -> int:
    with store.session() as s:
        row = DrillReport(kind="failover", cluster=d.cluster, from_region=d.src.region, to_region=d.dst.region,
                          mode=d.req.mode, failback=d.req.failback, environment=d.cfg.environment,
                          trigger=d.req.trigger, reason=d.req.reason, actor=d.req.actor, host=socket.gethostname(),
                          status="running", report={}, markdown="")
        s.add(row)
        s.flush()
        return int(row.id)


def persist_progress(store: Store, drill_id: int, timeline: list[Event]) -> None:
    with store.session() as s:
        row = s.get(DrillReport, drill_id)
        if row is not None:
            row.report = {"id": drill_id, "status": "running", "timeline": [e.to_dict() for e in timeline]}


# --------------------------------------------------------------------------- verdicts


def verdicts(d: DrillRecord) -> list[dict[str, Any]]:
    obj = d.objectives
    out: list[dict[str, Any]] = []
    for sw in d.switches:
        m = sw.measured
        if "rto_seconds" not in m:
            continue
        rto = m["rto_seconds"]
        out.append({"switch": sw.name, "objective": "RTO", "measured": rto, "target": obj.rto, "unit": "s",
                    "pass": rto is not None and rto <= obj.rto,
                    "basis": "last acknowledged write before the switch to the first after it"})
        if "rpo_rows" not in m:
            continue
        if sw.mode == "planned":
            out.append({"switch": sw.name, "objective": "RPO", "measured": m["rpo_rows"], "target": 0, "unit": "rows",
                        "pass": m["rpo_rows"] == 0,
                        "basis": "a planned switch loses nothing: acknowledged canary rows missing on the new primary"})
        else:
            out.append({"switch": sw.name, "objective": "RPO", "measured": m["rpo_seconds"], "target": obj.rpo,
                        "unit": "s", "pass": m["rpo_seconds"] <= obj.rpo,
                        "basis": f"{m['rpo_rows']} acknowledged rows lost; span of lost writes against the RPO"})
    return out


def split_brain_verdict(d: DrillRecord) -> list[dict[str, Any]]:
    if d.probe is None:
        return []
    found = d.probe.split_brain()
    return [{"switch": "drill", "objective": "split-brain", "measured": len(found), "target": 0, "unit": "overlaps",
             "pass": not found, "basis": "acceptance windows of direct writes to each node never overlap"}]


def recommendations(d: DrillRecord) -> list[dict[str, Any]]:
    """For an observed switch that missed the RTO: the HA setting that dominates and values that meet it."""
    out = []
    for sw in d.switches:
        settings = sw.ha.get("settings") or {}
        if sw.mode != "unplanned" or d.ha.name != "patroni":
            continue
        rec = patroni(sw.measured, settings, d.objectives.rto)
        if rec is not None:
            out.append({"switch": sw.name, **rec})
    return out


def _undo_summary(d: DrillRecord) -> dict[str, Any]:
    undone: list[str] = []
    not_undone: list[dict[str, str]] = []
    ran = False
    for out in d.outcomes.values():
        if not out.completed:
            ran = ran or bool(out.undone or out.not_undone)
            undone += out.undone
            not_undone += out.not_undone
    return {"ran": ran, "undone": undone, "not_undone": not_undone}


def _topology(d: DrillRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in (d.src, d.dst):
        try:
            out[m.name] = "standby" if m.in_recovery() else ("primary" if m.writable() else "primary (read-only)")
        except Exception:
            out[m.name] = "unreachable"
    for a, b in ((d.src, d.dst), (d.dst, d.src)):
        if out.get(a.name, "").startswith("primary") and out.get(b.name) == "standby":
            try:
                st = a.upstream_streaming(b)
            except Exception:
                st = None
            out["replication"] = {"primary": a.name, "standby": b.name,
                                  "state": st["state"] if st else "not connected",
                                  "lag_bytes": st["lag_bytes"] if st else None}
    try:
        from sre.adapters.dns import target_of

        rec = d.dns.get_record(d.record)
        out["dns"] = {d.record: target_of(rec) if rec else None}
    except Exception as exc:
        out["dns"] = {d.record: f"unknown ({exc.__class__.__name__})"}
    return out


def build(d: DrillRecord, status: str, message: str) -> dict[str, Any]:
    vs = verdicts(d) + split_brain_verdict(d)
    probe = d.probe.section() if d.probe is not None else None
    if probe is not None and probe["verdict"] == "fail" and status in ("completed", "aborted"):
        status = "failed"
        if probe["message"] not in message:
            message = f"{probe['message']}; {message}"
    al = d.alerting.section() if d.alerting is not None else not_configured(
        "not checked: no endpoints.alertmanager (or drills.alerts.enabled is off)")
    if status == "completed":
        status = "passed" if vs and all(v["pass"] for v in vs) and al["verdict"] != "fail" else "failed"
        if not vs:
            message += "; nothing was measured"
        missed = [f"{v['switch']} {v['objective']} {v['measured']} {v['unit']} > {v['target']:g} {v['unit']}"
                  for v in vs if not v["pass"]]
        if missed:
            message += "; objective missed: " + ", ".join(missed)
        if al["verdict"] == "fail":
            message += "; alerting: " + al["message"]
    fo = d.switches[0].to_dict() if d.switches else {}
    canary: dict[str, Any] = {}
    if d.canary is not None:
        canary = d.canary.summary()
        acks = d.canary.snapshot()[:MAX_ACKS_IN_REPORT]
        canary["acks"] = [[a.n, round(a.at, 4), a.target] for a in acks]
        canary["target_nodes"] = {m.target: m.name for m in (d.src, d.dst) if m.target}
        canary["error_kinds"] = dict(Tally(e.message for e in d.canary.errors).most_common(10))
        canary["first_ack"] = iso(canary["first_ack"]) if canary.get("first_ack") else None
        canary["last_ack"] = iso(canary["last_ack"]) if canary.get("last_ack") else None
    finished = time.time()
    changed = bool(d.switches)
    return {
        "id": d.drill_id, "kind": "failover", "status": status, "message": message,
        "cluster": d.cluster, "environment": d.cfg.environment, "mode": d.req.mode, "failback": d.req.failback,
        "trigger": d.req.trigger, "reason": d.req.reason, "actor": d.req.actor, "host": socket.gethostname(),
        "from": {"region": d.src.region, "node": d.src.name, "target": d.src.target},
        "to": {"region": d.dst.region, "node": d.dst.name, "target": d.dst.target},
        "record": d.record,
        "started": iso(d.started), "finished": iso(finished), "finished_ts": finished,
        "duration_seconds": round(finished - d.started, 3),
        "objectives": {"rto_seconds": d.objectives.rto, "rpo_seconds": d.objectives.rpo},
        "rto_seconds": fo.get("rto_seconds"), "rpo_rows": fo.get("rpo_rows"), "rpo_bytes": fo.get("lsn_gap_bytes"),
        "verdicts": vs,
        "verdict": {"switch": "pass" if vs and all(v["pass"] for v in vs) else "fail" if vs else "not_checked",
                    "alerting": al["verdict"]},
        "alerting": al,
        "stopped_by": al.get("stopped_by"),
        "switches": [sw.to_dict() for sw in d.switches],
        "preflight": [r.to_dict() for r in d.preflight_results],
        "timeline": [e.to_dict() for e in d.timeline],
        "interrupted": any(o.interrupted for o in d.outcomes.values()) and not al.get("stopped_by"),
        "undo": _undo_summary(d),
        "topology_after": _topology(d) if changed else {},
        "notes": d.notes,
        "backend": d.ha.name, "drill_kind": d.req.kind,
        "split_brain": probe,
        "recommendations": recommendations(d),
        "canary": canary,
        "estimate": d.estimate,
        "estimate_vs_measured": compare_estimate(d.estimate, fo),
    }


# --------------------------------------------------------------------------- Markdown


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}{unit}"
    return f"{v}{unit}"


def markdown(rep: dict[str, Any], png_name: str | None = None) -> str:
    lines = [f"# Failover drill {rep['id']}: {rep['status'].upper()}", ""]
    lines += [rep["message"], ""]
    if "verdict" in rep:
        switch = {"pass": "PASS", "fail": "FAIL"}.get(rep["verdict"]["switch"], "not measured")
        lines += [f"Verdict: switch **{switch}**, alerting **{alerting_report.verdict_word(rep.get('alerting'))}**",
                  ""]
    lines += ["| | |", "|---|---|",
              f"| cluster | {rep['cluster']} ({rep['environment']}) |",
              f"| switch | {rep['from']['node']} ({rep['from']['region']}) -> {rep['to']['node']} "
              f"({rep['to']['region']}), {rep['mode']}{', with failback' if rep['failback'] else ''} |",
              f"| record | {rep['record']} |",
              f"| started / finished (UTC) | {rep['started']} / {rep['finished']} ({rep['duration_seconds']:.1f} s) |",
              f"| trigger / actor | {rep['trigger']} / {rep['actor'] or '-'} |",
              f"| reason | {rep['reason'] or '-'} |", ""]
    if rep["verdicts"]:
        lines += ["## Objectives", "", "| switch | objective | measured | objective | verdict |",
                  "|---|---|---|---|---|"]
        for v in rep["verdicts"]:
            lines.append(f"| {v['switch']} | {v['objective']} | {_fmt(v['measured'])} {v['unit']} | "
                         f"<= {_fmt(v['target'])} {v['unit']} | {'PASS' if v['pass'] else 'FAIL'} |")
        lines.append("")
    lines += estimate_markdown(rep)
    lines += alerting_report.markdown(rep.get("alerting") or {})
    for sw in rep["switches"]:
        lines += [f"## {sw['name'].capitalize()}: {sw['from']} -> {sw['to']} ({sw['mode']})", ""]
        last, first = sw.get("last_ack_before"), sw.get("first_ack_after")
        lines += [f"- RTO: **{_fmt(sw.get('rto_seconds'), ' s')}**, from canary row "
                  f"{last['n'] if last else '-'} at {last['at'] if last else '-'} to row "
                  f"{first['n'] if first else '-'} at {first['at'] if first else '-'} "
                  f"(on {first['target'] if first else '-'})",
                  f"- RPO: **{_fmt(sw.get('rpo_rows'))} rows** lost of {_fmt(sw.get('acknowledged_before'))} "
                  f"acknowledged before the switch (span {_fmt(sw.get('rpo_seconds'), ' s')}); "
                  f"LSN gap {_fmt(sw.get('lsn_gap_bytes'))} bytes",
                  f"- promotion (pg_promote + CHECKPOINT): {_fmt(sw.get('promote_seconds'), ' s')}; "
                  f"DNS INSYNC wait: {_fmt(sw.get('dns_insync_seconds'), ' s')}"]
        if sw.get("detection_seconds") is not None:
            lines.append(f"- observed recovery: detection **{_fmt(sw['detection_seconds'], ' s')}**, promotion "
                         f"**{_fmt(sw.get('promotion_seconds'), ' s')}**, path back to writes "
                         f"**{_fmt(sw.get('path_back_seconds'), ' s')}** (they add up to the RTO)")
        if sw.get("lost"):
            lines.append(f"- lost rows: {', '.join(str(n) for n in sw['lost'][:50])}"
                         + (" ..." if len(sw["lost"]) > 50 else ""))
        lines.append("")
    sb = rep.get("split_brain")
    if sb:
        lines += ["## Split-brain probe", "",
                  f"**{'FAIL' if sb['verdict'] == 'fail' else 'PASS'}**: {sb['message']} (a direct write to each node "
                  f"every {sb['interval_seconds'] * 1000:.0f} ms).", ""]
        for o in sb["overlaps"]:
            lines.append(f"- **split-brain**: {' and '.join(o['nodes'])} both accepted writes from {o['start']} to "
                         f"{o['end']} ({o['seconds']:.3f} s)")
        lines.append("")
    for r in rep.get("recommendations") or []:
        lines += [f"## Recommendation ({r['switch']})", "", f"- {r['why']}", f"- {r['message']}", ""]
    if png_name:
        lines += [f"![timeline]({png_name})", ""]
    lines += ["## Timeline (UTC)", "", "| start | step | kind | duration | status | detail |",
              "|---|---|---|---|---|---|"]
    for e in rep["timeline"]:
        detail = e["error"] or ", ".join(f"{k}={v}" for k, v in e["detail"].items() if not isinstance(v, dict | list))
        lines.append(f"| {e['started'][11:]} | {e['step']} | {e['kind']} | {_fmt(e['duration_seconds'], ' s')} | "
                     f"{e['status']} | {detail.replace('|', '/')} |")
    lines.append("")
    undo = rep["undo"]
    if undo["ran"]:
        lines += ["## Undo", ""]
        lines += [f"- undone: {s}" for s in undo["undone"]] or ["- nothing needed undoing"]
        lines += [f"- **NOT undone: {x['step']}**: {x['error']}" for x in undo["not_undone"]]
        lines.append("")
    if rep["preflight"]:
        lines += ["## Preflight", "", "| check | target | status | message |", "|---|---|---|---|"]
        for r in rep["preflight"]:
            lines.append(f"| {r['check'].removeprefix('drill.preflight.')} | {r['target']} | {r['status']} | "
                         f"{r['message'].replace('|', '/')} |")
        lines.append("")
    if rep["topology_after"]:
        lines += ["## Topology after the drill", "", "```json", json.dumps(rep["topology_after"], indent=2), "```", ""]
    for n in rep["notes"]:
        lines.append(f"> {n}")
    if rep["canary"]:
        c = rep["canary"]
        lines += ["", f"Canary: {c['acknowledged']} acknowledged of {c['attempted']} attempted writes "
                      f"(one per {c['interval_seconds'] * 1000:.0f} ms, table {c['table']}), {c['errors']} errors, "
                      f"{c['connects']} connections."]
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- PNG


def timeline_png(rep: dict[str, Any]) -> bytes | None:
    """Steps as bars, canary acknowledgements as ticks, each switch's write gap shaded."""
    if not rep["timeline"]:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = rep["timeline"][0]["started_ts"]
    events = [e for e in rep["timeline"] if e["duration_seconds"] is not None]
    names: list[str] = []
    for e in events:
        label = e["step"] + (" (undo)" if e["kind"] == "undo" else "")
        if label not in names:
            names.append(label)
    colors = {"ok": "#2e7d32", "failed": "#c62828", "interrupted": "#c62828", "not_undone": "#c62828"}
    alert_rows = alerting_report.track_count(rep) if alerting_report.has_marks(rep) else 0
    probe_rows = len({w["node"] for w in (rep.get("split_brain") or {}).get("windows", [])})
    ratios = [max(2, len(names)), 2 + probe_rows] + ([max(1, alert_rows)] if alert_rows else [])
    fig, axes = plt.subplots(len(ratios), 1, figsize=(11, 1.6 + 0.32 * (len(names) + alert_rows + probe_rows)),
                             sharex=True,
                             gridspec_kw={"height_ratios": ratios})
    ax, ax2 = axes[0], axes[1]
    for e in events:
        label = e["step"] + (" (undo)" if e["kind"] == "undo" else "")
        y = len(names) - 1 - names.index(label)
        color = "#ef6c00" if e["kind"] == "undo" and e["status"] == "ok" else colors.get(e["status"], "#757575")
        ax.broken_barh([(e["started_ts"] - t0, max(e["duration_seconds"], 0.004))], (y - 0.35, 0.7), color=color)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(list(reversed(names)), fontsize=8)
    ax.set_title(f"Drill {rep['id']}: {rep['from']['node']} -> {rep['to']['node']} ({rep['mode']}) - "
                 f"{rep['status']}", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    acks = rep["canary"].get("acks", []) if rep["canary"] else []
    targets = sorted({a[2] for a in acks})
    nodes = rep["canary"].get("target_nodes", {}) if rep["canary"] else {}
    for i, tgt in enumerate(targets):
        xs = [a[1] - t0 for a in acks if a[2] == tgt]
        ax2.scatter(xs, [i] * len(xs), marker="|", s=60, label=tgt, color=f"C{i}")
    for sw in rep["switches"]:
        last, first = sw.get("last_ack_before"), sw.get("first_ack_after")
        if last and first:
            ax2.axvspan(last["ts"] - t0, first["ts"] - t0, color="#c62828", alpha=0.25)
            ax2.annotate(f"{sw['name']} RTO {sw['rto_seconds']:.2f}s", (first["ts"] - t0, len(targets) - 0.5),
                         fontsize=8, color="#c62828")
    labels = [f"{nodes[t]} ({t})" if t in nodes else t for t in targets]
    sb = rep.get("split_brain") or {}
    probed = sorted({w["node"] for w in sb.get("windows", [])})
    for j, node in enumerate(probed):  # the probe's acceptance windows, one row per node
        y = len(targets) + j
        ax2.broken_barh([(w["start_ts"] - t0, max(w["end_ts"] - w["start_ts"], 0.01))
                         for w in sb["windows"] if w["node"] == node], (y - 0.3, 0.6), color=f"C{j + 3}")
        labels.append(f"probe: {node} accepts writes")
    for o in sb.get("overlaps", []):
        ax2.axvspan(o["start_ts"] - t0, max(o["end_ts"], o["start_ts"] + 0.02) - t0, color="#6a1b9a", alpha=0.5)
        ax2.annotate("split-brain", (o["start_ts"] - t0, len(labels) - 0.5), fontsize=8, color="#6a1b9a")
    ax2.set_yticks(range(len(labels)))
    ax2.set_yticklabels(labels, fontsize=8)
    ax2.set_ylim(-0.8, max(len(labels), 1) - 0.2 + 0.6)
    ax2.set_xlabel("seconds since the drill started")
    ax2.set_title("canary writes acknowledged (shaded: write gap)", fontsize=9)
    if alert_rows:
        alerting_report.draw(axes[2], rep, t0, rep["finished_ts"])
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


# --------------------------------------------------------------------------- finishing


def reports_dir(d: DrillRecord) -> Path:
    return d.cfg.drills.reports_dir or d.cfg.state.dir / "reports"


def finish(d: DrillRecord, status: str, message: str) -> dict[str, Any]:
    """Build, write, store and export the report; returns it (with `files`)."""
    rep = build(d, status, message)
    png: bytes | None = None
    try:
        png = timeline_png(rep)
    except Exception:  # a chart must never cost the report
        log.exception("drill %d: timeline chart failed", d.drill_id)
    out_dir = reports_dir(d)
    stem = f"drill-{d.drill_id}"
    files: dict[str, str] = {}
    md = markdown(rep, f"{stem}.png" if png else None)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if png:
            (out_dir / f"{stem}.png").write_bytes(png)
            files["png"] = str(out_dir / f"{stem}.png")
        (out_dir / f"{stem}.md").write_text(md)
        files["markdown"] = str(out_dir / f"{stem}.md")
        files["json"] = str(out_dir / f"{stem}.json")
        rep["files"] = files
        tmp = out_dir / f".{stem}.json.{os.getpid()}"
        tmp.write_text(json.dumps(rep, indent=2, default=str))
        tmp.replace(out_dir / f"{stem}.json")
    except OSError as exc:
        log.error("drill %d: cannot write the report under %s: %s", d.drill_id, out_dir, exc)
        rep["files"] = files
    from datetime import UTC, datetime

    with d.store.session() as s:
        row = s.get(DrillReport, d.drill_id)
        if row is not None:
            row.status = rep["status"]
            row.finished = datetime.fromtimestamp(rep["finished_ts"], UTC)
            row.rto_seconds = rep["rto_seconds"]
            row.rpo_rows = rep["rpo_rows"]
            row.rpo_bytes = rep["rpo_bytes"]
            row.report = rep
            row.markdown = md
            row.png = png
            row.report_dir = str(out_dir)
    export(d.cluster, rep)
    annotate(d.cfg, d.store, kind="drill", text=annotation_text(rep), tags=[d.cluster, rep["status"]],
             start=d.started, end=rep["finished_ts"])
    return rep


def annotation_text(rep: dict[str, Any]) -> str:
    """One line for the drill's Grafana annotation: what switched, the verdict, RTO and RPO."""
    obj = rep["objectives"]
    rto = f"{rep['rto_seconds']:.2f}s" if rep["rto_seconds"] is not None else "not measured"
    rpo = f"{rep['rpo_rows']} rows" if rep["rpo_rows"] is not None else "not measured"
    if rep["rpo_bytes"] is not None:
        rpo += f" / {rep['rpo_bytes']} bytes"
    return (f"sre failover drill #{rep['id']} {rep['cluster']} {rep['from']['region']} -> {rep['to']['region']}: "
            f"{rep['status']}; RTO {rto} (objective {obj['rto_seconds']:g}s), RPO {rpo} "
            f"(objective {obj['rpo_seconds']:g}s)")


def export(cluster: str, rep: dict[str, Any]) -> None:
    RUNS.labels(rep["status"]).inc()
    alerting_report.export(cluster, rep)
    if rep["rto_seconds"] is not None:
        LAST_RTO.labels(cluster).set(rep["rto_seconds"])
    if rep["rpo_rows"] is not None:
        LAST_RPO_ROWS.labels(cluster).set(rep["rpo_rows"])
    if rep["status"] == "passed":
        LAST_SUCCESS.labels(cluster).set(time.time())


# --------------------------------------------------------------------------- the service's gauges


def sync_metrics(store: Store) -> None:
    """Set the last-drill gauges from the store, so the service exports drills run by any process
    (the CLI, another replica), not only its own."""
    from sqlalchemy import func, select


    with store.session() as s:
        latest = select(DrillReport.cluster, func.max(DrillReport.id).label("id")).where(
            DrillReport.rto_seconds.is_not(None)).group_by(DrillReport.cluster).subquery()
        for row in s.scalars(select(DrillReport).join(latest, DrillReport.id == latest.c.id)):
            if row.rto_seconds is not None:
                LAST_RTO.labels(row.cluster).set(row.rto_seconds)
            if row.rpo_rows is not None:
                LAST_RPO_ROWS.labels(row.cluster).set(row.rpo_rows)
        passed = s.execute(select(DrillReport.cluster, func.max(DrillReport.finished)).where(
            DrillReport.status == "passed").group_by(DrillReport.cluster))
        for cluster, finished in passed:
            if finished is not None:
                ts = finished.timestamp() if hasattr(finished, "timestamp") else None
                if ts is not None:
                    LAST_SUCCESS.labels(cluster).set(ts)
        alerting_report.sync_metrics(s)


class MetricsSync:
    """A part of the service (start/stop with the app): re-reads the drill gauges every interval."""

    def __init__(self, store: Store, interval: float = 30.0) -> None:
        import threading

        self.store = store
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        while True:
            try:
                sync_metrics(self.store)
            except Exception:
                log.warning("drill metrics: cannot read the state store", exc_info=True)
            if self._stop.wait(self.interval):
                return

    def start(self) -> None:
        import threading

        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="sre-drill-metrics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
