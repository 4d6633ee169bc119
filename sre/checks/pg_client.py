"""PostgreSQL client tools for backups: where the binaries are, and DSNs without leaking passwords.

A DSN may carry a password; command lines are visible to every user of the host (`ps`), so the
password goes to the child's environment (PGPASSWORD) and only the rest to its arguments.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sre.errors import UnreachableError, UsageError
from sre.local.postgres import PG_BIN
from sre.local.procs import find_binary

if TYPE_CHECKING:
    from sre.config import BackupConfig, PgNode, PostgresCluster, SreConfig

def pg_binary(name: str, pg_bin: Path | None = None) -> str:
    """The path of a PostgreSQL binary: the configured directory, PostgreSQL 15's, else PATH."""
    found = find_binary(name, *([str(pg_bin)] if pg_bin is not None else []), PG_BIN)
    if found is None:
        raise UsageError(f"the PostgreSQL binary {name!r} is not installed",
                         hint="install the postgresql package or set backups.<name>.restore.pg_bin")
    return found


def split_dsn(dsn: str, dbname: str | None = None, **overrides: Any) -> tuple[str, dict[str, str]]:
    """(conninfo without the password, environment holding it) for a libpq child process."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        params = conninfo_to_dict(dsn)
    except Exception:
        raise UsageError("a PostgreSQL DSN in the config is not valid libpq syntax") from None
    env: dict[str, str] = {}
    password = params.pop("password", None)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    if dbname is not None:
        params["dbname"] = dbname
    params.update(overrides)
    params.setdefault("connect_timeout", 5)
    return make_conninfo(**{k: str(v) for k, v in params.items()}), env


def with_dbname(dsn: str, dbname: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return make_conninfo(**{k: str(v) for k, v in params.items()})


# The only variables a PostgreSQL client tool inherits: it needs no state URL, DSN or cloud key
# of this process, and a child that is compromised (or just logs its environment) sees none.
CHILD_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """A minimal environment for a libpq child process, plus `extra` (PGPASSWORD)."""
    return {**{k: os.environ[k] for k in CHILD_ENV_KEEP if k in os.environ}, **extra}


def cluster_of(cfg: SreConfig, backup: BackupConfig) -> PostgresCluster:
    return cfg.postgres.clusters[backup.cluster]


def source_node(cfg: SreConfig, backup: BackupConfig) -> PgNode:
    """The node backups are taken from and compared with (default: the primary)."""
    cluster = cluster_of(cfg, backup)
    if backup.source_node is None:
        return cluster.primary
    try:
        return cluster.node(backup.source_node)
    except KeyError:
        raise UsageError(f"backups: source_node {backup.source_node!r} is not a node of cluster "
                         f"{backup.cluster!r}") from None


def source_dsn(cfg: SreConfig, backup: BackupConfig) -> str:
    cluster = cluster_of(cfg, backup)
    return with_dbname(source_node(cfg, backup).dsn.resolve().get_secret_value(), cluster.database)


def connect(dsn: str, timeout: float = 5.0) -> Any:
    import psycopg

    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=max(1, int(timeout)))
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise UnreachableError(f"PostgreSQL: {first}") from None
