"""`sre up`: the service on embedded defaults with the local stack of real servers."""

from __future__ import annotations

import shutil
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sre.cli._common import plain

if TYPE_CHECKING:
    from sre.config import SreConfig
    from sre.sandbox import Stack

class HaLayer(StrEnum):
    patroni = "patroni"


def _run_steps(stack: Stack, cfg: SreConfig, console: Any) -> list[str]:
    from sre.sandbox.steps import UP_STEPS

    notes: list[str] = []
    for step in UP_STEPS:
        try:
            notes.extend(step(stack, cfg, console) or [])
        except Exception as exc:  # a failing step is reported and `sre up` goes on
            notes.append(f"[red]{step.__module__}:{step.__name__} failed[/]: {plain(exc)}")
    return notes


def _token_file(cfg: SreConfig, role: str) -> Path:
    """The file of the sandbox's token for `role` (sre.sandbox.config writes one per role)."""
    refs = getattr(cfg.api.tokens, role)
    assert refs and refs[0].file is not None
    return Path(refs[0].file)


def command(
    port: Annotated[int, typer.Option(help="Port of the service (0: any free port).")] = 8080,
    state_dir: Annotated[Path, typer.Option(help="Where sre.yaml, secrets and the SQLite state go.")] = Path("var/up"),
    kubeconfig: Annotated[Path | None, typer.Option(
        help="A kubeconfig for remediation to act on; without one, Kubernetes actions run in dry-run.")] = None,
    wan: Annotated[str | None, typer.Option(
        help="Put a WAN of this round trip (e.g. 75ms, the us-east-1 to eu-west-1 figure) on the "
             "replication links between the two regions.")] = None,
    ha: Annotated[HaLayer | None, typer.Option(
        help="Run PostgreSQL under this HA layer: patroni starts etcd and two Patroni-managed nodes (ttl 20 s, "
             "loop_wait 10 s, retry_timeout 10 s) instead of the plain primary and replica.")] = None,
) -> None:
    """Start the local stack (PostgreSQL primary+replica, Prometheus, Alertmanager, Redis pair, moto,
    the exporters and the application simulator), write its sre.yaml, and run the service against
    it until Ctrl-C."""
    from rich.table import Table

    from sre.cli._common import console as make_console
    from sre.config import load_config
    from sre.local.procs import free_port, port_open

    try:
        from sre.sandbox import Stack
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("sre.sandbox"):
            raise
        from sre.errors import UsageError

        # The image ships without the sandbox: the service there runs against real servers.
        raise UsageError("sre up runs the local sandbox, which this installation does not include",
                         hint="run it from a source checkout (make run)") from None
    from sre.sandbox.config import write_sandbox_config
    from sre.service import build_app, run_uvicorn
    from sre.telemetry import setup_logging

    con = make_console()
    setup_logging()
    if port == 0 or port_open(port):
        chosen = free_port()
        if port:
            con.print(f"port {port} is in use; using {chosen}")
        port = chosen
    state_dir = state_dir.resolve()
    from sre.config import parse_duration
    from sre.sandbox.wan import WanSettings

    settings = WanSettings(rtt=parse_duration(wan)) if wan else None
    with con.status("starting the local stack of real servers..."):
        stack = Stack.start(wan=settings, ha=ha.value if ha else None)
    try:
        if ha is None:
            with con.status("pgBackRest: archiving the primary's WAL to S3, one full backup..."):
                try:
                    stack.start_pgbackrest()
                except Exception as exc:  # the rest of the sandbox is still worth having
                    con.print(f"[red]pgBackRest archiving not set up[/]: {plain(exc)}")
        else:
            # Patroni writes the servers' settings itself: an archive_command belongs in its dynamic
            # configuration, which the sandbox leaves at what the drills need.
            con.print("pgBackRest archiving is not set up under Patroni (the pg_dump backup set still is)")
        cfg_path = write_sandbox_config(stack, state_dir, kubeconfig=kubeconfig)
        cfg = load_config(cfg_path)
        base = f"http://127.0.0.1:{port}"
        assert stack.prometheus and stack.alertmanager and cfg.webhook and cfg.webhook.token
        stack.prometheus.set_authorized_scrape("sre", [f"127.0.0.1:{port}"], _token_file(cfg, "metrics"))
        stack.alertmanager.set_webhook(f"{base}/webhook/alertmanager", cfg.webhook.token.file)
        notes = _run_steps(stack, cfg, con)
        if stack.wan is not None:
            notes.append(stack.wan.describe())

        t = Table(title=f"sre up: local stack ready in {stack.timings.get('total', 0):.1f}s", title_justify="left")
        for col in ("component", "url", "pid"):
            t.add_column(col)
        t.add_row("sre service", base + "  (/docs /metrics /healthz)", "this process")
        for c in stack.components():
            t.add_row(c["component"], c["url"], str(c["pid"]))
        con.print(t)
        con.print(f"config: {cfg_path}  (secrets in {state_dir / 'secrets'})")
        for n in notes:
            con.print(n)
        con.print("\nnext, in another terminal:")
        # The venv's sre when it is not the one on PATH (make run does not activate the venv).
        sre_cmd = "sre" if shutil.which("sre") == str(Path(sys.argv[0]).resolve()) else sys.argv[0]
        read = f'curl -H "Authorization: Bearer $(cat {_token_file(cfg, "read")})" {base}/api/remediations'
        for cmd in (f"export SRE_CONFIG={cfg_path}", f"{sre_cmd} replicas check", f"{sre_cmd} backup verify",
                    f"{sre_cmd} drill failover --from us-east-1 --to eu-west-1 --execute --failback",
                    *([f"{sre_cmd} drill failover --from us-east-1 --to eu-west-1 --observe --execute"] if ha else []),
                    f"{sre_cmd} alerts lint", f"{sre_cmd} remediation list", read,
                    f"{sre_cmd} remediation replay --alert WebsocketGatewayMemoryHigh --label namespace=messaging "
                    "--label deployment=websocket-gateway",
                    f"open {stack.prometheus.url}/alerts"):
            con.print(f"  {cmd}")
        con.print("\nCtrl-C stops everything.\n")

        run_uvicorn(build_app(cfg), "127.0.0.1", port, graceful_timeout=15)
    finally:
        with con.status("stopping the local stack..."):
            stack.stop()
        con.print("stopped: no process left behind.")
