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
    from rich.text import Text

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


def plain(value: Any) -> str:
    """Outside-world text (a message, an error, a name) to print through Rich markup as it is:
    text such as `[/:]` in an S3 error would otherwise be read as a tag (MarkupError)."""
    from rich.markup import escape

    return escape(str(value))


def styled(markup: str) -> Text:
    """Our own markup for a table cell (table() prints plain strings as they are)."""
    from rich.text import Text

    return Text.from_markup(markup)


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> Any:
    """A Rich table; str cells are printed as they are, Text cells (styled()) keep their style."""
    from rich.table import Table
    from rich.text import Text

    t = Table(title=plain(title) if title is not None else None, title_justify="left")
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*[v if isinstance(v, Text) else "" if v is None else plain(v) for v in row])
    return t


def status_style(status: str) -> Text:
    return styled({"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]fail[/]"}.get(status, plain(status)))
