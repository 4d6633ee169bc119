"""The canary table a point-in-time recovery is proven with, and the job that writes it.

`backups.canary` inserts one row (seq, at) every few seconds on the primary of each cluster
with a WAL-archived backup set. A restore to time T must hold every row written up to T and
none after it: the rows say which second was recovered (sre.checks.pitr).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sre.checks.pg_client import connect, with_dbname
from sre.errors import SreError
from sre.results import CheckResult, JobOutcome, worst

if TYPE_CHECKING:
    from sre.config import SreConfig
    from sre.results import JobContext, JobOutcome

RETENTION_DAYS = 8  # longer than a week of daily verifications looks back


def _table(name: str) -> Any:
    from psycopg import sql

    return sql.Identifier(*name.split("."))


def ensure_table(dsn: str, table: str) -> None:
    from psycopg import sql

    with connect(dsn) as conn:
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (seq bigserial PRIMARY KEY, "
                             "at timestamptz NOT NULL DEFAULT clock_timestamp())").format(_table(table)))


def write_canary(dsn: str, table: str) -> tuple[int, datetime]:
    """One row, committed on its own; its (seq, at)."""
    from psycopg import sql

    with connect(dsn) as conn:
        row = conn.execute(sql.SQL("INSERT INTO {} DEFAULT VALUES RETURNING seq, at").format(_table(table))).fetchone()
    assert row is not None
    return int(row[0]), row[1]


def prune(dsn: str, table: str, days: int = RETENTION_DAYS) -> None:
    from psycopg import sql

    with connect(dsn) as conn:
        conn.execute(sql.SQL("DELETE FROM {} WHERE at < now() - make_interval(days => %s)").format(_table(table)),
                     [days])


def archived_clusters(cfg: SreConfig) -> dict[str, str]:
    """Cluster name -> canary table, for every cluster with a WAL-archived, PITR-tested set."""
    out: dict[str, str] = {}
    for bcfg in cfg.backups.values():
        archived = bcfg.format == "pgbackrest" or (bcfg.format == "basebackup" and bcfg.wal_prefix)
        if archived and bcfg.pitr.enabled:
            out.setdefault(bcfg.cluster, bcfg.pitr.canary_table)
    return out


def run_job(ctx: JobContext) -> JobOutcome:
    """Every few seconds: one canary row on the primary of each archived cluster."""
    results: list[CheckResult] = []
    for cluster_name, table in archived_clusters(ctx.cfg).items():
        cluster = ctx.cfg.postgres.clusters[cluster_name]
        dsn = with_dbname(cluster.primary.dsn.resolve().get_secret_value(), cluster.database)
        try:
            try:
                seq, at = write_canary(dsn, table)
            except SreError:
                raise
            except Exception:
                ensure_table(dsn, table)
                seq, at = write_canary(dsn, table)
            if seq % 1000 == 0:
                prune(dsn, table)
            results.append(CheckResult("backup.canary", cluster_name, "ok", {"seq": seq, "at": at.isoformat()},
                                       f"canary row {seq} written"))
        except Exception as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
            results.append(CheckResult("backup.canary", cluster_name, "fail", {}, f"canary write failed: {text}"))
    return JobOutcome(status=worst([r.status for r in results]), results=results,
                      summary={"clusters": len(results)})
