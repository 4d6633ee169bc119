"""The `sre` command. One module per noun; each imports its heavy clients inside its commands,
so `sre --help` stays fast (bench/cli_startup.py)."""

from __future__ import annotations

import importlib
import os
import sys

# Plain click help: typer's Rich help formatter imports rich.markdown and friends (~60 ms),
# which alone would break the start-up budget (bench/cli_startup.py). Tables stay Rich.
os.environ.setdefault("TYPER_USE_RICH", "0")

import typer

from sre.errors import SreError

app = typer.Typer(
    name="sre",
    help="Observability and SRE automation for the messaging platform.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version  # here: only when asked (CLI start-up time)

        typer.echo(f"sre {version('sre')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", callback=_version,
                                 is_eager=True),
) -> None:
    """Observability and SRE automation for the messaging platform."""

# noun -> (module, help). Modules are cheap to import: each imports its clients inside its commands.
NOUNS: dict[str, tuple[str, str]] = {
    "up": ("sre.cli.up", "Run the service on embedded defaults with the local stack of real servers."),
    "serve": ("sre.cli.serve", "Run the long-lived service (webhook, API, scheduler)."),
    "config": ("sre.cli.config", "Validate the configuration or print its JSON Schema."),
    "alerts": ("sre.cli.alerts", "Prometheus alert rules and SLOs as code: lint, test, render, plan, apply."),
    "dashboards": ("sre.cli.dashboards", "Grafana dashboards as code: render, plan, apply."),
    "elk": ("sre.cli.elk", "Elasticsearch ILM policies and templates as code: render, plan, apply."),
    "replicas": ("sre.cli.replicas", "Replica-lag checks for PostgreSQL and Redis."),
    "backup": ("sre.cli.backup", "Take, list and verify backups (down to a real restore)."),
    "drill": ("sre.cli.drill", "Cross-region failover drills that measure RTO and RPO."),
    "dr": ("sre.cli.dr", "DR readiness: verdict, RPO and RTO estimates per region pair."),
    "remediation": ("sre.cli.remediation", "Automated remediation: alert inbox, audit log and circuit breaker."),
    "deploy": ("sre.cli.deploy", "The Helm chart's generated files: PrometheusRules and dashboard ConfigMaps."),
    "alertmanager": ("sre.cli.alertmanager", "Alertmanager configuration that points at this service."),
    "annotate": ("sre.cli.annotate", "Grafana annotations: mark a deploy; send the ones Grafana missed."),
    "slo": ("sre.cli.slo", "Error budgets from live Prometheus: status, the deploy gate, weekly report."),
}


def _register() -> None:
    for noun, (module, help_text) in NOUNS.items():
        mod = importlib.import_module(module)
        command = getattr(mod, "command", None)
        if command is not None:  # a single command (up, serve)
            app.command(name=noun, help=help_text)(command)
        else:
            app.add_typer(mod.app, name=noun, help=help_text)


_register()


def main() -> None:
    """Entry point: expected errors become one line on stderr and an exit code, never a traceback."""
    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except SreError as exc:
        msg = f"error: {exc}"
        if exc.hint:
            msg += f"\nhint: {exc.hint}"
        problems = getattr(exc, "problems", None)
        if problems and len(problems) > 1:
            source = getattr(exc, "source", None)
            msg = "error: invalid configuration" + (f" ({source})" if source else "") + "\n" + "\n".join(
                f"  {p}" for p in problems
            )
        print(msg, file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        # Click's usage errors (typer vendors its own click, so match by shape, not class).
        show = getattr(exc, "show", None)
        if callable(show) and isinstance(getattr(exc, "exit_code", None), int):
            show()
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        raise
