"""`sre dr status`: per region pair, ready / degraded / not_ready with every reason and its fix,
the RPO and RTO estimates against the objectives, and how far past estimates were from drills."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from sre.cli._common import ConfigOpt, Output, OutputOpt, emit, load, table

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(no_args_is_help=True)

_VERDICT = {"ready": "[green]READY[/]", "degraded": "[yellow]DEGRADED[/]", "not_ready": "[red]NOT READY[/]"}


def _s(v: float | None) -> str:
    from sre.checks.humanize import human_seconds

    return "-" if v is None else human_seconds(v)


def _print(c: Console, pairs: list[dict[str, Any]]) -> None:
    from rich.markup import escape

    from sre.checks.humanize import human_bytes

    for p in pairs:
        c.print(f"[bold]{p['from']} -> {p['to']}[/]: {_VERDICT[p['verdict']]}  "
                f"(replication: {p['inputs'].get('replication')})")
        for r in p["reasons"]:
            mark = "[red]not ready[/]" if r["severity"] == "not_ready" else "[yellow]degraded[/]"
            c.print(f"  {mark} {r['what']}: {escape(r['message'])}")
            c.print(f"      fix: {escape(r['fix'])}")
        rows = [[x["cluster"], x["kind"], _s(x["seconds"]), human_bytes(x["bytes"]) if x["bytes"] is not None else "-",
                 _s(x["objective_seconds"]), x["detail"]] for x in p["rpo"]]
        c.print(table("RPO if the source region were lost now", ["cluster", "kind", "seconds", "bytes", "objective",
                                                                 "basis"], rows))
        rto = p["rto"]
        terms = ", ".join(f"{k} {_s(v)}" for k, v in rto["terms"].items())
        c.print(f"  RTO estimate: {_s(rto['seconds'])} (objective {_s(rto['objective_seconds'])}) = {terms}")
        for n in rto["notes"]:
            c.print(f"    note: {escape(n)}")
        for e in p["last_estimates_vs_measured"]:
            c.print(f"  drill {e['drill']} ({e['status']}): estimated {_s(e['estimated_rto_seconds'])}, measured "
                    f"{_s(e['measured_rto_seconds'])} RTO (difference {_s(e['rto_difference_seconds'])}); RPO "
                    f"estimated {_s(e['estimated_rpo_seconds'])}, measured {_s(e['measured_rpo_seconds'])}")


@app.command()
def status(
    config: ConfigOpt = None,
    from_region: Annotated[str | None, typer.Option("--from", help="Only the pair losing this region.",
                                                    show_default=False)] = None,
    to_region: Annotated[str | None, typer.Option("--to", help="Only the pair failing over to this region.",
                                                  show_default=False)] = None,
    live: Annotated[bool, typer.Option("--live", help="Run the checks now instead of reusing fresh stored "
                                                      "results.")] = False,
    output: OutputOpt = Output.table,
) -> None:
    """The verdict for every region pair; exit 1 when any pair is not ready."""
    # Imported here for CLI start-up time: the store and the checks' clients load only when run.
    from sqlalchemy.exc import SQLAlchemyError

    from sre.dr.readiness import status as readiness
    from sre.errors import CheckFailed
    from sre.store import open_store

    cfg = load(config)
    # Read without migrating first (a third of the answer's time); a store that is new or behind
    # fails the read, is migrated, and is read again.
    store = open_store(cfg, migrate=False)
    try:
        try:
            found = readiness(cfg, store, from_region, to_region, live=live)
        except SQLAlchemyError:
            store.migrate()
            found = readiness(cfg, store, from_region, to_region, live=live)
    finally:
        store.dispose()
    results = [pr.to_dict() for pr in found]
    emit(output, results, lambda c: _print(c, results))
    bad = [f"{p['from']} -> {p['to']}" for p in results if p["verdict"] == "not_ready"]
    if bad:
        raise CheckFailed(f"not ready: {', '.join(bad)}")
