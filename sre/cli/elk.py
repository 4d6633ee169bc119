"""`sre elk render|plan|apply`: Elasticsearch ILM policies, component and index templates as code."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sre.cli._common import ConfigOpt, Output, OutputOpt, emit, load, table
from sre.cli._plan import AdoptOpt, ShowUnchangedOpt

if TYPE_CHECKING:
    from sre.config import SreConfig
    from sre.provision.elasticsearch import Desired
    from sre.provision.target import Target

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


def _make(config: Path | None, directory: Path | None, prune: bool, adopt: list[str] | None,
          verify: bool | None = None) -> tuple[SreConfig, Callable[[], list[Target]]]:
    from sre.provision.elasticsearch import targets

    cfg = load(config)
    return cfg, lambda: targets(cfg, directory=directory, prune=prune, adopt=adopt or (), verify=verify)


@app.command()
def plan(
    config: ConfigOpt = None,
    directory: DirOpt = None,
    prune: PruneOpt = False,
    adopt: AdoptOpt = None,
    show_unchanged: ShowUnchangedOpt = False,
    output: OutputOpt = Output.table,
) -> None:
    """Compare elk/ with the cluster and list creates, updates, drift and deletes with diffs. Exit 1 when
    there are changes."""
    from sre.cli._plan import plan_command

    _, make = _make(config, directory, prune, adopt)
    plan_command(make, output, adopt=adopt or (), show_unchanged=show_unchanged)


@app.command()
def apply(
    config: ConfigOpt = None,
    directory: DirOpt = None,
    prune: PruneOpt = False,
    adopt: AdoptOpt = None,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Skip the simulate-index check after applying.")]
    = False,
    output: OutputOpt = Output.table,
) -> None:
    """Apply the plan in dependency order, then simulate a new index of each data stream. Exit 1 when
    a change was refused (by the plan or by Elasticsearch) or a check failed."""
    from sre.cli._plan import apply_command

    cfg, make = _make(config, directory, prune, adopt, verify=False if no_verify else None)
    apply_command(cfg, "elk", make, output, adopt=adopt or ())
