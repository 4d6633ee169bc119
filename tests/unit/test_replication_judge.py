"""How answers from a primary and a replica become one result (no servers: the answers are built)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sre.checks.bounded import Probe
from sre.checks.humanize import human_bytes, human_seconds
from sre.checks.replication_postgres import (
    PrimaryView,
    ReplicaView,
    _heartbeat_lag,
    format_lsn,
    judge_replica,
    parse_lsn,
)
from sre.config import PostgresCluster

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
CLUSTER = PostgresCluster.model_validate({
    "primary": {"name": "east1", "region": "us-east-1", "dsn": {"env": "UNUSED"}},
    "replicas": [{"name": "west1", "region": "eu-west-1", "dsn": {"env": "UNUSED"}}],
    "objectives": {"lag_warn": "10s", "lag_fail": "30s", "lag_warn_bytes": "100MB", "lag_fail_bytes": "400MB"},
})
NODE = CLUSTER.replicas[0]


def standby(**kw: Any) -> dict[str, Any]:
    row = {"application_name": "west1", "pid": 42, "state": "streaming", "sync_state": "async",
           "client_addr": "127.0.0.1", "sent_bytes": 0, "write_bytes": 0, "flush_bytes": 0, "replay_bytes": 0,
           "write_lag": None, "flush_lag": None, "replay_lag": None, "reply_age": 0.2}
    row.update(kw)
    return row


def primary(lsn: int, standbys: list[dict[str, Any]] | None = None) -> Probe:
    return Probe(PrimaryView(now=T0, mono=100.0, in_recovery=False, current_lsn=lsn,
                             standbys=[standby()] if standbys is None else standbys,
                             slots=[{"slot_name": "west1", "active": True, "active_pid": 42, "wal_status": "reserved",
                                     "retained_bytes": 0}]))


def replica(**kw: Any) -> Probe:
    base: dict[str, Any] = dict(now=T0, mono=100.0, in_recovery=True, receive_lsn=1000, replay_lsn=1000,
                                unreplayed_bytes=0, replay_ts=T0 - timedelta(hours=3), pause_state="not paused",
                                receiver_status="streaming", receiver_age=0.5, receiver_pid=7, receiver_timeout=60.0,
                                status_interval=10.0)
    base.update(kw)
    return Probe(ReplicaView(**base))


def test_idle_primary_with_an_old_last_commit_is_caught_up() -> None:
    r = judge_replica("main", CLUSTER, NODE, primary(1000), replica())
    assert r.status == "ok"
    assert r.observed["lag_seconds"] == 0 and r.observed["lag_bytes"] == 0
    assert r.observed["write_lag_seconds"] == 0.0  # NULL on a live sender: nothing to wait for
    assert r.message == "replica eu-west-1/west1 is caught up (0 B / 0.0 s behind)"


def test_paused_replay_reports_bytes_seconds_and_the_pause() -> None:
    r = judge_replica("main", CLUSTER, NODE, primary(1000 + 412_000_000),
                      replica(receive_lsn=1000 + 412_000_000, unreplayed_bytes=412_000_000,
                              replay_ts=T0 - timedelta(seconds=38), pause_state="paused",
                              recheck=(100.0, 412_000_000, T0 - timedelta(seconds=38))))
    assert r.status == "fail"
    assert r.observed["lag_seconds"] == 38 and r.observed["lag_seconds_basis"] == "replay_timestamp"
    assert r.message == "replica eu-west-1/west1 is 412 MB / 38 s behind; replay paused"


def test_a_commit_caught_between_receipt_and_replay_is_not_lag() -> None:
    # First reading: a heartbeat-sized record received, not yet applied, after 3 idle hours.
    # Second reading a moment later: applied. The replica is not three hours behind.
    r = judge_replica("main", CLUSTER, NODE, primary(1100),
                      replica(receive_lsn=1100, unreplayed_bytes=100, recheck=(100.001, 0, T0)))
    assert r.status == "ok" and r.observed["lag_seconds"] == 0


def test_a_cut_link_with_equal_lsns_fails() -> None:
    r = judge_replica("main", CLUSTER, NODE, primary(5000, standbys=[]),
                      replica(receiver_status=None, receiver_age=None, receiver_pid=None))
    assert r.status == "fail"
    assert r.observed["connected"] is False and r.observed["unreplayed_bytes"] == 0
    assert "replication link down" in r.message and "no WAL receiver is running" in r.message
    assert r.observed["lag_seconds_basis"] == "upper_bound" and "up to" in r.message


def test_idle_link_silence_below_half_the_receiver_timeout_is_normal() -> None:
    quiet = judge_replica("main", CLUSTER, NODE, primary(1000), replica(receiver_age=30.5))
    assert quiet.status == "ok"  # 60 s wal_receiver_timeout: the receiver pings after 30 s of silence
    cut = judge_replica("main", CLUSTER, NODE, primary(1000), replica(receiver_age=45.0))
    assert cut.status == "fail" and "heard nothing from the primary for 45 s" in cut.message


def test_primary_replay_lag_left_over_after_catch_up_is_ignored() -> None:
    r = judge_replica("main", CLUSTER, NODE, primary(1000, standbys=[standby(replay_lag=31.0)]), replica())
    assert r.status == "ok" and r.observed["lag_seconds"] == 0


def test_unreachable_replica_falls_back_to_the_primarys_view() -> None:
    r = judge_replica("main", CLUSTER, NODE,
                      primary(9000, standbys=[standby(replay_bytes=8000, replay_lag=12.5, reply_age=0.5)]),
                      Probe(error="west1: did not answer within 3s"))
    assert r.status == "fail"
    assert r.observed["lag_bytes"] == 8000 and r.observed["lag_seconds"] == 12.5
    assert r.observed["lag_seconds_basis"] == "primary_replay_lag"
    assert "cannot reach the replica (west1: did not answer within 3s)" in r.message


def test_heartbeat_lag_is_the_age_of_the_oldest_unapplied_heartbeat() -> None:
    history = [T0 - timedelta(seconds=s) for s in (0, 15, 30, 45)]
    assert _heartbeat_lag(history, history[0], T0 + timedelta(seconds=1)) == (0.0, False)
    assert _heartbeat_lag(history, history[2], T0 + timedelta(seconds=1)) == (16.0, False)
    assert _heartbeat_lag(history, T0 - timedelta(hours=1), T0) == (45.0, True)


def test_lsn_and_figures_round_trip() -> None:
    assert parse_lsn("16/B374D848") == 0x16B374D848 and format_lsn(parse_lsn("16/B374D848")) == "16/B374D848"
    assert human_bytes(412_000_000) == "412 MB" and human_bytes(0) == "0 B" and human_bytes(1500) == "1.5 kB"
    assert human_seconds(38.2) == "38 s" and human_seconds(0.25) == "0.2 s" and human_seconds(600) == "10.0 min"
