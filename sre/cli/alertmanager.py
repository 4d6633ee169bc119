"""`sre alertmanager config`: the receiver and route that send alerts to this service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from sre.cli._common import ConfigOpt, Output, OutputOpt, emit, load

if TYPE_CHECKING:
    from sre.config import SreConfig

app = typer.Typer(no_args_is_help=True)

DEFAULT_URL = "http://sre:8080/webhook/alertmanager"
DEFAULT_CREDENTIALS = "/etc/alertmanager/secrets/sre-webhook"
DEFAULT_GROUP_WAIT = "10s"
# A down service also stops leading the scheduler: one cause, one page. SreDown alone pages.
INHIBIT_RULES: list[dict[str, Any]] = [
    {"source_matchers": ['alertname="SreDown"'], "target_matchers": ['alertname="SreSchedulerNotRunning"']},
]
# Room per alert in a webhook body: max_alerts keeps a notification under the receiver's body limit.
BYTES_PER_ALERT = 2048


def automated_alerts(cfg: SreConfig) -> list[str]:
    from sre.content import runbooks_dir
    from sre.remediation.runbook import scan_runbooks

    runbooks, _ = scan_runbooks(runbooks_dir(cfg))
    return sorted(name for name, rb in runbooks.items() if rb.remediation is not None)


def render_config(cfg: SreConfig, url: str, credentials_file: str | None, receiver: str,
                  max_alerts: int | None, all_alerts: bool, group_wait: str = DEFAULT_GROUP_WAIT) -> dict[str, Any]:
    webhook: dict[str, Any] = {"url": url, "send_resolved": True}
    wh = cfg.webhook
    if wh is None or wh.auth == "none":
        pass
    elif wh.auth == "bearer":
        default = str(wh.token.file) if wh.token is not None and wh.token.file else DEFAULT_CREDENTIALS
        webhook["http_config"] = {"authorization": {"type": "Bearer",
                                                    "credentials_file": credentials_file or default}}
    else:
        default = str(wh.password.file) if wh.password is not None and wh.password.file else DEFAULT_CREDENTIALS
        webhook["http_config"] = {"basic_auth": {"username": wh.username, "password_file": credentials_file or default}}
    limit = wh.max_body_bytes if wh is not None else 1 << 20
    webhook["max_alerts"] = max_alerts if max_alerts is not None else max(1, limit // BYTES_PER_ALERT)
    # group_wait: Alertmanager holds the first alert of each new group this long before it sends the
    # group, so every automated fix starts at least this late; shorter sends more, smaller notifications.
    route: dict[str, Any] = {"receiver": receiver, "group_by": ["alertname", "namespace"], "group_wait": group_wait,
                             "group_interval": "1m", "repeat_interval": "1h",
                             # continue: the alert goes on to the routes that page people.
                             "continue": True}
    if not all_alerts:
        names = automated_alerts(cfg)
        route["matchers"] = [f'alertname=~"{"|".join(names)}"'] if names else ['alertname="none"']
    return {"route": {"routes": [route]}, "receivers": [{"name": receiver, "webhook_configs": [webhook]}],
            "inhibit_rules": INHIBIT_RULES}


@app.command("config")
def config_(
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
    url: Annotated[str, typer.Option(help="The webhook URL as Alertmanager reaches this service.")] = DEFAULT_URL,
    credentials_file: Annotated[str | None, typer.Option(
        help="Path, on the Alertmanager host, of the file holding the token (or the basic-auth password). "
             "Default: the file named by webhook.token / webhook.password.")] = None,
    receiver: Annotated[str, typer.Option(help="Receiver name.")] = "sre",
    max_alerts: Annotated[int | None, typer.Option(
        min=0, help="Alerts per notification at most (default: what fits in webhook.max_body_bytes).")] = None,
    all_alerts: Annotated[bool, typer.Option(
        "--all-alerts", help="Route every alert, not only those whose runbook automates a fix.")] = False,
    group_wait: Annotated[str, typer.Option(
        help="How long Alertmanager holds the first alert of a new group before sending it: every alert "
             "reaches this service (and its fix starts) at least this late. Shorter: faster fixes, more "
             "notifications. A Prometheus duration (0s, 500ms, 10s).")] = DEFAULT_GROUP_WAIT,
) -> None:
    """Print the receiver and the route to merge into alertmanager.yml (YAML, or JSON with -o json)."""
    import yaml

    from sre.config import parse_duration
    from sre.errors import UsageError

    try:
        parse_duration(group_wait)
    except ValueError as exc:
        raise UsageError(f"--group-wait: {exc}") from None
    cfg = load(config)
    doc = render_config(cfg, url, credentials_file, receiver, max_alerts, all_alerts, group_wait)

    def render(con: Any) -> None:
        import sys

        sys.stdout.write("# Merge into alertmanager.yml: the route under route.routes (first, it continues to the\n"
                         "# others), the receiver under receivers, the inhibit rules under inhibit_rules.\n"
                         "# Generated by `sre alertmanager config`.\n")
        sys.stdout.write(yaml.safe_dump(doc, sort_keys=False))

    emit(output, doc, render)

