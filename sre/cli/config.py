"""`sre config validate|schema`."""

from __future__ import annotations

import json

import typer

from sre.cli._common import ConfigOpt, Output, OutputOpt, emit, load

app = typer.Typer(no_args_is_help=True)


@app.command()
def validate(config: ConfigOpt = None, output: OutputOpt = Output.table) -> None:
    """Load and validate sre.yaml with SRE_* overrides; exit 2 naming each bad key."""
    cfg = load(config)
    summary = {
        "valid": True,
        "environment": cfg.environment,
        "regions": cfg.regions,
        "postgres_clusters": sorted(cfg.postgres.clusters),
        "redis_pairs": sorted(cfg.redis.pairs),
        "backups": sorted(cfg.backups),
        "jobs": sorted(name for name, job in cfg.jobs.items() if job.enabled),
        "state": "postgresql" if cfg.state.url_secret or (cfg.state.url or "").startswith("postgres") else "sqlite",
    }
    emit(output, summary, lambda c: c.print(
        f"[green]valid[/]: environment {cfg.environment}, {len(cfg.postgres.clusters)} PostgreSQL cluster(s), "
        f"{len(cfg.redis.pairs)} Redis pair(s), {len(cfg.backups)} backup set(s), state in {summary['state']}"
    ))


@app.command()
def schema() -> None:
    """Print the JSON Schema of sre.yaml (for editors and CI)."""
    from sre.config import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))
