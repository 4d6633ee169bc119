"""PostgreSQL replica checks against real servers: the sandbox's pair for the healthy cases, and a
private pair (its own directory and ports) for every case that breaks replication."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from sre.checks.replication import check_all, check_postgres
from sre.checks.replication_verdict import CHECK_POSTGRES
from sre.config import SreConfig
from sre.local.procs import free_port, wait_until
from sre.results import CheckResult
from sre.sandbox import Stack
from sre.sandbox.postgres import PgPair
from tests.integration.replication_support import (
    Writer,
    black_hole,
    check_until,
    config,
    frozen,
    pair_cluster,
    pg_cluster,
    private_pg_pair,
    server_pids,
    wait_streaming,
)

pytestmark = pytest.mark.slow

CLUSTER = "private"


@pytest.fixture(scope="module")
def pair() -> Iterator[PgPair]:
    with private_pg_pair() as p:
        yield p


@pytest.fixture
def healthy(pair: PgPair) -> PgPair:
    """Every test starts from a streaming, caught-up replica whose replay runs."""
    pair.replica.sql("SELECT pg_wal_replay_resume()")
    wait_streaming(pair)
    return pair


def cfg_for(pair: PgPair, tmp_path: Path, *, heartbeat: bool = False, connect_timeout: float = 2,
            **objectives: Any) -> SreConfig:
    return config({CLUSTER: pair_cluster(tmp_path / "secrets", pair, objectives=objectives,
                                         heartbeat={"enabled": heartbeat}, connect_timeout=connect_timeout)})


def one(cfg: SreConfig, cluster: str = CLUSTER) -> CheckResult:
    [result] = check_postgres(cfg, cluster)
    return result


def gauge(name: str, cluster: str, replica: str = "west1", region: str = "eu-west-1") -> float | None:
    return REGISTRY.get_sample_value(name, {"cluster": cluster, "replica": replica, "region": region})


def primary_now(pair: PgPair) -> datetime:
    now: datetime = pair.primary.sql("SELECT clock_timestamp()")[0][0]
    return now


# ---------------------------------------------------------------- healthy


def test_caught_up_replica_is_ok_with_zero_lag(sandbox: Stack, sandbox_config: SreConfig) -> None:
    result = check_until(lambda: one(sandbox_config, "main"), lambda r: r.observed["lag_bytes"] == 0,
                        timeout=10, what="a check with no byte lag")
    o = result.observed
    assert result.check == CHECK_POSTGRES and result.target == "main/west1"
    assert result.status == "ok", result.message
    assert o["connected"] is True and o["state"] == "streaming" and o["receiver_status"] == "streaming"
    assert o["lag_seconds"] is not None and o["lag_seconds"] < 0.5
    assert o["replay_lag_seconds"] is not None and o["slot"] == "west1" and o["slot_active"] is True
    assert "caught up" in result.message and result.message.startswith("replica eu-west-1/west1")
    assert gauge("sre_replication_lag_bytes", "main") == 0
    assert gauge("sre_replication_connected", "main") == 1
    assert gauge("sre_replication_check_success", "main") == 1


def test_idle_primary_is_not_lag(healthy: PgPair, tmp_path: Path) -> None:
    pair = healthy
    cfg = cfg_for(pair, tmp_path, lag_warn="1s", lag_fail="2s")
    pair.primary.sql("CREATE TABLE IF NOT EXISTS idle_probe (id int)")
    pair.primary.sql("INSERT INTO idle_probe VALUES (1)")
    wait_streaming(pair)
    # The trap: with nothing to replay, now() - pg_last_xact_replay_timestamp() grows past the
    # fail threshold on its own.
    wait_until(lambda: pair.replica.sql(
        "SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp()) > 2.5")[0][0],
        timeout=15, interval=0.2, what="the naive lag formula past the fail threshold")
    result = one(cfg)
    assert result.status == "ok", result.message
    assert result.observed["lag_seconds"] == 0 and result.observed["lag_bytes"] == 0
    assert result.observed["lag_seconds_basis"] == "caught_up"


# ---------------------------------------------------------------- replay paused under load


def oldest_unreplayed_commit(pair: PgPair) -> datetime:
    applied = pair.replica.sql("SELECT coalesce(max(id), 0) FROM load")[0][0]
    ts: datetime = pair.primary.sql("SELECT ts FROM load WHERE id > %s ORDER BY id LIMIT 1", [applied])[0][0]
    return ts


def test_paused_replay_under_load_fails_with_true_lag_then_clears(healthy: PgPair, tmp_path: Path) -> None:
    pair = healthy
    cfg = cfg_for(pair, tmp_path, lag_warn="1s", lag_fail="3s", lag_warn_bytes="1GiB", lag_fail_bytes="2GiB")
    with Writer(pair.primary, every=0.02):
        wait_until(lambda: pair.replica.sql("SELECT count(*) FROM load")[0][0] > 5, timeout=10, what="load replicated")
        try:
            pair.replica.sql("SELECT pg_wal_replay_pause()")
            wait_until(lambda: pair.replica.sql("SELECT pg_get_wal_replay_pause_state()")[0][0] == "paused",
                       timeout=5, what="replay paused")
            early = check_until(lambda: one(cfg), lambda r: r.observed["lag_bytes"] > 0, timeout=5,
                               what="byte lag visible")
            assert early.observed["replay_paused"] is True

            # Let the true lag pass the fail threshold, then one check must fail.
            oldest = oldest_unreplayed_commit(pair)
            wait_until(lambda: (primary_now(pair) - oldest).total_seconds() > 3.5, timeout=10, interval=0.1,
                       what="true lag past the fail threshold")
            before = primary_now(pair)
            result = one(cfg)
            after = primary_now(pair)
            oldest = oldest_unreplayed_commit(pair)
            o = result.observed
            assert result.status == "fail", result.message
            true_low, true_high = (before - oldest).total_seconds(), (after - oldest).total_seconds()
            assert true_low - 1 <= o["lag_seconds"] <= true_high + 1, (o["lag_seconds"], true_low, true_high)
            assert o["lag_bytes"] > early.observed["lag_bytes"]
            assert o["lag_seconds"] > early.observed["lag_seconds"]
            assert o["connected"] is True and o["unreplayed_bytes"] > 0
            assert "replay paused" in result.message and " behind" in result.message
            assert gauge("sre_replication_check_success", CLUSTER) == 1  # measured, and failing
            assert gauge("sre_replication_lag_seconds", CLUSTER) == pytest.approx(o["lag_seconds"])
        finally:
            pair.replica.sql("SELECT pg_wal_replay_resume()")
    cleared = check_until(lambda: one(cfg), lambda r: r.status == "ok", timeout=15, what="lag cleared after resume")
    assert cleared.observed["lag_bytes"] == 0 and cleared.observed["replay_paused"] is False


# ---------------------------------------------------------------- links


def test_stopped_replica_is_disconnected_from_the_primarys_view(healthy: PgPair, tmp_path: Path) -> None:
    pair = healthy
    cfg = cfg_for(pair, tmp_path)
    pair.replica.stop()
    try:
        wait_until(lambda: not pair.primary.sql(
            "SELECT 1 FROM pg_stat_replication WHERE application_name = 'west1'"), timeout=10, what="walsender gone")
        pair.primary.sql("CREATE TABLE IF NOT EXISTS while_down (id int)")
        pair.primary.sql("INSERT INTO while_down SELECT generate_series(1, 1000)")
        result = one(cfg)
        o = result.observed
        assert result.status == "fail"
        assert o["connected"] is False and o["state"] is None and "replica_error" in o
        assert o["slot_active"] is False and o["lag_bytes"] > 0
        assert "the primary has no WAL sender for it" in result.message
        assert "cannot reach the replica" in result.message
        assert gauge("sre_replication_connected", CLUSTER) == 0
        assert gauge("sre_replication_check_success", CLUSTER) == 0  # the replica could not be read
    finally:
        pair.replica.start()
    wait_streaming(pair)
    assert one(cfg).status == "ok"


def test_cut_link_fails_although_the_replicas_lsns_are_equal(healthy: PgPair, tmp_path: Path) -> None:
    pair = healthy
    cfg = cfg_for(pair, tmp_path)
    original = pair.replica.sql("SHOW primary_conninfo")[0][0]
    try:
        pair.replica.sql(f"ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port={free_port()} user=postgres "
                         "application_name=west1'")
        pair.replica.sql("SELECT pg_reload_conf()")
        pair.primary.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name = 'west1'")
        wait_until(lambda: not pair.primary.sql(
            "SELECT 1 FROM pg_stat_replication WHERE application_name = 'west1'"), timeout=10, what="link cut")
        result = one(cfg)
        o = result.observed
        # The replica is up and has applied all it received: the LSN comparison alone says "caught up".
        assert "replica_error" not in o and o["in_recovery"] is True
        assert o["receive_lsn"] == o["replay_lsn"] and o["unreplayed_bytes"] == 0
        assert result.status == "fail"
        assert "replication link down" in result.message
        assert o["connected"] is False
    finally:
        quoted = original.replace("'", "''")  # ALTER SYSTEM takes no bind parameters
        pair.replica.sql(f"ALTER SYSTEM SET primary_conninfo = '{quoted}'")
        pair.replica.sql("SELECT pg_reload_conf()")
    wait_streaming(pair)
    assert one(cfg).status == "ok"


def test_stale_receiver_is_a_cut_link(healthy: PgPair, tmp_path: Path) -> None:
    """A WAL sender that stops answering (a link that black-holes packets): every view still says
    'streaming' and the LSNs stay equal; only the age of the last message tells."""
    pair = healthy
    cfg = cfg_for(pair, tmp_path, receiver_stale="1s")
    [[walsender]] = pair.primary.sql("SELECT pid FROM pg_stat_replication WHERE application_name = 'west1'")
    with frozen([walsender]):
        result = check_until(lambda: one(cfg), lambda r: r.status == "fail", timeout=10, what="stale link detected")
        o = result.observed
        assert o["receiver_status"] == "streaming" and o["state"] == "streaming"
        assert o["receive_lsn"] == o["replay_lsn"]
        assert "replication link down" in result.message and "heard nothing" in result.message
    wait_until(lambda: one(cfg).status == "ok", timeout=40, interval=0.5, what="link back after the sender resumes")


# ---------------------------------------------------------------- nodes that do not answer


def test_unanswering_nodes_do_not_delay_the_others(sandbox: Stack, healthy: PgPair, tmp_path: Path) -> None:
    pair = healthy
    secrets = tmp_path / "secrets"
    sb = sandbox.postgres
    assert sb is not None
    with black_hole() as hole:
        cfg = config({
            "healthy": pg_cluster(secrets, ("east1", "us-east-1", sb.primary.dsn),
                                  [("west1", "eu-west-1", sb.replica.dsn)], connect_timeout=2),
            "frozen": pair_cluster(secrets, pair, connect_timeout=2),
            "blackhole": pg_cluster(secrets, ("east1", "us-east-1", pair.primary.dsn),
                                    [("west1", "eu-west-1", f"host=127.0.0.1 port={hole} user=postgres")],
                                    connect_timeout=2),
            "refused": pg_cluster(secrets, ("east1", "us-east-1", pair.primary.dsn),
                                  [("west1", "eu-west-1", f"host=127.0.0.1 port={free_port()} user=postgres")],
                                  connect_timeout=2),
        })
        with frozen(server_pids(pair.replica)):
            t0 = time.monotonic()
            results = {r.target.split("/")[0]: r for r in check_all(cfg)}
            elapsed = time.monotonic() - t0
    # Each node has 2 s to connect and 2 s to answer; nothing waits for a stuck node beyond that.
    assert elapsed < 2 * 2 + 1.5, elapsed
    assert results["healthy"].status == "ok", results["healthy"].message
    for name in ("frozen", "blackhole", "refused"):
        assert results[name].status == "fail"
        assert "cannot reach the replica" in results[name].message
    assert "Connection refused" in results["refused"].observed["replica_error"]
    assert "within" in results["blackhole"].observed["replica_error"]
    assert "within" in results["frozen"].observed["replica_error"]


def test_deadline_cuts_a_server_that_stops_answering_after_connecting(healthy: PgPair) -> None:
    from sre.adapters.postgres import DeadlineExceeded, Timed

    pair = healthy
    with Timed(pair.replica.dsn, 1.0, name="west1") as db:
        assert db.query("SELECT 1") == [(1,)]
        with frozen(server_pids(pair.replica)):
            t0 = time.monotonic()
            with pytest.raises(DeadlineExceeded, match="west1: did not answer within 1s"):
                db.query("SELECT 1")
            assert time.monotonic() - t0 < 1.5
    wait_streaming(pair)


# ---------------------------------------------------------------- heartbeat and cost


def test_heartbeat_measures_end_to_end_lag(healthy: PgPair, tmp_path: Path) -> None:
    pair = healthy
    cfg = cfg_for(pair, tmp_path, heartbeat=True, lag_warn="1s", lag_fail="60s")
    first = one(cfg)
    assert first.status == "ok", first.message
    wait_until(lambda: one(cfg).observed.get("heartbeat_lag_seconds") == 0, timeout=10, what="heartbeat seen")
    [(at, history)] = pair.primary.sql("SELECT at, history FROM sre_heartbeat WHERE source = %s", [CLUSTER])
    assert history[0] == at and len(history) >= 2
    try:
        pair.replica.sql("SELECT pg_wal_replay_pause()")
        wait_until(lambda: pair.replica.sql("SELECT pg_get_wal_replay_pause_state()")[0][0] == "paused",
                   timeout=5, what="replay paused")
        one(cfg)  # writes a heartbeat the paused replica cannot apply
        [[applied]] = pair.replica.sql("SELECT at FROM sre_heartbeat WHERE source = %s", [CLUSTER])
        [[history]] = pair.primary.sql("SELECT history FROM sre_heartbeat WHERE source = %s", [CLUSTER])
        unapplied = min(t for t in history if t > applied)
        wait_until(lambda: (primary_now(pair) - unapplied).total_seconds() > 1.5, timeout=5, interval=0.1,
                   what="time passing")
        before = primary_now(pair)
        result = one(cfg)
        after = primary_now(pair)
        hb = result.observed["heartbeat_lag_seconds"]
        assert (before - unapplied).total_seconds() - 0.2 <= hb <= (after - unapplied).total_seconds() + 0.2
        assert result.observed["lag_seconds"] >= hb
        assert result.status == "warn"
    finally:
        pair.replica.sql("SELECT pg_wal_replay_resume()")
    wait_until(lambda: one(cfg).status == "ok", timeout=10, what="heartbeat applied after resume")
    [[rows]] = pair.primary.sql("SELECT count(*) FROM sre_heartbeat")
    assert rows == 1  # one row per cluster, updated in place


def logged(log: Path, text: str, since: int) -> bool:
    return text in log.read_text(errors="replace")[since:]


def test_a_check_costs_at_most_three_statements_on_the_primary(healthy: PgPair, tmp_path: Path) -> None:
    pair = healthy
    log = pair.primary.log_path
    pair.primary.sql("ALTER SYSTEM SET log_statement = 'all'")
    pair.primary.sql("SELECT pg_reload_conf()")
    try:
        wait_until(lambda: pair.primary.sql("SHOW log_statement")[0][0] == "all", timeout=5, what="logging on")
        counts = []
        for heartbeat in (False, True, True):
            offset = log.stat().st_size
            one(cfg_for(pair, tmp_path, heartbeat=heartbeat))
            marker = f"sre-test-marker-{time.monotonic_ns()}"
            pair.primary.sql(f"SELECT '{marker}'")
            wait_until(partial(logged, log, marker, offset), timeout=5, what="log flushed")
            lines = log.read_text(errors="replace")[offset:].splitlines()
            # Simple-protocol statements log as "statement:", bound ones as "execute <unnamed>:".
            counts.append(sum(1 for ln in lines if " sre-replication " in ln and ("statement: " in ln
                                                                                 or "execute " in ln)))
        # State only; state + heartbeat upsert (+ CREATE TABLE IF NOT EXISTS once per process).
        assert counts[0] == 1 and counts[1] in (2, 3) and counts[2] == 2, counts
    finally:
        pair.primary.sql("ALTER SYSTEM RESET log_statement")
        pair.primary.sql("SELECT pg_reload_conf()")
