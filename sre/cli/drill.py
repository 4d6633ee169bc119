"""`sre drill failover|list|show`: cross-region failover drills that measure RTO and RPO."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sre.cli._common import ConfigOpt, Output, OutputOpt, emit, load, plain, styled, table

if TYPE_CHECKING:
    from rich.console import Console

    from sre.drills.steps import Event

app = typer.Typer(no_args_is_help=True)

EXIT_INTERRUPTED = 130


class Mode(StrEnum):
    planned = "planned"
    unplanned = "unplanned"


_STATUS = {"passed": "[green]PASSED[/]", "failed": "[red]FAILED[/]", "aborted": "[red]ABORTED[/]",
           "refused": "[yellow]REFUSED[/]", "running": "[cyan]running[/]"}


def _print_plan(c: Console, p: dict[str, Any]) -> None:
    c.print(f"[bold]dry run[/]: {p.get('kind', 'orchestrated')} failover drill of cluster {plain(p['cluster'])} "
            f"({p['environment']}, backend {p.get('backend', 'local')}), {p['mode']}: "
            f"{p['from']['node']} ({p['from']['region']}) -> {p['to']['node']} ({p['to']['region']})"
            + (", then back" if p["failback"] else ""))
    rows = [[i + 1, s["phase"], s["step"], s["title"], s["undo"] or "-"] for i, s in enumerate(p["steps"])]
    c.print(table(None, ["#", "phase", "step", "does", "undo on failure"], rows))
    o = p["objectives"]
    c.print(f"objectives: RTO <= {o['rto_seconds']:g}s, RPO <= {o['rpo_seconds']:g}s"
            f"{' (planned: 0 rows)' if p['mode'] == 'planned' else ''}")
    al = p["alerting"]
    c.print(f"alerting: expected {', '.join(al['expected']) or 'none'}; may fire {', '.join(al['may_fire']) or 'none'}"
            f"; stop on {', '.join(al['stop_on']) or 'nothing'}")
    for n in p["notes"]:
        c.print(f"[yellow]note[/]: {plain(n)}")
    c.print("nothing was touched; run again with --execute to drill")


def _progress(c: Console) -> Any:
    def on_event(ev: Event) -> None:
        if ev.status == "running":
            return
        mark = {"ok": "[green]ok[/]", "failed": "[red]FAILED[/]", "interrupted": "[red]INTERRUPTED[/]",
                "not_undone": "[red]NOT UNDONE[/]"}.get(ev.status, ev.status)
        what = "undo " + ev.step if ev.kind == "undo" else ev.step
        took = f"{ev.duration:.3f}s" if ev.duration is not None else ""
        extra = ev.error or ", ".join(f"{k}={v}" for k, v in ev.detail.items() if not isinstance(v, dict | list))
        c.print(f"  {mark:<12} {what:<22} {took:>8}  {plain(extra)}", highlight=False)

    return on_event


def _print_report(c: Console, rep: dict[str, Any]) -> None:
    c.print(f"drill {rep['id']}: {_STATUS.get(rep['status'], rep['status'])} - {plain(rep['message'])}")
    for v in rep.get("verdicts", []):
        verdict = "[green]pass[/]" if v["pass"] else "[red]FAIL[/]"
        measured = "-" if v["measured"] is None else f"{v['measured']:g}"
        c.print(f"  {v['switch']:<9} {v['objective']}: {measured} {v['unit']} (objective <= {v['target']:g} "
                f"{v['unit']}) {verdict}")
    for sw in rep.get("switches", []):
        if sw.get("detection_seconds") is not None:
            c.print(f"  {sw['name']:<9} detection {sw['detection_seconds']:.3f}s + promotion "
                    f"{sw['promotion_seconds']:.3f}s + path back {sw['path_back_seconds']:.3f}s")
    sb = rep.get("split_brain") or {}
    if sb:
        c.print(f"  split-brain probe: {'[red]FAIL[/]' if sb['verdict'] == 'fail' else '[green]pass[/]'} - "
                f"{plain(sb['message'])}")
    for r in rep.get("recommendations") or []:
        c.print(f"  [yellow]recommendation[/]: {plain(r['message'])}")
    al = rep.get("alerting") or {}
    if al:
        mark = {"pass": "[green]pass[/]", "fail": "[red]FAIL[/]"}.get(al.get("verdict", ""), "not checked")
        c.print(f"  alerting: {mark} - {plain(al.get('message', ''))}")
        for e in al.get("expected") or []:
            took = "-" if e["detection_seconds"] is None else f"{e['detection_seconds']:g}s"
            c.print(f"    {plain(e['alertname'])}: {took} after the fault (bound {e['bound_seconds']:g}s) "
                    f"{'[green]pass[/]' if e['pass'] else '[red]FAIL[/]'}")
        for u in al.get("unexpected") or []:
            c.print(f"    [yellow]unexpected[/]: {plain(u['alertname'])} {plain(u['labels'])}")
    undo = rep.get("undo") or {}
    if undo.get("ran"):
        c.print(f"  undone: {', '.join(undo['undone']) or 'nothing needed'}")
        for x in undo["not_undone"]:
            c.print(f"  [red]NOT undone[/]: {x['step']}: {plain(x['error'])}")
    for n in rep.get("notes", []):
        c.print(f"  [yellow]note[/]: {plain(n)}")
    files = rep.get("files") or {}
    if files:
        c.print(plain(f"  report: {files.get('markdown')}  ({files.get('json')}, {files.get('png', 'no chart')})"))


@app.command()
def failover(
    from_region: Annotated[str, typer.Option("--from", help="Region of the current primary.", show_default=False)],
    to_region: Annotated[str, typer.Option("--to", help="Region of the standby to promote.", show_default=False)],
    cluster: Annotated[str | None, typer.Option(help="postgres.clusters entry (default: drills.cluster, or the "
                                                     "only one).")] = None,
    mode: Annotated[Mode, typer.Option(help="planned: fence, catch up, promote (RPO 0). unplanned: stop the "
                                            "primary immediately, as a region loss would.")] = Mode.planned,
    execute: Annotated[bool, typer.Option("--execute/--dry-run", help="Dry run (default) prints the plan and "
                                                                      "touches nothing.")] = False,
    failback: Annotated[bool, typer.Option("--failback", help="Then switch back the same way (pg_rewind, new "
                                                              "slot).")] = False,
    observe: Annotated[bool, typer.Option("--observe", help="Observed drill: only lose the primary (unplanned) and "
                                          "measure how the HA layer (drills.ha.backend) recovers: detection, "
                                          "promotion, path back.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm a drill against production.")] = False,
    reason: Annotated[str | None, typer.Option(help="Why (required with --execute against production; "
                                                    "recorded in the report).")] = None,
    stop_on: Annotated[list[str] | None, typer.Option(
        "--stop-on", help="An alert that stops and undoes the drill when it fires (repeatable; adds to "
                          "drills.alerts.stop_on).", show_default=False)] = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Fail the database over to another region, measure RTO and RPO with a canary writer, and undo
    everything if a step fails or the drill is interrupted. Exit 0 passed, 1 failed/aborted/refused."""
    from sre.drills.failover import DrillRequest, default_actor, plan, validate

    cfg = load(config)
    req = DrillRequest(from_region, to_region, cluster, Mode.unplanned.value if observe else mode.value, failback,
                       reason, "manual", default_actor(), stop_on=list(stop_on or []),
                       kind="observed" if observe else "orchestrated")
    if not execute:
        p = plan(cfg, req)
        emit(output, p, lambda c: _print_plan(c, p))
        return
    validate(cfg, req, execute=True, yes=yes)

    from sre.cli._common import console
    from sre.drills.failover import run_drill
    from sre.store import open_store

    con = console(stderr=output is Output.json)
    store = open_store(cfg)
    con.print(f"drill: {from_region} -> {to_region} ({mode.value}{', with failback' if failback else ''}); "
              "Ctrl-C stops it and undoes what it did")
    rep = run_drill(cfg, store, req, on_event=_progress(con))
    emit(output, rep, lambda c: _print_report(c, rep))
    if rep.get("interrupted"):
        raise typer.Exit(EXIT_INTERRUPTED)
    if rep["status"] != "passed":
        raise typer.Exit(1)


