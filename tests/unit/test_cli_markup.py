"""Outside-world text printed by the CLI comes out as it is: text such as `[/:]` (an S3 error
quoting its bucket-name pattern) is never read as Rich markup, which raised MarkupError."""

from __future__ import annotations

import io
import time

from rich.console import Console

from sre.cli._common import status_style, table
from sre.cli.drill import _print_report, _progress
from sre.drills.steps import Event

S3_ERROR = 'S3 list s3:/main: Invalid bucket name "": must match "^[a-zA-Z0-9.\\-_]{1,255}$" or "arn[/:]x"'


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=400, color_system=None), out


def test_a_drill_event_and_report_with_brackets_print_as_they_are() -> None:
    con, out = _console()
    on_event = _progress(con)
    on_event(Event("preflight", "checks", "run", "failover", time.time(), time.time(), "failed", error=S3_ERROR))
    _print_report(con, {"id": 7, "status": "refused", "message": f"preflight refused the drill: {S3_ERROR}",
                        "notes": ["[/:] in a note"], "undo": {"ran": True, "undone": [],
                                                              "not_undone": [{"step": "dns", "error": "[/x]"}]}})
    text = out.getvalue()
    assert text.count(S3_ERROR) == 2
    assert "REFUSED" in text and "[/:] in a note" in text and "dns: [/x]" in text


def test_table_cells_are_plain_and_styled_cells_keep_their_style() -> None:
    con, out = _console()
    con.print(table("checks [/:]", ["status", "message"], [[status_style("fail"), S3_ERROR], ["[red]x[/]", None]]))
    text = out.getvalue()
    assert S3_ERROR in text and "checks [/:]" in text and "[red]x[/]" in text
    assert "fail" in text and "[red]fail[/]" not in text
