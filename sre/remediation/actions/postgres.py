"""PostgreSQL actions: cancel long queries, end sessions idle in a transaction.

Only client backends are touched (`backend_type = 'client backend'`): never WAL senders (the
replicas' streams), autovacuum or other background workers; never this connection, and never a
connection of this service (application_name starting with `sre`, which the state store and the
adapters set).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from sre.config import Seconds
from sre.errors import SreError
from sre.remediation.actions import Action, ActionContext, ActionError, Params

APPLICATION_NAME = "sre-remediation"
TIMEOUT = 10.0

_SAFE = ("backend_type = 'client backend' AND pid <> pg_backend_pid() "
         "AND coalesce(application_name, '') NOT LIKE 'sre%%'")


class _NodeParams(Params):
    cluster: str = Field(min_length=1)
    node: str = Field(min_length=1)
    datname: str | None = Field(None, description="Only sessions of this database.")


class LongQueryParams(_NodeParams):
    older_than: Seconds = Field(300.0, gt=0, description="Cancel statements running longer than this.")


class IdleParams(_NodeParams):
    idle_for: Seconds = Field(300.0, gt=0, description="End sessions idle in a transaction longer than this.")


def _run(ctx: ActionContext, p: _NodeParams, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    from sre.adapters.postgres import Timed

    cluster = ctx.cfg.postgres.clusters.get(p.cluster)
    if cluster is None:
        raise ActionError(f"no PostgreSQL cluster {p.cluster!r} in the config (postgres.clusters)")
    try:
        node = cluster.node(p.node)
    except KeyError:
        raise ActionError(f"cluster {p.cluster} has no node {p.node!r}") from None
    try:
        with Timed(node, TIMEOUT, dbname=cluster.database, application_name=APPLICATION_NAME) as pg:
            rows = pg.query(sql, params)
    except SreError as exc:
        raise ActionError(str(exc)) from None
    return [{"pid": r[0], "user": r[1], "database": r[2], "application": r[3], "seconds": round(float(r[4]), 1),
             "done": bool(r[5])} for r in rows]


def _where_db(p: _NodeParams, params: list[Any]) -> str:
    if p.datname:
        params.append(p.datname)
        return " AND datname = %s"
    return ""


class _OnNode(Action):
    def target(self, p: _NodeParams) -> str:
        return f"postgres/{p.cluster}/{p.node}"

    def scope(self, p: _NodeParams) -> dict[str, str]:
        return {"cluster": p.cluster}


class CancelLongQueries(_OnNode):
    name = "postgres.cancel_long_queries"
    params_model = LongQueryParams

    def describe(self, p: LongQueryParams) -> str:
        db = f" in database {p.datname}" if p.datname else ""
        return (f"would cancel (pg_cancel_backend) statements running longer than {p.older_than:g}s{db} on "
                f"{p.cluster}/{p.node}, client backends only, never replication or this service's sessions")

    def run(self, p: LongQueryParams, ctx: ActionContext) -> dict[str, Any]:
        params: list[Any] = [p.older_than]
        sql = ("SELECT pid, usename, datname, application_name, extract(epoch FROM now() - query_start), "
               "pg_cancel_backend(pid) FROM pg_stat_activity WHERE state = 'active' "
               "AND now() - query_start > make_interval(secs => %s) AND " + _SAFE + _where_db(p, params))
        sessions = _run(ctx, p, sql, params)
        return {"cancelled": sum(1 for s in sessions if s["done"]), "sessions": sessions}


class TerminateIdleInTransaction(_OnNode):
    name = "postgres.terminate_idle_in_transaction"
    params_model = IdleParams

    def describe(self, p: IdleParams) -> str:
        db = f" in database {p.datname}" if p.datname else ""
        return (f"would end (pg_terminate_backend) sessions idle in a transaction for more than {p.idle_for:g}s{db} "
                f"on {p.cluster}/{p.node}, client backends only, never replication or this service's sessions")

    def run(self, p: IdleParams, ctx: ActionContext) -> dict[str, Any]:
        params: list[Any] = [p.idle_for]
        sql = ("SELECT pid, usename, datname, application_name, extract(epoch FROM now() - state_change), "
               "pg_terminate_backend(pid) FROM pg_stat_activity "
               "WHERE state IN ('idle in transaction', 'idle in transaction (aborted)') "
               "AND now() - state_change > make_interval(secs => %s) AND " + _SAFE + _where_db(p, params))
        sessions = _run(ctx, p, sql, params)
        return {"terminated": sum(1 for s in sessions if s["done"]), "sessions": sessions}
