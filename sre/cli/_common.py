"""What every command shares: options, loading config, printing tables or JSON, exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from sre.config import SreConfig


class Output(StrEnum):
    table = "table"
    json = "json"


ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Path of sre.yaml (default: $SRE_CONFIG, else embedded defaults).",
                 envvar="SRE_CONFIG", show_default=False),
]
OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="table for people, json for machines.")]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def load(config: Path | None) -> SreConfig:
    """Load and validate the config; a ConfigError becomes exit 2 in `sre.cli.main`."""
    from sre.config import load_config

    return load_config(config)


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def emit(output: Output, data: Any, render: Callable[[Console], None]) -> None:
    """Print `data` as JSON (machines) or call `render` with a Rich console (people)."""
    if output is Output.json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    else:
        render(console())


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> Any:
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*["" if v is None else str(v) for v in row])
    return t


def status_style(status: str) -> str:
    return {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]fail[/]"}.get(status, status)
