"""`sre remediation list|show|breaker status|breaker reset`: the audit log and the circuit breaker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from sre.cli._common import ConfigOpt, Output, OutputOpt, emit, load, table

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
            shown = f"[{style}]{r['outcome']}[/]" if style else r["outcome"]
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
) -> None:
    """One decision with its parameters, result and timeline."""
    from sqlalchemy import select

    from sre.errors import UsageError
    from sre.remediation.audit import remediation_dict
    from sre.store.remediation import Remediation, RemediationEvent

    store = _store(load(config))
    with store.session() as s:
        r = s.get(Remediation, remediation_id)
        if r is None:
            raise UsageError(f"no remediation {remediation_id}", hint="sre remediation list shows the ids")
        events = list(s.scalars(select(RemediationEvent).where(RemediationEvent.remediation_id == remediation_id)
                                .order_by(RemediationEvent.id)))
        data = remediation_dict(r, events)

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
            con.print(f"[red]open[/] since {_short_time(data['opened_at'])} UTC: {st.reason}")
            con.print("every alert escalates to a person; close it with: sre remediation breaker reset")
        else:
            con.print("[green]closed[/]" + (f" (reset {_short_time(data['reset_at'])} UTC by {st.reset_by})"
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
