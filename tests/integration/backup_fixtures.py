"""Fixtures of the backup tests (registered with `pytest_plugins`): a source database of their
own on the sandbox primary, and configs whose buckets and scratch directory are theirs alone
(distinct names per test), so the tests share the session's moto and PostgreSQL without sharing
state."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sre.adapters import s3 as s3a
from sre.config import load_config
from sre.sandbox import Stack
from sre.sandbox.backups import ensure_buckets
from sre.sandbox.config import sandbox_config
from tests.integration.backup_support import CANARY, TABLES, BackupEnv, MakeEnv, create_source, drop_source


@pytest.fixture(scope="session")
def backup_source(sandbox: Stack) -> Iterator[str]:
    name = create_source(sandbox)
    yield name
    drop_source(sandbox, name)


@pytest.fixture
def backup_env(sandbox: Stack, backup_source: str, tmp_path: Path) -> Iterator[MakeEnv]:
    """A factory: make(backup={...overrides}, database=..., buckets={...}, good_buckets=True) -> BackupEnv."""
    scratch_dirs: list[Path] = []

    def make(*, backup: dict[str, Any] | None = None, database: str | None = None,
             buckets: dict[str, Any] | None = None, good_buckets: bool = True,
             objectives: dict[str, Any] | None = None) -> BackupEnv:
        token = secrets.token_hex(4)
        state = tmp_path / f"state-{token}"
        data = sandbox_config(sandbox, state)
        cluster = data["postgres"]["clusters"]["main"]
        cluster["database"] = database or backup_source
        if objectives:
            cluster["objectives"].update(objectives)
        # Under /tmp and traversable: the scratch PostgreSQL runs as the postgres OS user.
        scratch = Path(f"/tmp/sre-backup-test-{token}")
        scratch.mkdir(mode=0o755)
        scratch.chmod(0o755)
        scratch_dirs.append(scratch)
        bucket = f"bk-{token}-use1"
        data["backups"] = {"main": {
            "cluster": "main", "bucket": bucket, "prefix": "postgres/main/", "replica_bucket": f"bk-{token}-euw1",
            "tables": TABLES, "canary": CANARY,
            "sanity": [{"name": "users present", "sql": "SELECT count(*) FROM messaging.users"}],
            "restore": {"scratch_dir": str(scratch)},
            **(backup or {}),
        }}
        data["buckets"] = buckets or {}
        state.mkdir(parents=True, exist_ok=True)
        path = state / "sre.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        cfg = load_config(path)
        s3 = s3a.client(cfg.aws)
        if good_buckets:
            ensure_buckets(cfg, s3)
        else:
            s3.create_bucket(Bucket=bucket)
        return BackupEnv(cfg, path, scratch, bucket, s3)

    yield make
    for d in scratch_dirs:
        shutil.rmtree(d, ignore_errors=True)


