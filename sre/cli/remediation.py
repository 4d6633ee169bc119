"""`sre remediation inbox|list|show|replay|test|breaker status|breaker reset`: the stored alerts, the audit log,
rehearsals, the breaker."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sre.cli._common import ConfigOpt, Output, OutputOpt, emit, load, plain, styled, table

if TYPE_CHECKING:
    from sre.config import SreConfig
    from sre.store import Store

app = typer.Typer(no_args_is_help=True)
breaker_app = typer.Typer(no_args_is_help=True, help="The global circuit breaker: status, and reset by a person.")
app.add_typer(breaker_app, name="breaker")

_OUTCOME_STYLE = {"executed": "green", "dry_run": "cyan", "skipped": "yellow", "refused": "yellow", "failed": "red",
                  "escalated": "red"}


def _store(cfg: SreConfig) -> Store:
    from sre.store import open_store

    return open_store(cfg)


def _short_time(iso: str | None) -> str:
    return iso[:19].replace("T", " ") if iso else ""


class InboxState(StrEnum):
    pending = "pending"
    claimed = "claimed"
    done = "done"


class AlertStatus(StrEnum):
    firing = "firing"
    resolved = "resolved"


@app.command()
def inbox(
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
    state: Annotated[InboxState | None, typer.Option(help="pending: not yet routed; claimed: a worker holds it; "
                                                          "done: routed (see outcome).")] = None,
    status: Annotated[AlertStatus | None, typer.Option(help="Only firing or only resolved alerts.")] = None,
    alert: Annotated[str | None, typer.Option(help="Only this alertname.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 50,
) -> None:
    """The alerts the webhook stored (every one, before it answered), newest first, with where each stands."""
    from sre.remediation.inbox_view import read_inbox

    store = _store(load(config))
    try:
        rows = read_inbox(store, state=state.value if state else None, status=status.value if status else None,
                          alertname=alert, limit=limit)
    finally:
        store.dispose()
    data = [r.model_dump(mode="json") for r in rows]

    def render(con: Any) -> None:
        out = [[r.id, _short_time(r.received_at.isoformat()), r.alertname, r.status, r.state, r.outcome or "",
                r.remediation_id or "", ", ".join(f"{k}={v}" for k, v in sorted(r.labels.items())
                                                  if k != "alertname")[:80]] for r in rows]
        con.print(table(f"alert inbox ({len(rows)})", ["id", "received (UTC)", "alert", "status", "state", "outcome",
                                                      "remediation", "labels"], out))

    emit(output, data, render)


@app.command("list")
def list_(
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 50,
    outcome: Annotated[str | None, typer.Option(help="Only this outcome: executed, dry_run, skipped, refused, failed, "
                                                     "escalated.")] = None,
    alert: Annotated[str | None, typer.Option(help="Only this alertname.")] = None,
) -> None:
    """Every remediation decision: executed, dry run, stopped by which guard, failed, escalated."""
    from sqlalchemy import select

    from sre.remediation.audit import remediation_dict
    from sre.store.remediation import Remediation

    store = _store(load(config))
    with store.session() as s:
        q = select(Remediation).order_by(Remediation.id.desc()).limit(limit)
        if outcome:
            q = q.where(Remediation.outcome == outcome)
        if alert:
            q = q.where(Remediation.alertname == alert)
        rows = [remediation_dict(r) for r in s.scalars(q)]

    def render(con: Any) -> None:
        out = []
        for r in rows:
            style = _OUTCOME_STYLE.get(r["outcome"], "")
            shown = styled(f"[{style}]{plain(r['outcome'])}[/]") if style else r["outcome"]
            out.append([r["id"], _short_time(r["created_at"]), r["alertname"], r["action"], r["target"], shown,
                        r["guard"] or "", r["state"], r["reason"][:80]])
        con.print(table(f"remediations ({len(rows)})", ["id", "at (UTC)", "alert", "action", "target", "outcome",
                                                         "guard", "state", "reason"], out))

    emit(output, rows, render)


@app.command()
def show(
    remediation_id: Annotated[int, typer.Argument(help="The remediation's id (from `sre remediation list`).")],
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
    graph: Annotated[Path | None, typer.Option(help="Also write a PNG of the alert's expression and the "
                                                    "verification query over the last hour to this file.")] = None,
) -> None:
    """One decision with its parameters, result and timeline."""
    from sqlalchemy import select

    from sre.errors import UsageError
    from sre.remediation.audit import remediation_dict
    from sre.store.remediation import Remediation, RemediationEvent

    cfg = load(config)
    store = _store(cfg)
    with store.session() as s:
        r = s.get(Remediation, remediation_id)
        if r is None:
            raise UsageError(f"no remediation {remediation_id}", hint="sre remediation list shows the ids")
        events = list(s.scalars(select(RemediationEvent).where(RemediationEvent.remediation_id == remediation_id)
                                .order_by(RemediationEvent.id)))
        data = remediation_dict(r, events)
    if graph is not None:
        from sre.errors import UnreachableError
        from sre.remediation.graph import GraphError
        from sre.remediation.graph import render as render_graph

        try:
            g = render_graph(cfg, store, remediation_id)
        except GraphError as exc:
            raise UnreachableError(f"no graph: {exc}") from None
        graph.write_bytes(g.png)
        data["graph"] = {"file": str(graph), "series": g.summary()}

    def render(con: Any) -> None:
        import json

        fields = ["alertname", "fingerprint", "starts_at", "runbook", "action", "target", "dry_run", "outcome",
                  "guard", "reason", "state", "silence_id", "verify_query", "verify_deadline", "started_at",
                  "finished_at", "action_seconds", "verified_at", "resolved_at", "host"]
        rows = [[f, data.get(f)] for f in fields if data.get(f) not in (None, "")]
        rows += [["params", json.dumps(data["params"])], ["result", json.dumps(data["result"])]]
        con.print(table(f"remediation #{remediation_id}", ["field", "value"], rows))
        con.print(table("timeline (UTC)", ["at", "event", "message"],
                        [[_short_time(e["at"]), e["kind"], e["message"]] for e in data["events"]]))
        if "graph" in data:
            con.print(f"graph: {plain(data['graph']['file'])}")

    emit(output, data, render)


def _breaker_dict(st: Any) -> dict[str, Any]:
    return {"open": st.open, "opened_at": st.opened_at.isoformat() if st.opened_at else None, "reason": st.reason,
            "reset_at": st.reset_at.isoformat() if st.reset_at else None, "reset_by": st.reset_by,
            "actions_in_window": st.actions_in_window, "failures_in_window": st.failures_in_window}


@breaker_app.command("status")
def breaker_status(config: ConfigOpt = None, output: OutputOpt = Output.table) -> None:
    """Open or closed, why, and the counts in the current window. Exit 1 while open."""
    from sre.remediation import breaker

    cfg = load(config)
    st = breaker.status(_store(cfg), cfg.remediation.breaker)
    data = _breaker_dict(st)
    b = cfg.remediation.breaker

    def render(con: Any) -> None:
        if st.open:
            con.print(f"[red]open[/] since {_short_time(data['opened_at'])} UTC: {plain(st.reason)}")
            con.print("every alert escalates to a person; close it with: sre remediation breaker reset")
        else:
            con.print("[green]closed[/]" + (f" (reset {_short_time(data['reset_at'])} UTC by {plain(st.reset_by)})"
                                            if st.reset_at else ""))
        con.print(f"in the last {b.window:g}s: {st.actions_in_window}/{b.max_actions} actions, "
                  f"{st.failures_in_window}/{b.max_failures} failures")

    emit(output, data, render)
    if st.open:
        raise typer.Exit(1)


@breaker_app.command("reset")
def breaker_reset(
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
    by: Annotated[str | None, typer.Option(help="Who closes it (default: the login name).")] = None,
) -> None:
    """Close the circuit breaker: remediation acts again, counting from now."""
    import getpass

    from sre.remediation import breaker

    cfg = load(config)
    who = by or getpass.getuser()
    st = breaker.reset(_store(cfg), who)
    emit(output, _breaker_dict(st), lambda con: con.print(f"[green]closed[/] by {who}: remediation acts again"))


_DECISION_STYLE = {"act": "green", "dry_run": "cyan", "stopped": "yellow", "failed": "red"}


@app.command()
def replay(
    source: Annotated[str | None, typer.Argument(help="An Alertmanager v4 payload, a list of alerts or one alert "
                                                      "(JSON or YAML file; - for stdin).", show_default=False)] = None,
    alert: Annotated[str | None, typer.Option("--alert", help="Or: an alert by name ...")] = None,
    label: Annotated[list[str] | None, typer.Option("--label", "-l", help="... with these labels (name=value, "
                                                                          "repeatable).")] = None,
    execute: Annotated[bool, typer.Option("--execute", help="Run it for real through the normal path "
                                                            "(guarded, audited).")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm --execute.")] = False,
    reason: Annotated[str | None, typer.Option(help="Why it is run by hand (required with --execute).")] = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """What would sre do with this alert? Routing, every guard (from the real store), the action and its
    verification query, with no side effect. Exit 0 when it would act, 1 when it would not."""
    import getpass
    import sys

    from sre.content import runbooks_dir
    from sre.errors import UsageError
    from sre.remediation import replay as rp
    from sre.remediation.routing import Runbooks

    if (source is None) == (alert is None):
        raise UsageError("give a FILE (or -) or --alert NAME", hint="sre remediation replay --alert X --label k=v")
    if source is not None and label:
        raise UsageError("--label goes with --alert, not with a file")
    if execute and not (yes and reason and reason.strip()):
        raise UsageError("--execute acts for real: add --yes and --reason TEXT")
    if source is not None:
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read {source}: {exc.strerror or exc}") from None
        alerts = rp.read_alerts(text)
    else:
        assert alert is not None
        alerts = [rp.alert_from({"labels": {**rp.parse_labels(label or []), "alertname": alert}})]
    cfg = load(config)
    store = _store(cfg)
    books = Runbooks(runbooks_dir(cfg))
    results = [rp.replay(cfg, store, a, books.get(a.alertname)) for a in alerts]
    data: dict[str, Any] = {"replays": [r.to_dict() for r in results]}
    if execute:
        who = getpass.getuser()
        data["executed"] = [rp.execute(cfg, store, a, books.get(a.alertname), reason=reason or "", by=who)
                            for a in alerts]

    def render(con: Any) -> None:
        for r in results:
            style = _DECISION_STYLE.get(r.decision, "")
            con.print(f"[bold]{plain(r.alertname)}[/] ({r.status}) -> runbook {plain(r.runbook or '-')}: "
                      + (f"[{style}]{r.decision}[/]" if style else r.decision)
                      + (f" by guard [bold]{r.guard}[/]" if r.guard else "") + (f": {plain(r.reason)}" if r.reason else ""))
            if r.action:
                con.print(f"  action  {r.action} on {plain(r.target or '-')}")
            if r.would:
                con.print(f"  would   {plain(r.would)}")
            if r.dry_run_reason:
                con.print(f"  dry run {plain(r.dry_run_reason)}")
            if r.verify_query:
                con.print(f"  verify  {plain(r.verify_query)}  (within {r.verify_within:g}s)")
            if r.checks:
                con.print(table(None, ["guard", "", "why"],
                                [[c.guard, styled("[green]pass[/]" if c.passed else "[yellow]stop[/]"), c.detail]
                                 for c in r.checks]))
        for rid in data.get("executed", []):
            con.print(f"executed: remediation #{rid} (sre remediation show {rid})" if rid is not None
                      else "executed: no remediation was recorded")

    emit(output, data, render)
    if not execute and not all(r.decision in ("act", "dry_run") for r in results):
        raise typer.Exit(1)


@app.command("test")
def test_(
    files: Annotated[list[Path] | None, typer.Argument(help="Test files (default: every runbooks/tests/*.yaml).",
                                                        show_default=False)] = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Run the runbook tests: each case's alert against a fresh in-memory store, its decision against the
    expected one. Exit 1 when a case fails or an automated runbook lacks a case that acts and one that refuses."""
    from sre.content import runbooks_dir
    from sre.remediation.runbook import scan_runbooks
    from sre.remediation.runbook_tests import coverage_problems, run_suite

    directory = runbooks_dir(load(config))
    runbooks, _ = scan_runbooks(directory)
    result = run_suite(directory, only=files or None, runbooks=runbooks)
    missing = [] if files else [(rb.alert, msg) for rb, msg in coverage_problems(runbooks, result)]
    ok = result.ok and not missing
    data = {"ok": ok, "cases": [c.to_dict() for c in result.cases], "errors": result.errors,
            "missing": [{"runbook": n, "problem": m} for n, m in missing]}

    def render(con: Any) -> None:
        for c in result.cases:
            mark = "[green]ok[/]  " if c.ok else "[red]FAIL[/]"
            con.print(f"{mark} {plain(c.runbook)}: {plain(c.name)}")
            for p in c.problems:
                con.print(f"       {plain(p)}")
        for e in result.errors:
            con.print(f"[red]error[/] {plain(e)}")
        for n, m in missing:
            con.print(f"[red]missing[/] {plain(n)}: {plain(m)}")
        passed = sum(c.ok for c in result.cases)
        con.print(f"{passed}/{len(result.cases)} case(s) passed" + ("" if ok else ", [red]failures above[/]"))

    emit(output, data, render)
    if not ok:
        raise typer.Exit(1)


