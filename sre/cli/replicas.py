"""`sre replicas check`: lag and link of every PostgreSQL and Redis replica."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from sre.cli._common import ConfigOpt, Output, OutputOpt, emit, load, status_style

app = typer.Typer(no_args_is_help=True)

ClusterOpt = Annotated[
    str | None,
    typer.Option("--cluster", help="Only this PostgreSQL cluster or Redis pair (a name from the config)."),
]
RecordOpt = Annotated[
    bool, typer.Option("--record/--no-record", help="Also store the run and its results in the state store."),
]


def _lag(o: dict[str, Any]) -> str:
    from sre.checks.humanize import human_bytes, human_seconds

    parts = [human_bytes(o.get("lag_bytes"))]
    if o.get("lag_seconds") is not None:
        prefix = "≤ " if o.get("lag_seconds_basis") == "upper_bound" else ""
        parts.append(prefix + human_seconds(o["lag_seconds"]))
    return " / ".join(parts)


@app.command()
def check(config: ConfigOpt = None, cluster: ClusterOpt = None, output: OutputOpt = Output.table,
          record: RecordOpt = False) -> None:
    """Check every replica (all nodes asked at once, each within its timeout); exit 1 if any fails."""
    from rich.markup import escape

    from sre.checks.replication import check_all, outcome
    from sre.errors import CheckFailed, UnreachableError, UsageError

    cfg = load(config)
    results = check_all(cfg, cluster)
    if not results:
        raise UsageError("no replicas to check",
                         hint="configure postgres.clusters.<name>.replicas or redis.pairs.<name>.replicas")
    if record:
        from sre.jobs import record_run

        record_run(cfg, "replicas.check", results, summary=outcome(results).summary)

    def render(console: Any) -> None:
        from rich.table import Table

        t = Table(title="replicas", title_justify="left")
        t.add_column("target", no_wrap=True)
        t.add_column("status", no_wrap=True)
        t.add_column("lag", no_wrap=True)
        t.add_column("link", no_wrap=True)
        t.add_column("message", ratio=1)
        for r in results:
            t.add_row(f"{r.check.removeprefix('replication.')} {r.target}", status_style(r.status), _lag(r.observed),
                      "up" if r.observed.get("connected") else "[red]down[/]", escape(r.message))
        console.print(t)

    emit(output, [r.to_dict() for r in results], render)

    failing = [r for r in results if r.status == "fail"]
    if failing and all("primary_error" in r.observed and "replica_error" in r.observed for r in results):
        raise UnreachableError("no node answered: " + "; ".join(sorted({r.observed["primary_error"] for r in results})))
    if failing:
        raise CheckFailed(f"{len(failing)} of {len(results)} replica(s) failing: "
                          + ", ".join(r.target for r in failing))
