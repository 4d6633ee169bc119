"""`sre slo status|gate|report`: the error budget of each SLO from live Prometheus, the deploy gate
on it, and the weekly review's charts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sre.cli._common import ConfigOpt, Output, OutputOpt, emit, load, plain, table

if TYPE_CHECKING:
    from sre.config import SreConfig
    from sre.rules.slo import Slo
    from sre.rules.slo_status import SloStatus

app = typer.Typer(no_args_is_help=True)

AlertsDirOpt = Annotated[
    Path | None,
    typer.Option("--alerts-dir", help="The rules tree (default: alerts.source_dir, else the shipped alerts/).",
                 show_default=False),
]


def _slos(cfg: SreConfig, alerts_dir: Path | None, service: str | None) -> list[Slo]:
    from sre import content
    from sre.errors import UsageError
    from sre.rules.loader import load_tree
    from sre.rules.slo_status import select_slos

    tree = load_tree(alerts_dir or content.alerts_dir(cfg), slo_severity=cfg.alerts.slo_severity)
    problems = [f for f in tree.findings if f.check in ("slo-spec", "yaml")]
    if problems:
        raise UsageError(f"the SLO specs do not load: {problems[0]}", hint="run `sre alerts lint`")
    return select_slos(tree.slo_specs, service)


def _statuses(cfg: SreConfig, slos: list[Slo]) -> list[SloStatus]:
    from sre.adapters.prometheus import PrometheusClient, PrometheusError
    from sre.errors import UnreachableError
    from sre.rules.slo_status import fetch_status

    with PrometheusClient.from_config(cfg) as prom:
        try:
            return fetch_status(prom, slos)
        except PrometheusError as exc:
            raise UnreachableError(str(exc)) from None


def _time(s: float | None) -> str:
    from sre.checks.humanize import human_seconds

    return "-" if s is None else human_seconds(s)


def _pct(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v * 100:.{digits}g}%"


def _rows(statuses: list[SloStatus]) -> list[list[Any]]:
    rows = []
    for st in statuses:
        # the long window of each alert pair: the burn the alerts judge (JSON has every window)
        burns = ", ".join(f"{b.window} {b.burn_rate:.3g}x/{b.factor:g}" for b in st.burn
                          if b.burn_rate is not None and b.factor is not None)
        rows.append([f"{st.name}\n{st.objective * 100:g}% / {st.window}", _pct(st.sli, 5),
                     f"{_pct(st.budget_remaining)}\n{_time(st.budget_remaining_seconds)}", burns or "-",
                     _time(st.exhaustion_seconds) if st.exhaustion_seconds is not None else "not burning"])
    return rows


COLUMNS = ["slo", "SLI", "budget left", "burn rate / alert factor", "exhausted in"]


@app.command()
def status(
    service: Annotated[str | None, typer.Option("--service", help="Only this service's SLOs.",
                                                show_default=False)] = None,
    alerts_dir: AlertsDirOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Per SLO, from endpoints.prometheus: the SLI over its window, the budget left (ratio and
    time), the burn rate over each alert window, and when the budget runs out at the current burn."""
    cfg = load(config)
    statuses = _statuses(cfg, _slos(cfg, alerts_dir, service))
    data = {"slos": [s.to_dict() for s in statuses]}

    def render(c: Any) -> None:
        c.print(table(None, COLUMNS, _rows(statuses)))
        for st in statuses:
            if st.missing:
                c.print(f"[yellow]{plain(st.name)}: no current value for {plain(', '.join(st.missing))}[/]")

    emit(output, data, render)


@app.command()
def gate(
    service: Annotated[str, typer.Option("--service", help="The service about to be deployed.")],
    min_budget: Annotated[float, typer.Option("--min-budget", min=0, max=1,
                                              help="Block below this share of the error budget left.")] = 0.1,
    max_burn: Annotated[float, typer.Option("--max-burn", min=0, help="Block when the budget burns faster than "
                                            "this over both windows of the first page pair (1h and 5m by "
                                            "default); 1 spends it exactly over the SLO window.")] = 1.0,
    alerts_dir: AlertsDirOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Whether a deploy of SERVICE may proceed: exit 0 yes; 1 no, one line per reason (budget spent
    or burning too fast); 2 when Prometheus cannot answer or an SLO has no data (the pipeline
    decides; its default is to block)."""
    from sre.errors import UnreachableError
    from sre.rules.slo_status import NoData
    from sre.rules.slo_status import gate as judge

    cfg = load(config)
    slos = _slos(cfg, alerts_dir, service)
    statuses = _statuses(cfg, slos)
    try:
        result = judge(slos, statuses, min_budget=min_budget, max_burn=max_burn)
    except NoData as exc:
        raise UnreachableError(f"cannot judge {service}: {exc}") from None

    def render(c: Any) -> None:
        from rich.markup import escape

        for reason in result.reasons:
            c.print(f"[red]blocked[/] {escape(reason)}", soft_wrap=True)  # one line per reason, for logs
        if result.ok:
            c.print(f"[green]ok[/]: {service} may deploy ({len(statuses)} SLO(s): budget above "
                    f"{min_budget:g}, burn at most {max_burn:g})")

    emit(output, result.to_dict(), render)
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def report(
    out: Annotated[Path, typer.Option("--out", help="Directory to write <slo>.png into.")],
    service: Annotated[str | None, typer.Option("--service", help="Only this service's SLOs.",
                                                show_default=False)] = None,
    alerts_dir: AlertsDirOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """A PNG per SLO for the weekly review: the budget burned down over the SLO window and the burn
    rates against the alerts' factors."""
    from sre.adapters.prometheus import PrometheusClient, PrometheusError
    from sre.errors import UnreachableError
    from sre.rules.slo_report import write_reports

    cfg = load(config)
    slos = _slos(cfg, alerts_dir, service)
    with PrometheusClient.from_config(cfg) as prom:
        try:
            files = write_reports(prom, slos, out)
        except PrometheusError as exc:
            raise UnreachableError(str(exc)) from None

    def render(c: Any) -> None:
        for f in files:
            c.print(f"wrote {f.path}" + ("" if f.points else " (no data in the window)"))

    emit(output, {"files": [f.to_dict() for f in files]}, render)
