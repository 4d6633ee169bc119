"""Printing a Plan the same way for every target (alerts, dashboards, elk)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sre.cli._common import Output, emit, plain, styled, table

if TYPE_CHECKING:
    from sre.provision.plan import Plan

_STYLE = {"create": "green", "update": "yellow", "delete": "red", "drift": "magenta", "unchanged": "dim"}


def show_plan(plan: Plan, output: Output, *, show_unchanged: bool = False) -> None:
    def render(c):  # type: ignore[no-untyped-def]
        from rich.syntax import Syntax

        rows = [
            [styled(f"[{_STYLE[ch.action.value]}]{ch.action.value}[/]"), ch.kind, ch.name, ch.reason]
            for ch in plan.changes
            if show_unchanged or ch.action.value != "unchanged"
        ]
        counts = plan.counts()
        summary = ", ".join(f"{n} {a}" for a, n in counts.items() if n)
        if rows:
            c.print(table(f"plan for {plan.target}", ["action", "kind", "name", "note"], rows))
        for ch in plan.changes:
            if ch.diff:
                c.print(f"[bold]{ch.action.value} {ch.kind} {plain(ch.name)}[/]")
                c.print(Syntax(ch.diff, "diff", theme="ansi_dark", background_color="default"))
        c.print(f"{plain(plan.target)}: {summary or 'nothing to do'} ({plan.requests} requests)")

    emit(output, plan.to_dict(), render)
