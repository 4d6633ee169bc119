"""`sre alerts lint|test|render|plan|apply`: Prometheus alert rules, SLOs and runbooks as code."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sre.cli._common import ConfigOpt, Output, OutputOpt, emit, load, plain, table
from sre.cli._plan import AdoptOpt, ShowUnchangedOpt

if TYPE_CHECKING:
    from sre.config import SreConfig
    from sre.provision.target import Target as ProvisionTarget
    from sre.rules.tree import Finding

app = typer.Typer(no_args_is_help=True)

AlertsDirOpt = Annotated[
    Path | None,
    typer.Option("--alerts-dir", help="The rules tree (default: alerts.source_dir, else the shipped alerts/).", show_default=False),
]
RunbooksDirOpt = Annotated[
    Path | None,
    typer.Option("--runbooks-dir", help="The runbooks (default: remediation.runbooks_dir, else the shipped runbooks/).",
                 show_default=False),
]
PruneOpt = Annotated[bool, typer.Option("--prune", help="Also delete rule files / PrometheusRules that sre wrote "
                                                        "and that are gone from the tree (never others).")]


class Format(StrEnum):
    prometheus = "prometheus"
    prometheusrule = "prometheusrule"


class Target(StrEnum):
    auto = "auto"
    rules_dir = "rules-dir"
    kubernetes = "kubernetes"


TargetOpt = Annotated[Target, typer.Option("--target", help="rules-dir: the directory a Prometheus reads "
                                           "(alerts.rules_dir); kubernetes: PrometheusRule objects; auto: "
                                           "rules-dir when alerts.rules_dir is set.")]


def _dirs(cfg: SreConfig, alerts_dir: Path | None, runbooks_dir: Path | None) -> tuple[Path, Path]:
    from sre import content

    return alerts_dir or content.alerts_dir(cfg), runbooks_dir or content.runbooks_dir(cfg)


@app.command()
def lint(
    live: Annotated[bool, typer.Option("--live", help="Also ask endpoints.prometheus whether each selector's "
                                                      "series exist (names the rules whose metrics or labels are "
                                                      "missing).")] = False,
    lookback: Annotated[str, typer.Option(help="With --live: how far back a series counts as existing.")] = "1h",
    alerts_dir: AlertsDirOpt = None,
    runbooks_dir: RunbooksDirOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """promtool check rules on the rendered tree, plus labels, annotations, runbooks, tests and
    selectors that can never match; exit 1 naming file, group and rule of each problem."""
    from sre.config import parse_duration
    from sre.errors import UsageError
    from sre.lint import lint as run_lint

    cfg = load(config)
    adir, rdir = _dirs(cfg, alerts_dir, runbooks_dir)
    try:
        window = parse_duration(lookback)
    except ValueError as exc:
        raise UsageError(f"--lookback: {exc}") from None
    report = run_lint(adir, rdir, cfg.alerts.runbook_base_url, slo_severity=cfg.alerts.slo_severity)
    expected: list[Finding] = []
    if live and report.tree is not None:
        from sre.adapters.prometheus import PrometheusClient
        from sre.rules.live import live_findings

        with PrometheusClient.from_config(cfg) as prom:
            report.findings += live_findings(report.tree.rules(), prom, lookback=window,
                                             absent=cfg.alerts.live_absent, expected=expected)
    data = report.to_dict()
    data.pop("timings", None)
    if live:
        data["expected_absent"] = [f.to_dict() for f in expected]

    def render(c: Any) -> None:
        if report.findings:
            rows = [[f.file, _where(f.group, f.rule), f.check, f.message] for f in report.findings]
            c.print(table(None, ["file", "group / rule", "check", "problem"], rows))
        if expected:
            rows = [[f.file, _where(f.group, f.rule), f.message] for f in expected]
            c.print(table("no series, as alerts.live_absent lists (not problems)", ["file", "group / rule", "selector"],
                          rows))
        n = report.counts
        c.print(f"{'[red]' + str(len(report.findings)) + ' problem(s)[/]' if report.findings else '[green]ok[/]'}: "
                f"{n.get('rules', 0)} rules ({n.get('alerts', 0)} alerts) in {n.get('groups', 0)} groups, "
                f"{n.get('runbooks', 0)} runbooks, {n.get('test_cases', 0)} test cases"
                + (" (live)" if live else ""))

    emit(output, data, render)
    if report.findings:
        raise typer.Exit(1)


def _where(group: str | None, rule: str | None) -> str:
    return " / ".join(x for x in (group, rule) if x)


@app.command()
def test(
    generated: Annotated[bool, typer.Option("--generated/--no-generated", help="Also run the tests generated "
                                            "from each SLO spec (each burn alert fires at its share of the "
                                            "budget and stays quiet just under it).")] = True,
    alerts_dir: AlertsDirOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """promtool test rules over alerts/tests/*.yaml and the tests generated from the SLO specs,
    against the rendered rules; every alert must fire in one test and stay quiet in another."""
    from sre.rules.testing import run_tests

    cfg = load(config)
    adir, _ = _dirs(cfg, alerts_dir, None)
    report = run_tests(adir, cfg.alerts.runbook_base_url, generated=generated,
                       slo_severity=cfg.alerts.slo_severity)

    def render(c: Any) -> None:
        for r in report.files:
            c.print(f"{'[green]ok[/]' if r.ok else '[red]FAILED[/]'}  {plain(r.file)}")
            if not r.ok and r.output:
                c.print(r.output, markup=False, highlight=False)
        for f in report.findings:
            c.print(f"[red]{plain(f.check)}[/]  {plain(f.where())}: {plain(f.message)}")
        c.print(f"{report.alerts} alerts, {report.cases} test cases in {len(report.files)} files: "
                + ("[green]all pass[/]" if report.ok else "[red]failures[/]"))

    emit(output, report.to_dict(), render)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def render(
    fmt: Annotated[Format, typer.Option("--format", help="prometheus: rule files; prometheusrule: manifests "
                                                         "for the Prometheus Operator.")] = Format.prometheus,
    out: Annotated[Path | None, typer.Option("--out", help="Directory to write into (default: standard output).",
                                             show_default=False)] = None,
    alerts_dir: AlertsDirOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Render the tree (SLOs expanded, runbook_url added), deterministically."""
    from sre.provision.prometheus import desired_files, write_atomic
    from sre.rules.render import prometheusrule_objects, to_yaml

    cfg = load(config)
    adir, _ = _dirs(cfg, alerts_dir, None)
    files = desired_files(adir, cfg.alerts.runbook_base_url, slo_severity=cfg.alerts.slo_severity)
    docs: list[tuple[str, str]]
    if fmt is Format.prometheus:
        docs = [(f.name, f.text()) for f in files]
    else:
        objs = prometheusrule_objects(files, namespace=cfg.alerts.prometheusrule_namespace,
                                      labels=cfg.alerts.prometheusrule_labels)
        docs = [(o["metadata"]["name"] + ".yaml", to_yaml(o)) for o in objs]
    if out is None:
        if output is Output.json:
            emit(output, {"format": fmt.value, "files": {n: t for n, t in docs}}, lambda c: None)
        else:
            typer.echo("---\n".join(t for _, t in docs), nl=False)
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, text in docs:
        write_atomic(out / name, text)
    data = {"format": fmt.value, "out": str(out), "files": [n for n, _ in docs]}
    emit(output, data, lambda c: c.print(f"wrote {len(docs)} {fmt.value} file(s) to {out}"))


def _make(cfg: SreConfig, alerts_dir: Path | None, target: Target, prune: bool,
          adopt: list[str] | None) -> Callable[[], list[ProvisionTarget]]:
    def make() -> list[ProvisionTarget]:
        from sre.provision.prometheus import desired_files, targets

        adir, _ = _dirs(cfg, alerts_dir, None)
        files = desired_files(adir, cfg.alerts.runbook_base_url, slo_severity=cfg.alerts.slo_severity)
        return targets(cfg, files, where=target.value, prune=prune, adopt=adopt or ())

    return make


@app.command()
def plan(
    target: TargetOpt = Target.auto,
    prune: PruneOpt = False,
    adopt: AdoptOpt = None,
    show_unchanged: ShowUnchangedOpt = False,
    alerts_dir: AlertsDirOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """What apply would change: rule files or PrometheusRule objects to create, update, delete.
    Exit 1 when there are changes."""
    from sre.cli._plan import plan_command

    cfg = load(config)
    plan_command(_make(cfg, alerts_dir, target, prune, adopt), output, adopt=adopt or (),
                 show_unchanged=show_unchanged)


@app.command()
def apply(
    target: TargetOpt = Target.auto,
    prune: PruneOpt = False,
    adopt: AdoptOpt = None,
    alerts_dir: AlertsDirOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Write the rules (atomically), reload Prometheus and confirm it loaded them; or server-side
    apply PrometheusRule objects. A refused reload restores the previous files. Exit 1 when a
    change was refused or failed."""
    from sre.cli._plan import apply_command

    cfg = load(config)
    apply_command(cfg, "alerts", _make(cfg, alerts_dir, target, prune, adopt), output, adopt=adopt or ())
