"""The CLI frame: nouns listed, exit codes 0/2, one clear line and never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli import sre


def test_help_lists_the_nouns() -> None:
    out = sre("--help")
    assert out.returncode == 0
    for noun in ("up", "serve", "config"):
        assert noun in out.stdout


def test_validate_ok_with_json_output() -> None:
    example = Path(__file__).parents[2] / "docs" / "sre.example.yaml"
    out = sre("config", "validate", "--config", str(example), "--output", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["valid"] is True and data["postgres_clusters"] == ["main"]


def test_bad_config_exits_2_with_key_path_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "sre.yaml"
    bad.write_text("postgres:\n  clusters:\n    main:\n      primary: {name: a, region: us-east-1, dsn: 'pw'}\n")
    out = sre("config", "validate", "--config", str(bad))
    assert out.returncode == 2
    assert "postgres.clusters.main.primary.dsn: secrets are never inlined" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    out = sre("config", "validate", "--config", str(tmp_path / "nope.yaml"))
    assert out.returncode == 2
    assert "cannot read config file" in out.stderr and "Traceback" not in out.stderr


def test_config_from_env_var(tmp_path: Path) -> None:
    bad = tmp_path / "sre.yaml"
    bad.write_text("environment: qa\n")
    out = sre("config", "validate", env={"SRE_CONFIG": str(bad)})
    assert out.returncode == 2 and "environment:" in out.stderr


def test_unknown_job_is_a_config_error(tmp_path: Path) -> None:
    cfg = tmp_path / "sre.yaml"
    cfg.write_text("jobs: {coffee.make: {every: 1m}}\n")
    out = sre("config", "validate", "--config", str(cfg))
    assert out.returncode == 2 and "jobs.coffee.make: unknown job" in out.stderr


def test_schema_is_json_schema() -> None:
    out = sre("config", "schema")
    assert out.returncode == 0
    schema = json.loads(out.stdout)
    assert schema["type"] == "object" and "postgres" in schema["properties"]


def test_usage_error_exits_2() -> None:
    out = sre("config", "validate", "--no-such-flag")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr


def test_serve_refuses_without_webhook_credentials(tmp_path: Path) -> None:
    cfg = tmp_path / "sre.yaml"
    cfg.write_text(f"state: {{dir: {tmp_path / 'state'}}}\n")
    out = sre("serve", "--config", str(cfg), "--port", "1")
    assert out.returncode == 2
    assert "no credentials configured" in out.stderr and "--insecure-webhook" in out.stderr


def test_cli_start_imports_no_heavy_client() -> None:
    """`sre --help` must stay cheap: heavy clients load only in the commands that use them."""
    import subprocess
    import sys

    code = ("import sys, sre.cli; heavy = ['fastapi', 'boto3', 'botocore', 'kubernetes', 'elasticsearch', "
            "'grafana_client', 'sqlalchemy', 'psycopg', 'matplotlib', 'redis', 'uvicorn', 'rich.table', "
            "'grafana_foundation_sdk', 'prometheus_api_client', 'httpx', 'requests', 'moto']; "
            "print([m for m in heavy if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_version_and_shell_completion() -> None:
    from importlib.metadata import version

    out = sre("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"sre {version('sre')}"
    script = sre("--show-completion", "bash", env={"SHELL": "/bin/bash"})
    assert script.returncode == 0 and "_sre_completion" in script.stdout and "complete " in script.stdout
