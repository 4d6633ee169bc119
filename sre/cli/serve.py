"""`sre serve`: the long-lived service."""

from __future__ import annotations

from typing import Annotated

import typer

from sre.cli._common import ConfigOpt, load


def command(
    config: ConfigOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    insecure_webhook: Annotated[bool, typer.Option(
        "--insecure-webhook", help="Accept webhooks without credentials (never in production).")] = False,
) -> None:
    """Run the webhook receiver, API, /metrics and the scheduler until SIGTERM or SIGINT."""
    from sre.service import serve

    serve(load(config), host, port, insecure_webhook=insecure_webhook)
