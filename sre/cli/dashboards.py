"""`sre dashboards render|plan|apply|validate`: Grafana dashboards as code."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sre.cli._common import EXIT_FAILED, ConfigOpt, Output, OutputOpt, emit, load, plain, table
from sre.cli._plan import AdoptOpt, ShowUnchangedOpt

if TYPE_CHECKING:
    from sre.config import SreConfig
    from sre.provision.dashboards import Sources
    from sre.provision.target import Target

app = typer.Typer(no_args_is_help=True)

DirOpt = Annotated[
    Path | None,
    typer.Option("--dir", help="Dashboards directory (default: dashboards.dir, else the one shipped with sre).",
                 show_default=False),
]
PruneOpt = Annotated[bool, typer.Option("--prune", help="Delete dashboards tagged managed-by:sre that are gone from code.")]
DeepOpt = Annotated[
    bool, typer.Option("--deep", help="Fetch every managed dashboard to catch hand edits inside panels (one GET each).")
]


class RenderFormat(StrEnum):
    json = "json"
    provisioning = "provisioning"
    configmap = "configmap"


def _sources(cfg: SreConfig, directory: Path | None) -> Sources:
    from sre.provision.grafana import sources_for

    return sources_for(cfg, directory)


@app.command()
def render(
    out: Annotated[Path, typer.Option("--out", help="Directory to write into.")] = Path("var/dashboards"),
    fmt: Annotated[RenderFormat, typer.Option("--format", help="json files; Grafana file provisioning (provider "
                                              "YAML + JSON); or Kubernetes ConfigMaps for the Grafana sidecar.")]
    = RenderFormat.json,
    directory: DirOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Write the dashboards as files (deterministic: the same code gives the same bytes)."""
    from sre.provision.dashboards_render import render as do_render

    cfg = load(config)
    sources = _sources(cfg, directory)
    written = do_render(sources, out, fmt.value)
    data = {"format": fmt.value, "out": str(out), "dashboards": len(sources.dashboards),
            "files": [str(p) for p in written]}

    def show(c):  # type: ignore[no-untyped-def]
        for p in written:
            c.print(plain(p))
        c.print(f"{len(sources.dashboards)} dashboards rendered as {fmt.value} under {plain(out)}")
        if fmt is RenderFormat.provisioning:
            c.print(f"point Grafana at {plain(out / 'provisioning')} (GF_PATHS_PROVISIONING) or copy "
                    f"{plain(out / 'provisioning' / 'dashboards' / 'sre.yaml')} into its provisioning/dashboards/")

    emit(output, data, show)


def _make(config: Path | None, directory: Path | None, prune: bool, deep: bool,
          adopt: list[str] | None) -> tuple[SreConfig, Callable[[], list[Target]]]:
    from sre.provision.grafana import targets

    cfg = load(config)
    return cfg, lambda: targets(cfg, directory=directory, prune=prune, deep=deep, adopt=adopt or ())


@app.command()
def plan(
    prune: PruneOpt = False,
    deep: DeepOpt = False,
    adopt: AdoptOpt = None,
    show_unchanged: ShowUnchangedOpt = False,
    directory: DirOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Compare code with Grafana: create/update/delete/drift/unchanged with a diff each. Exit 1 when changes."""
    from sre.cli._plan import plan_command

    _, make = _make(config, directory, prune, deep, adopt)
    plan_command(make, output, adopt=adopt or (), show_unchanged=show_unchanged)


@app.command()
def apply(
    prune: PruneOpt = False,
    deep: DeepOpt = False,
    adopt: AdoptOpt = None,
    directory: DirOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Make Grafana match the code: folders first, then dashboards (folderUid always). Exit 1 when a
    change was refused or failed."""
    from sre.cli._plan import apply_command

    cfg, make = _make(config, directory, prune, deep, adopt)
    apply_command(cfg, "dashboards", make, output, adopt=adopt or ())


@app.command()
def validate(
    live: Annotated[bool, typer.Option("--live", help="Also run each query against endpoints.prometheus.")] = False,
    require: Annotated[str, typer.Option("--require", help="With --live: queries naming only metrics with this "
                                         "prefix must return data.")] = "sre_",
    require_all: Annotated[bool, typer.Option("--all", help="With --live: every query must return data, except "
                                              "those reading a selector alerts.live_absent lists.")] = False,
    directory: DirOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Check every query parses (promtool), names known metrics, and every dashboard follows the conventions."""
    from sre.errors import UsageError
    from sre.provision.dashboards_validate import live_check
    from sre.provision.dashboards_validate import validate as do_validate

    cfg = load(config)
    sources = _sources(cfg, directory)
    report = do_validate(sources)
    failed = bool(report.errors)
    if live:
        if cfg.endpoints.prometheus is None:
            raise UsageError("--live needs endpoints.prometheus in the config")
        report.live = live_check(sources, cfg.endpoints.prometheus.url, require_prefix=require,
                                 absent=cfg.alerts.live_absent, require_all=require_all)
        failed = failed or bool(report.live["failed"] or report.live["empty_required"])

    def show(c):  # type: ignore[no-untyped-def]
        rows = [[p.level, p.dashboard, p.where, p.message] for p in report.problems]
        if rows:
            c.print(table("problems", ["level", "dashboard", "where", "problem"], rows))
        if report.live:
            lv = report.live
            rows = ([["failed", q["dashboard"], q["where"], q["error"]] for q in lv["failed"]]
                    + [["no data", q["dashboard"], q["where"], q["expr"]] for q in lv["empty_required"]]
                    + [["no data (allowed)", q["dashboard"], q["where"], q["expr"]] for q in lv["empty_other"]]
                    + [["no data (listed)", q["dashboard"], q["where"], f"{q['expr']}  [{q['reason']}]"]
                       for q in lv["expected_empty"]])
            if rows:
                c.print(table(f"live against {lv['prometheus']}", ["result", "dashboard", "where", "query"], rows))
            c.print(f"live: {lv['queries']} queries, {len(lv['failed'])} failed, {len(lv['empty_required'])} empty "
                    f"{lv['require_prefix']}* queries, {len(lv['empty_other'])} empty others, "
                    f"{len(lv['expected_empty'])} empty as alerts.live_absent lists")
        status = "[red]invalid[/]" if failed else "[green]valid[/]"
        c.print(f"{status}: {report.dashboards} dashboards, {report.queries} queries, "
                f"{len(report.errors)} errors, {len(report.problems) - len(report.errors)} warnings "
                f"(exporter metrics from {report.metric_sources['exporters']})")

    emit(output, report.to_dict(), show)
    if failed:
        raise typer.Exit(EXIT_FAILED)
