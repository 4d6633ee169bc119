"""`sre elk render|plan|apply`: Elasticsearch ILM policies, component and index templates as code."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sre.cli._common import EXIT_FAILED, ConfigOpt, Output, OutputOpt, emit, load, plain, status_style, styled, table

if TYPE_CHECKING:
    from sre.config import SreConfig
    from sre.provision.elasticsearch import Desired

app = typer.Typer(no_args_is_help=True)

DirOpt = Annotated[
    Path | None,
    typer.Option("--dir", help="Directory of policies and templates (default: elk.dir, else the shipped elk/).",
                 show_default=False),
]
PruneOpt = Annotated[
    bool, typer.Option("--prune", help="Also delete managed objects gone from the directory (never one in use).")
]


def _desired(cfg: SreConfig, directory: Path | None) -> Desired:
    from sre.provision.elasticsearch import load_desired

    return load_desired(directory or cfg.elk.dir, cfg.elk.data_streams)


@app.command()
def render(
    config: ConfigOpt = None,
    directory: DirOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Also write one JSON body per object under this directory.",
                                             show_default=False)] = None,
    output: OutputOpt = Output.json,
) -> None:
    """Print the requests that create every object, bodies as the API takes them, in apply order."""
    from sre.provision.elasticsearch import meta_of

    desired = _desired(load(config), directory)
    requests = desired.requests()
    if out is not None:
        for req in requests:
            if req["body"] is None:
                continue
            path = out / req["kind"] / f"{req['name']}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(req["body"], indent=2) + "\n")
    rows = [[r["method"], r["path"], meta_of(r["kind"], r["body"]).get("hash") if r["body"] else ""]
            for r in requests]
    emit(output, [{k: v for k, v in r.items() if k in ("method", "path", "body")} for r in requests],
         lambda c: c.print(table(f"{len(requests)} requests from {desired.source}", ["method", "path", "hash"], rows)))


@app.command()
def plan(
    config: ConfigOpt = None,
    directory: DirOpt = None,
    prune: PruneOpt = False,
    show_unchanged: Annotated[bool, typer.Option("--show-unchanged", help="List unchanged objects too.")] = False,
    output: OutputOpt = Output.table,
) -> None:
    """Compare elk/ with the cluster and list creates, updates, drift and deletes with diffs. Exit 1 when
    there are changes."""
    from sre.cli._plan import show_plan
    from sre.provision.elasticsearch import adapter_for, plan_live, record_plan

    cfg = load(config)
    desired = _desired(cfg, directory)
    adapter = adapter_for(cfg)
    try:
        p = plan_live(adapter, desired, prune=prune)
    finally:
        adapter.close()
    record_plan(p)
    show_plan(p, output, show_unchanged=show_unchanged)
    if p.has_changes:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def apply(
    config: ConfigOpt = None,
    directory: DirOpt = None,
    prune: PruneOpt = False,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Skip the simulate-index check after applying.")]
    = False,
    output: OutputOpt = Output.table,
) -> None:
    """Apply the plan in dependency order, then simulate a new index of each data stream. Exit 1 when
    a change was refused (by the plan or by Elasticsearch) or a check failed."""
    from sre.provision.elasticsearch import REFUSED, adapter_for, plan_live, record_plan
    from sre.provision.elasticsearch import apply as apply_plan
    from sre.provision.elasticsearch import verify as verify_templates

    cfg = load(config)
    desired = _desired(cfg, directory)
    adapter = adapter_for(cfg)
    try:
        p = plan_live(adapter, desired, prune=prune)
        record_plan(p)
        started = time.time()
        report = apply_plan(p, adapter)
        if not no_verify and cfg.elk.verify:
            report.verified = verify_templates(desired, adapter)
        report.requests = adapter.requests
    finally:
        adapter.close()

    from sre.annotate import annotate_apply  # here, not at the top: CLI start-up time

    annotate_apply(cfg, "elk", len(report.applied),
                   ", ".join(f"{ch.action.value} {ch.kind} {ch.name}" for ch in report.applied[:10]), started)
    data: dict[str, Any] = {"plan": p.to_dict(), **report.to_dict()}

    def render_report(c: Any) -> None:
        rows: list[list[Any]] = [[ch.action.value, ch.kind, ch.name, "done"] for ch in report.applied]
        rows += [[ch.action.value, ch.kind, ch.name, styled("[red]refused[/]")] for ch in report.refused]
        if rows:
            c.print(table("applied to elasticsearch", ["action", "kind", "name", "result"], rows))
        for ch in report.refused:  # whole lines, so index names are never cut by column wrapping
            c.print(f"[red]refused[/]: {ch.action.value} {ch.kind} {plain(ch.name)}: {plain(ch.reason.removeprefix(REFUSED))}")
        if report.verified:
            c.print(table("new index check (_simulate_index)", ["status", "index", "result"],
                          [[status_style(r.status), r.target, r.message] for r in report.verified]))
        unchanged = p.counts()["unchanged"]
        c.print(f"elasticsearch: {len(report.applied)} applied, {len(report.refused)} refused, {unchanged} unchanged "
                f"({report.requests} requests)")

    emit(output, data, render_report)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)
