"""Configuration: the example loads; every kind of error names its key path; secrets stay secret."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sre.config import ConfigError, SreConfig, env_overrides, load_config, parse_duration, parse_size

EXAMPLE = Path(__file__).parents[2] / "docs" / "sre.example.yaml"

MINIMAL = """
postgres:
  clusters:
    main:
      primary: {name: east1, region: us-east-1, dsn: {env: PG_DSN}}
      replicas:
        - {name: west1, region: eu-west-1, dsn: {file: /run/secrets/west1}}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "sre.yaml"
    p.write_text(text)
    return p


def problems(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), environ=environ or {})
    return info.value.problems


def test_documented_example_loads() -> None:
    cfg = load_config(EXAMPLE, environ={})
    assert cfg.environment == "staging"
    assert cfg.postgres.clusters["main"].replicas[0].name == "west1"
    assert cfg.postgres.clusters["main"].objectives.lag_fail_bytes == 64 * 2**20
    assert cfg.postgres.clusters["main"].objectives.rpo == 300


def test_embedded_defaults_load_without_a_file() -> None:
    cfg = load_config(None, environ={})
    assert cfg.environment == "dev"
    assert cfg.state.resolved_url().startswith("sqlite:///")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("environment: prod\n", "environment: Input should be 'dev', 'staging' or 'production'"),
        ("bogus: 1\n", "bogus: unknown key"),
        (MINIMAL.replace("{file: /run/secrets/west1}", '"postgres://u:pw@h/db"'),
         "postgres.clusters.main.replicas[0].dsn: secrets are never inlined"),
        (MINIMAL.replace("{file: /run/secrets/west1}", "{}"),
         "postgres.clusters.main.replicas[0].dsn: give exactly one of env or file"),
        (MINIMAL.replace("name: west1, ", ""), "postgres.clusters.main.replicas[0].name: Field required"),
        (MINIMAL + "      objectives: {rpo: soon}\n", "postgres.clusters.main.objectives.rpo: expected a duration"),
        (MINIMAL + "      objectives: {lag_fail_bytes: lots}\n",
         "postgres.clusters.main.objectives.lag_fail_bytes: expected a size"),
        (MINIMAL.replace("region: eu-west-1", "region: ap-south-1"), "node west1 is in region 'ap-south-1'"),
        ("webhook: {auth: bearer}\n", "webhook: auth bearer needs token"),
        ("jobs: {replicas.check: {every: 5s, cron: '* * * * *'}}\n", "jobs.replicas.check: give one of every or cron"),
        ("environment: [\n", "not valid YAML"),
        ("- a\n- b\n", "(top level): expected a mapping"),
    ],
)
def test_each_error_names_its_key_path(tmp_path: Path, text: str, expected: str) -> None:
    found = problems(tmp_path, text)
    assert any(expected in p for p in found), found


def test_a_job_is_turned_off_with_enabled_false_alone_and_keeps_its_trigger_otherwise(tmp_path: Path) -> None:
    from sre.jobs import JOBS, effective_jobs

    cfg = load_config(write(tmp_path, "jobs:\n  replicas.check: {enabled: false}\n  dashboards.reconcile: {}\n"
                                      "  backups.verify: {only_environments: [staging]}\n"), environ={})
    jobs = effective_jobs(cfg)
    assert "replicas.check" not in jobs and "state.prune" in jobs
    assert jobs["dashboards.reconcile"][1].every == JOBS["dashboards.reconcile"].every
    assert "backups.verify" not in jobs, "only in staging; this config is dev"


def test_env_overrides_apply_and_are_validated(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    cfg = load_config(path, environ={"SRE_ENVIRONMENT": "production", "SRE_POSTGRES__CLUSTERS__MAIN__DATABASE": "msg",
                                     "SRE_REGIONS": "[us-east-1, eu-west-1]", "SRE_UNRELATED_SECRET": "x"})
    assert cfg.environment == "production"
    assert cfg.postgres.clusters["main"].database == "msg"
    bad = problems(tmp_path, MINIMAL, {"SRE_ENVIRONMENT": "qa"})
    assert any(p.startswith("environment:") for p in bad)


def test_env_overrides_parse_nested_keys() -> None:
    assert env_overrides({"SRE_STATE__URL": "sqlite:///x.db", "SRE_CONFIG": "/etc/sre.yaml"}) == {
        "state": {"url": "sqlite:///x.db"}
    }


def test_secrets_resolve_from_env_and_file_and_never_show(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    secret_file = tmp_path / "west1"
    secret_file.write_text("host=w password=file-s3cret\n")
    text = MINIMAL.replace("/run/secrets/west1", str(secret_file))
    cfg = load_config(write(tmp_path, text), environ={})
    cluster = cfg.postgres.clusters["main"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PG_DSN", "host=e password=env-s3cret")
        primary = cluster.primary.dsn.resolve()
    replica = cluster.replicas[0].dsn.resolve()
    assert primary.get_secret_value() == "host=e password=env-s3cret"
    assert replica.get_secret_value() == "host=w password=file-s3cret"
    for shown in (repr(cfg), str(cfg), repr(primary), str(replica), cfg.model_dump_json()):
        assert "s3cret" not in shown
    with caplog.at_level(logging.INFO):
        logging.getLogger("sre.test").info("resolved %s and %s", primary, replica)
    assert "s3cret" not in caplog.text


def test_missing_secret_names_the_reference_not_a_value(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL), environ={})
    with pytest.raises(ConfigError, match="environment variable PG_DSN is not set"), pytest.MonkeyPatch.context() as mp:
        mp.delenv("PG_DSN", raising=False)
        cfg.postgres.clusters["main"].primary.dsn.resolve()


def test_units() -> None:
    assert parse_duration("15s") == 15 and parse_duration("5m") == 300 and parse_duration("1.5h") == 5400
    assert parse_duration(2) == 2.0
    assert parse_size("64MiB") == 64 * 2**20 and parse_size("1GB") == 10**9
    with pytest.raises(ValueError):
        parse_duration("-1")


def test_schema_has_every_section() -> None:
    schema = SreConfig.model_json_schema()
    for key in ("environment", "postgres", "redis", "backups", "dns", "kubernetes", "webhook", "state", "endpoints"):
        assert key in schema["properties"]
