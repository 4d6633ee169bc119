"""`plan` and `apply` of every provisioning noun (alerts, dashboards, elk): one code path, one output.

`plan` prints each target's changes and exits 1 when any has one (refused changes included).
`apply` plans, applies, annotates Grafana and exits 1 when a change was refused or failed, or a
check after the apply failed. JSON: `plan` prints one object (`target`, `counts`, `refused`,
`requests`, `changes`); `apply` prints `{"plan": <that object>, "results": [<ApplyResult>...]}`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sre.cli._common import EXIT_FAILED, Output, emit, plain, status_style, styled, table

if TYPE_CHECKING:
    from sre.config import SreConfig
    from sre.provision.plan import ApplyResult, Plan
    from sre.provision.target import Target

_STYLE = {"create": "green", "update": "yellow", "delete": "red", "drift": "magenta", "unchanged": "dim"}

AdoptOpt = Annotated[list[str] | None, typer.Option(
    "--adopt", metavar="NAME", help="Take over this object although sre does not own it (it exists, made by "
    "someone else; the plan refuses it otherwise). NAME as the plan shows it, or KIND/NAME; repeatable.",
    show_default=False)]
ShowUnchangedOpt = Annotated[bool, typer.Option("--show-unchanged", help="List unchanged objects too.")]


def merged(plans: list[Plan]) -> dict[str, Any]:
    """One JSON object for the plans of several targets (one, mostly): each change names its target."""
    from sre.provision.reconcile import total_counts

    counts = total_counts(plans)
    refused = counts.pop("refused")
    return {"target": ", ".join(p.target for p in plans), "counts": counts, "refused": refused,
            "requests": sum(p.requests for p in plans),
            "changes": [{"target": p.target, **c.to_dict()} for p in plans for c in p.changes]}


def show_plans(plans: list[Plan], output: Output, *, show_unchanged: bool = False) -> None:
    def render(c):  # type: ignore[no-untyped-def]
        from rich.syntax import Syntax

        for plan in plans:
            rows = [[styled("[red]refused[/] " + ch.action.value) if ch.refused
                     else styled(f"[{_STYLE[ch.action.value]}]{ch.action.value}[/]"),
                     ch.kind, ch.name, ch.refusal or ch.reason]
                    for ch in plan.changes if show_unchanged or ch.action.value != "unchanged" or ch.refused]
            if rows:
                c.print(table(f"plan for {plan.target}", ["action", "kind", "name", "note"], rows))
            for ch in plan.changes:
                if ch.diff:
                    c.print(f"[bold]{ch.action.value} {ch.kind} {plain(ch.name)}[/]")
                    c.print(Syntax(ch.diff, "diff", theme="ansi_dark", background_color="default"))
            summary = ", ".join(f"{n} {a}" for a, n in plan.counts().items() if n)
            refused = len(plan.refused())
            c.print(f"{plain(plan.target)}: {summary or 'nothing to do'}"
                    + (f" ([red]{refused} refused[/])" if refused else "") + f" ({plan.requests} requests)")

    emit(output, merged(plans), render)


def _open(make: Callable[[], list[Target]], stack: contextlib.ExitStack) -> list[Target]:
    targets = make()
    for target in targets:
        stack.enter_context(target)
    return targets


def plan_command(make: Callable[[], list[Target]], output: Output, *, adopt: Collection[str] = (),
                 show_unchanged: bool = False) -> None:
    """Plan every target; exit 1 when there are changes."""
    from sre.provision.target import check_adopt, plan

    with contextlib.ExitStack() as stack:
        plans = [plan(t) for t in _open(make, stack)]
    check_adopt(plans, adopt)
    show_plans(plans, output, show_unchanged=show_unchanged)
    if any(p.has_changes for p in plans):
        raise typer.Exit(EXIT_FAILED)


def apply_command(cfg: SreConfig, noun: str, make: Callable[[], list[Target]], output: Output, *,
                  adopt: Collection[str] = ()) -> None:
    """Plan and apply every target; exit 1 when a change was refused or failed."""
    from sre.provision.target import apply, check_adopt, plan

    started = time.time()
    plans: list[Plan] = []
    results: list[ApplyResult] = []
    with contextlib.ExitStack() as stack:
        targets = _open(make, stack)
        plans = [plan(t) for t in targets]
        check_adopt(plans, adopt)
        if output is Output.table:
            show_plans(plans, output)
        for target, the_plan in zip(targets, plans, strict=True):
            results.append(apply(target, the_plan))

    from sre.annotate import annotate_apply  # here, not at the top: CLI start-up time

    done = [r.change for res in results for r in res.applied]
    annotate_apply(cfg, noun, len(done), ", ".join(f"{c.action.value} {c.kind} {c.name}" for c in done[:10]), started)
    emit(output, {"plan": merged(plans), "results": [r.to_dict() for r in results]},
         lambda c: _show_results(c, results))
    if not all(r.ok for r in results):
        raise typer.Exit(EXIT_FAILED)


def _show_results(c: Any, results: list[ApplyResult]) -> None:
    for res in results:
        for r in res.changes:  # whole lines, so the server's reason is never cut by column wrapping
            if r.outcome.value != "applied":
                colour = "red" if r.outcome.value == "failed" else "yellow"
                c.print(f"[{colour}]{r.outcome.value}[/] {r.change.action.value} {r.change.kind} "
                        f"{plain(r.change.name)}: {plain(r.message)}")
        if res.verified:
            c.print(table("checked after the apply", ["status", "target", "result"],
                          [[status_style(v.status), v.target, v.message] for v in res.verified]))
        notes = "".join(f", {k.replace('_', ' ')}: {v}" for k, v in res.notes.items())
        c.print(f"{plain(res.target)}: {len(res.applied)} applied, {len(res.refused)} refused, {len(res.failed)} "
                f"failed{notes} ({res.requests} requests, {res.seconds:.2f}s)")
