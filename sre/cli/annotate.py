"""`sre annotate deploy|flush|pending`: Grafana annotations for the pipeline, and the outbox."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from sre.cli._common import ConfigOpt, Output, OutputOpt, emit, load, plain

app = typer.Typer(no_args_is_help=True)


@app.command()
def deploy(
    service: Annotated[str, typer.Option(help="The service deployed, e.g. api or websocket-gateway.")],
    version: Annotated[str, typer.Option(help="Its version (image tag, git sha).")],
    text: Annotated[str | None, typer.Option(help="The annotation's text (default: deploy SERVICE VERSION "
                                                  "to ENVIRONMENT).")] = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Mark a deploy on every dashboard (tags sre, deploy, SERVICE, version:VERSION, the environment); for the
    pipeline's production step. Best-effort: exit 0 with the annotation queued when Grafana does not answer."""
    from sre.annotate import annotate_deploy, pending
    from sre.errors import UsageError
    from sre.store import open_store

    cfg = load(config)
    if cfg.endpoints.grafana is None:
        raise UsageError("no Grafana configured", hint="set endpoints.grafana in sre.yaml")
    store = open_store(cfg)
    qid = annotate_deploy(cfg, store, service=service, version=version, environment=cfg.environment,
                          text=text or "")
    left = pending(store)
    data = {"queued": qid, "pending": left}
    emit(output, data, lambda con: con.print(
        f"deploy of {plain(service)} {plain(version)} annotated" if not left
        else f"[yellow]Grafana did not take it yet[/]: {left} annotation(s) queued, sent later by the service "
             "(or: sre annotate flush)"))


@app.command()
def flush(config: ConfigOpt = None, output: OutputOpt = Output.table) -> None:
    """Send the annotations Grafana missed. Exit 1 while some are still queued."""
    from sre.annotate import flush as flush_outbox
    from sre.annotate import pending
    from sre.store import open_store

    cfg = load(config)
    store = open_store(cfg)
    sent = flush_outbox(cfg, store, limit=10_000)
    left = pending(store)
    data: dict[str, Any] = {"sent": sent, "pending": left}
    emit(output, data, lambda con: con.print(f"sent {sent}, {left} still queued"))
    if left:
        raise typer.Exit(1)
