"""`sre config validate|schema`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sre.cli._common import ConfigOpt, Output, OutputOpt, emit, load

if TYPE_CHECKING:
    from sre.config import SecretRef

app = typer.Typer(no_args_is_help=True)


SecretsOpt = Annotated[bool, typer.Option("--secrets", help="Also resolve every secret reference (values never printed).")]


def _secret_refs(obj: Any, path: str = "") -> list[tuple[str, SecretRef]]:
    from pydantic import BaseModel

    from sre.config import SecretRef

    out: list[tuple[str, SecretRef]] = []
    if isinstance(obj, SecretRef):
        return [(path, obj)]
    if isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            out += _secret_refs(getattr(obj, name), f"{path}.{name}" if path else name)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out += _secret_refs(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _secret_refs(v, f"{path}[{i}]")
    return out


@app.command()
def validate(config: ConfigOpt = None, output: OutputOpt = Output.table, secrets: SecretsOpt = False) -> None:
    """Load and validate sre.yaml with SRE_* overrides; exit 2 naming each bad key."""
    from sre.config import ConfigError, is_credential
    from sre.jobs import effective_jobs

    cfg = load(config)
    effective_jobs(cfg)  # unknown job names are configuration errors too
    if secrets:
        problems = []
        for path, ref in _secret_refs(cfg):
            try:
                if is_credential(path):
                    ref.resolve_credential(path)  # its error names the key already
                else:
                    ref.resolve()
            except ConfigError as exc:
                problems += exc.problems if is_credential(path) else [f"{path}: {'; '.join(exc.problems)}"]
        if problems:
            raise ConfigError(problems, str(config) if config else None)
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
