"""What the backup tests share: source databases of their own on the sandbox primary, the
environment a test gets (config, buckets, scratch directory), and ways to damage a backup."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sre.config import SreConfig
from sre.sandbox import Stack
from sre.sandbox.backups import seed_messaging

TABLES = ["messaging.users", "messaging.conversations", "messaging.messages"]
CANARY = "SELECT 1 FROM messaging.messages WHERE id = 0"


def database_dsn(stack: Stack, database: str) -> str:
    assert stack.postgres
    return stack.postgres.primary.dsn.replace("dbname=postgres", f"dbname={database}")


def create_source(stack: Stack, *, drop_table: str | None = None, **seed: int) -> str:
    """A database of the test's own on the sandbox primary, with the messaging schema seeded."""
    assert stack.postgres
    name = f"backup_src_{secrets.token_hex(4)}"
    stack.postgres.primary.sql(f'CREATE DATABASE "{name}"')
    seed_messaging(database_dsn(stack, name), **seed)
    if drop_table:
        stack.postgres.primary.sql(f"DROP TABLE {drop_table} CASCADE", database=name)
    return name


def drop_source(stack: Stack, name: str) -> None:
    assert stack.postgres
    stack.postgres.primary.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class BackupEnv:
    cfg: SreConfig
    path: Path  # the sre.yaml, for the CLI
    scratch_dir: Path
    bucket: str
    s3: Any

    @property
    def backup(self) -> Any:
        return self.cfg.backups["main"]

    def scratch_leftovers(self) -> list[str]:
        return sorted(p.name for p in self.scratch_dir.iterdir())

    def processes_in_scratch(self) -> list[int]:
        """PIDs whose command line names a path under this test's scratch directory."""
        found = []
        needle = str(self.scratch_dir).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if needle in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
        return found


MakeEnv = Callable[..., BackupEnv]


def flip_byte(s3: Any, bucket: str, key: str, at: float = 0.5) -> None:
    """Overwrite the object with one byte changed, keeping its metadata (as bit rot would)."""
    head = s3.head_object(Bucket=bucket, Key=key)
    data = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    i = int(len(data) * at)
    data[i] ^= 0xFF
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(data), Metadata=head.get("Metadata", {}))


def truncate(s3: Any, bucket: str, key: str, keep: float = 0.5) -> None:
    head = s3.head_object(Bucket=bucket, Key=key)
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=key, Body=data[: int(len(data) * keep)], Metadata=head.get("Metadata", {}))


def by_check(results: list[Any]) -> dict[str, Any]:
    return {r.check: r for r in results}
