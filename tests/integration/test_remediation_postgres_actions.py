"""PostgreSQL actions against the sandbox primary: they end the sessions they should, and never
this service's own sessions or the replica's WAL stream."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from sre.config import SreConfig
from sre.local.procs import wait_until
from sre.remediation.actions import ActionContext, get_action
from sre.sandbox import Stack

pytestmark = pytest.mark.slow


def _ctx(cfg: SreConfig) -> ActionContext:
    return ActionContext(cfg=cfg, remediation_id=1, alertname="PostgresLongRunningTransaction", labels={})


@pytest.fixture
def sessions(sandbox: Stack) -> Iterator[dict[str, Any]]:
    assert sandbox.postgres is not None
    dsn = sandbox.postgres.primary.dsn
    out: dict[str, Any] = {"errors": {}, "conns": []}

    def sleeper(app: str) -> None:
        with psycopg.connect(dsn, application_name=app, autocommit=True) as conn:
            out["conns"].append(conn)
            try:
                conn.execute("SELECT pg_sleep(20)")
                out["errors"][app] = None
            except psycopg.Error as exc:
                out["errors"][app] = type(exc).__name__

    threads = [threading.Thread(target=sleeper, args=(app,), daemon=True) for app in ("victim-app", "sre-store")]
    for t in threads:
        t.start()
    idle = psycopg.connect(dsn, application_name="idle-app")
    idle.execute("SELECT 1")  # opens a transaction and leaves it idle
    mine = psycopg.connect(dsn, application_name="sre")
    mine.execute("SELECT 1")
    out.update(idle=idle, mine=mine, threads=threads)
    wait_until(lambda: sandbox.postgres.primary.sql(  # type: ignore[union-attr]
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND application_name IN "
        "('victim-app', 'sre-store') AND now() - query_start > interval '1 second'")[0][0] == 2,
        timeout=10, what="two sleeping sessions")
    try:
        yield out
    finally:
        for c in (idle, mine):
            c.close()
        sandbox.postgres.primary.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name "
                                     "IN ('victim-app', 'sre-store', 'idle-app', 'sre')")
        for t in threads:
            t.join(10)


def test_cancel_long_queries_spares_own_and_replication(sandbox: Stack, sandbox_config: SreConfig,
                                                        sessions: dict[str, Any]) -> None:
    assert sandbox.postgres is not None
    senders = sandbox.postgres.primary.sql("SELECT pid FROM pg_stat_replication")
    assert senders, "the sandbox replica streams"
    action = get_action("postgres.cancel_long_queries")
    params = action.parse({"cluster": "main", "node": "east1", "older_than": "1s", "datname": "postgres"})
    assert "pg_cancel_backend" in action.describe(params)
    result = action.run(params, _ctx(sandbox_config))
    assert [s["application"] for s in result["sessions"]] == ["victim-app"] and result["cancelled"] == 1
    wait_until(lambda: "victim-app" in sessions["errors"], timeout=10, what="the victim's query ended")
    assert sessions["errors"]["victim-app"] == "QueryCanceled"
    assert "sre-store" not in sessions["errors"]  # still sleeping
    assert sandbox.postgres.primary.sql("SELECT pid FROM pg_stat_replication") == senders


def test_terminate_idle_in_transaction_spares_own_sessions(sandbox: Stack, sandbox_config: SreConfig,
                                                           sessions: dict[str, Any]) -> None:
    assert sandbox.postgres is not None
    action = get_action("postgres.terminate_idle_in_transaction")
    params = action.parse({"cluster": "main", "node": "east1", "idle_for": "0.2s"})
    wait_until(lambda: sandbox.postgres.primary.sql(  # type: ignore[union-attr]
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' "
        "AND now() - state_change > interval '0.3 second'")[0][0] >= 1, timeout=10, what="an idle transaction")
    result = action.run(params, _ctx(sandbox_config))
    assert [s["application"] for s in result["sessions"]] == ["idle-app"] and result["terminated"] == 1
    with pytest.raises(psycopg.OperationalError):
        sessions["idle"].execute("SELECT 1")
    assert sessions["mine"].execute("SELECT 1").fetchone() == (1,)  # application_name sre: untouched
    assert sandbox.postgres.primary.sql("SELECT count(*) FROM pg_stat_replication")[0][0] >= 1


def test_unknown_cluster_fails_cleanly(sandbox_config: SreConfig) -> None:
    from sre.remediation.actions import ActionError

    action = get_action("postgres.cancel_long_queries")
    with pytest.raises(ActionError, match="no PostgreSQL cluster 'other'"):
        action.run(action.parse({"cluster": "other", "node": "x"}), _ctx(sandbox_config))


def test_the_own_sessions_exemption_is_exact_not_a_prefix(sandbox: Stack, sandbox_config: SreConfig) -> None:
    assert sandbox.postgres is not None
    evader = psycopg.connect(sandbox.postgres.primary.dsn, application_name="sre-not-really")
    evader.execute("SELECT 1")  # idle in a transaction, under a name that starts with sre
    try:
        wait_until(lambda: sandbox.postgres.primary.sql(  # type: ignore[union-attr]
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sre-not-really' "
            "AND state = 'idle in transaction' AND now() - state_change > interval '0.3 second'")[0][0] == 1,
            timeout=10, what="an idle transaction")
        action = get_action("postgres.terminate_idle_in_transaction")
        result = action.run(action.parse({"cluster": "main", "node": "east1", "idle_for": "0.2s"}),
                            _ctx(sandbox_config))
        assert [s["application"] for s in result["sessions"]] == ["sre-not-really"] and result["terminated"] == 1
    finally:
        evader.close()


def test_an_empty_database_name_is_refused_not_every_database() -> None:
    from pydantic import ValidationError

    action = get_action("postgres.cancel_long_queries")
    with pytest.raises(ValidationError, match="datname"):
        action.parse({"cluster": "main", "node": "east1", "datname": ""})
