"""`sre deploy render`: the Helm chart's generated files (PrometheusRules, dashboard ConfigMaps)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sre.cli._common import EXIT_FAILED, Output, OutputOpt, emit, table

app = typer.Typer(no_args_is_help=True)


@app.command()
def render(
    chart: Annotated[Path | None, typer.Option("--chart", help="Chart directory (default: deploy/helm/sre).",
                                               show_default=False)] = None,
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 when the files are stale (CI).")] = False,
    output: OutputOpt = Output.table,
) -> None:
    """Render alerts/ and dashboards/ into the chart's files/, with its values.yaml config."""
    from sre.provision import manifests

    chart = chart or manifests.default_chart()
    rendered = manifests.render(chart)
    found = manifests.drift(chart, rendered) if check else manifests.write(chart, rendered)
    data = {"chart": str(chart), "files": len(rendered), "written": not check, **found.as_dict()}
    rows = [[p, kind] for kind in ("changed", "missing", "extra") for p in getattr(found, kind)]
    verb = "stale" if check else "updated"
    emit(output, data, lambda c: c.print(
        table(f"{chart}: {len(rendered)} generated file(s), {len(rows)} {verb}", ["file", "was"], rows)
        if rows else f"{chart}: {len(rendered)} generated file(s), all up to date"))
    if check and found.stale:
        raise typer.Exit(EXIT_FAILED)
