"""PostgreSQL actions: cancel long queries, end sessions idle in a transaction.

Only client backends are touched (`backend_type = 'client backend'`): never WAL senders (the
replicas' streams), autovacuum or other background workers; never this connection, and never a
connection of this service: one of the exact application_names it sets (SERVICE_APPLICATIONS),
not a prefix, so a client naming itself `sre-anything` is not exempt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from sre.adapters.postgres import Timed
from sre.config import Seconds
from sre.errors import SreError
from sre.remediation.actions import Action, ActionContext, ActionError, Params

if TYPE_CHECKING:
    from sre.config import SreConfig

APPLICATION_NAME = "sre-remediation"
TIMEOUT = 10.0
# The application_names of this service's own connections: the state store, these actions, the
# replication check and the adapters' default. The leader's lock connection runs in autocommit
# and is never idle in a transaction or long in a statement.
SERVICE_APPLICATIONS = ["sre-store", APPLICATION_NAME, "sre-replication", "sre"]

_SAFE = ("backend_type = 'client backend' AND pid <> pg_backend_pid() "
         "AND coalesce(application_name, '') <> ALL(%s)")


class _NodeParams(Params):
    cluster: str = Field(min_length=1)
    node: str = Field(min_length=1)
    # Empty is refused: "" must never mean "every database".
    datname: str | None = Field(None, min_length=1, description="Only sessions of this database.")


class LongQueryParams(_NodeParams):
    older_than: Seconds = Field(300.0, gt=0, description="Cancel statements running longer than this.")


class IdleParams(_NodeParams):
    idle_for: Seconds = Field(300.0, gt=0, description="End sessions idle in a transaction longer than this.")


def _run(ctx: ActionContext, p: _NodeParams, sql: str, params: list[Any]) -> list[dict[str, Any]]:
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

    def check_target(self, p: _NodeParams, cfg: SreConfig) -> str | None:
        cluster = cfg.postgres.clusters.get(p.cluster)
        if cluster is None:
            known = ", ".join(sorted(cfg.postgres.clusters)) or "none"
            return f"cluster {p.cluster!r} is not in the inventory (postgres.clusters: {known})"
        names = [n.name for n in cluster.nodes()]
        if p.node not in names:
            return f"cluster {p.cluster} has no node {p.node!r} (its nodes: {', '.join(names)})"
        return None

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
        params: list[Any] = [p.older_than, SERVICE_APPLICATIONS]
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
        params: list[Any] = [p.idle_for, SERVICE_APPLICATIONS]
        sql = ("SELECT pid, usename, datname, application_name, extract(epoch FROM now() - state_change), "
               "pg_terminate_backend(pid) FROM pg_stat_activity "
               "WHERE state IN ('idle in transaction', 'idle in transaction (aborted)') "
               "AND now() - state_change > make_interval(secs => %s) AND " + _SAFE + _where_db(p, params))
        sessions = _run(ctx, p, sql, params)
        return {"terminated": sum(1 for s in sessions if s["done"]), "sessions": sessions}