@app.command("list")
def list_(
    limit: Annotated[int, typer.Option(help="Newest first, at most this many.")] = 20,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Drills recorded in the state store."""
    from sre.drills.history import list_drills

    rows = list_drills(load(config), limit)

    def render(c: Console) -> None:
        c.print(table("failover drills", ["id", "started (UTC)", "cluster", "switch", "mode", "status", "RTO",
                                          "RPO rows"],
                      [[r["id"], r["started"][:19].replace("T", " "), r["cluster"],
                        f"{r['from_region']} -> {r['to_region']}" + (" -> back" if r["failback"] else ""),
                        r["mode"], styled(_STATUS.get(r["status"], plain(r["status"]))),
                        "-" if r["rto_seconds"] is None else f"{r['rto_seconds']:.3f}s",
                        "-" if r["rpo_rows"] is None else r["rpo_rows"]] for r in rows]))

    emit(output, rows, render)


@app.command()
def show(
    drill_id: Annotated[int, typer.Argument(help="The drill's id (sre drill list).")],
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """One drill's report: Markdown for people, the full JSON for machines."""
    from sre.drills.history import get_drill

    row = get_drill(load(config), drill_id)

    def render(c: Console) -> None:
        if row["markdown"]:
            from rich.markdown import Markdown

            c.print(Markdown(row["markdown"]))
        else:
            c.print(f"drill {drill_id}: {plain(row['status'])} (started {row['started']}); no report yet")
            for e in row["report"].get("timeline", []):
                c.print(f"  {e['status']:<10} {e['step']:<20} {e['duration_seconds'] or '':>8}")

    emit(output, row["report"] or row, render)