def _parse_when(text: str) -> Any:
    """An ISO time (UTC unless it says otherwise) for --until."""
    from datetime import UTC, datetime

    from sre.errors import UsageError

    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--until {text!r}: expected an ISO time such as 2026-01-31T22:00Z") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _window_rows(items: list[dict[str, Any]]) -> list[list[Any]]:
    return [[w["id"], w["scope"], _short_time(w["starts_at"]), _short_time(w["ended_at"] or w["ends_at"]),
             styled("[yellow]open[/]") if w["open"] else "planned" if not w["ended_at"] else "ended", w["created_by"],
             w["reason"]] for w in items]


_WINDOW_COLUMNS = ["id", "scope", "from (UTC)", "until (UTC)", "state", "by", "reason"]


@app.command()
def pause(
    reason: Annotated[str, typer.Option(help="Why (shown in every decision the window stops).")],
    for_: Annotated[str | None, typer.Option("--for", help="How long, e.g. 2h or 30m (default 1h).")] = None,
    until: Annotated[str | None, typer.Option(help="Or until this time (ISO, UTC unless it says otherwise).")] = None,
    scope: Annotated[str | None, typer.Option(help="Only namespace=NAME.")] = None,
    alert: Annotated[str | None, typer.Option(help="Only this alert.")] = None,
    cluster: Annotated[str | None, typer.Option(help="Only this PostgreSQL cluster.")] = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
    by: Annotated[str | None, typer.Option(help="Who pauses (default: the login name).")] = None,
) -> None:
    """Open a maintenance window: remediation in its scope (default: everything) is paused and every stopped
    alert is recorded as `paused` with the window's id. It ends by itself."""
    import getpass
    from datetime import timedelta

    from sre.config import parse_duration
    from sre.errors import UsageError
    from sre.remediation import windows
    from sre.store.base import utcnow

    if for_ and until:
        raise UsageError("give --for or --until, not both")
    kind, value = windows.parse_scope(scope, alert, cluster)
    if until:
        end = _parse_when(until)
    else:
        try:
            seconds = parse_duration(for_ or "1h")
        except ValueError as exc:
            raise UsageError(f"--for {for_!r}: {exc}") from None
        end = utcnow() + timedelta(seconds=seconds)
    cfg = load(config)
    w = windows.pause(_store(cfg), reason=reason, by=by or getpass.getuser(), until=end, scope_kind=kind,
                      scope_value=value)
    data = w.to_dict()
    emit(output, data, lambda con: con.print(f"paused {plain(w.scope)} until {w.ends_at:%Y-%m-%d %H:%M:%S}Z "
                                             f"(window {plain(w.label)}; sre remediation resume {w.id} ends it)"))


@app.command()
def resume(
    window_id: Annotated[int, typer.Argument(help="The window's id (from `sre remediation windows`).")],
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
    by: Annotated[str | None, typer.Option(help="Who resumes (default: the login name).")] = None,
) -> None:
    """End a maintenance window now: remediation in its scope acts again."""
    import getpass

    from sre.remediation import windows

    cfg = load(config)
    w = windows.resume(_store(cfg), window_id, by or getpass.getuser())
    emit(output, w.to_dict(), lambda con: con.print(f"resumed {plain(w.scope)} (window {plain(w.label)} ended)"))


@app.command("windows")
def windows_(
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
    all_: Annotated[bool, typer.Option("--all", help="Ended windows too.")] = False,
) -> None:
    """Maintenance windows open or planned (stored, and the recurring ones of the config open now)."""
    from sre.remediation import windows

    cfg = load(config)
    items = [w.to_dict() for w in windows.listing(_store(cfg), cfg, include_ended=all_)]
    emit(output, items, lambda con: con.print(table(f"maintenance windows ({len(items)})", _WINDOW_COLUMNS,
                                                    _window_rows(items))))
