"""Redis replica checks against real servers: the sandbox's pair when healthy, a private pair
for the cases that break it."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from sre.checks.replication import check_all, check_redis
from sre.checks.replication_verdict import CHECK_REDIS
from sre.config import SreConfig
from sre.errors import UnreachableError
from sre.local.procs import free_port, wait_until
from sre.results import CheckResult
from sre.sandbox import Stack
from sre.sandbox.redis import RedisPair
from tests.integration.replication_support import check_until, config, frozen, private_redis_pair, redis_pair_entry

pytestmark = pytest.mark.slow

PAIR = "private"


@pytest.fixture(scope="module")
def pair() -> Iterator[RedisPair]:
    with private_redis_pair() as p:
        yield p


def cfg_for(pair: RedisPair, tmp_path: Path, **extra: Any) -> SreConfig:
    return config(pairs={PAIR: redis_pair_entry(tmp_path / "secrets", pair, **extra)})


def one(cfg: SreConfig, name: str = PAIR) -> CheckResult:
    [result] = check_redis(cfg, name)
    return result


def asleep(port: int) -> bool:
    from sre.adapters.redis import call

    try:
        call(f"redis://127.0.0.1:{port}/0", lambda c: c.ping(), timeout=0.2)
    except UnreachableError as exc:
        return "did not answer" in str(exc)
    return False


@pytest.fixture
def healthy(pair: RedisPair, tmp_path: Path) -> RedisPair:
    replica = redis.Redis(port=pair.replica_port)
    replica.replicaof("127.0.0.1", pair.primary_port)
    cfg = cfg_for(pair, tmp_path)
    check_until(lambda: one(cfg), lambda r: r.status == "ok" and r.observed["lag_bytes"] == 0, timeout=15,
               what="redis replica in sync")
    return pair


def test_caught_up_redis_replica_is_ok(sandbox: Stack, sandbox_config: SreConfig) -> None:
    result = check_until(lambda: one(sandbox_config, "cache"), lambda r: r.status == "ok", timeout=15,
                        what="sandbox redis replica in sync")
    o = result.observed
    assert result.check == CHECK_REDIS and result.target == "cache/replica"
    assert o["lag_bytes"] == 0 and o["link_status"] == "up" and o["connected"] is True
    assert o["lag_seconds"] is None  # Redis has no lag in seconds; none is invented
    assert "caught up" in result.message


def test_redis_link_down_fails(healthy: RedisPair, tmp_path: Path) -> None:
    pair = healthy
    cfg = cfg_for(pair, tmp_path)
    replica = redis.Redis(port=pair.replica_port)
    try:
        replica.replicaof("127.0.0.1", free_port())
        result = check_until(lambda: one(cfg), lambda r: r.status == "fail", timeout=10, what="link down seen")
        assert result.observed["link_status"] == "down" and result.observed["connected"] is False
        assert "replication link down" in result.message and "master_link_status is down" in result.message
    finally:
        replica.replicaof("127.0.0.1", pair.primary_port)
    wait_until(lambda: one(cfg).status == "ok", timeout=15, what="link back")


def test_byte_lag_under_a_write_burst_while_the_replica_sleeps(healthy: RedisPair, tmp_path: Path) -> None:
    pair = healthy
    cfg = cfg_for(pair, tmp_path, lag_warn_bytes="16KiB", lag_fail_bytes="64KiB", connect_timeout="1s")
    primary = redis.Redis(port=pair.primary_port)
    sleeper = socket.create_connection(("127.0.0.1", pair.replica_port))
    try:
        sleeper.sendall(b"DEBUG SLEEP 5\r\n")  # the replica's only thread sleeps: it reads and acks nothing
        wait_until(lambda: asleep(pair.replica_port), timeout=2, interval=0.01, what="replica asleep")
        before = primary.info("replication")["master_repl_offset"]
        primary.eval("for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'burst:' .. i, ARGV[2]) end", 0,
                     300, "x" * 1000)
        burst = primary.info("replication")["master_repl_offset"] - before
        t0 = time.monotonic()
        result = one(cfg)
        elapsed = time.monotonic() - t0
        o = result.observed
        assert elapsed < 2 * 1 + 0.6, elapsed
        assert result.status == "fail"
        assert o["lag_bytes_basis"] == "primary_ack" and o["lag_bytes"] >= burst >= 300_000
        assert "did not answer within 1s" in o["replica_error"]
        assert " behind" in result.message
        sleeper.settimeout(10)
        assert sleeper.recv(16).startswith(b"+OK")  # the sleep ended
    finally:
        sleeper.close()
    cleared = check_until(lambda: one(cfg), lambda r: r.status == "ok", timeout=15, what="replica caught up")
    assert cleared.observed["lag_bytes"] == 0


def test_a_stopped_redis_replica_does_not_delay_other_checks(sandbox: Stack, sandbox_config: SreConfig,
                                                             healthy: RedisPair, tmp_path: Path) -> None:
    pair = healthy
    secrets = tmp_path / "secrets"
    sandbox_pairs = sandbox_config.redis.pairs
    cfg = config(pairs={"cache": sandbox_pairs["cache"].model_dump(mode="json"),
                        PAIR: redis_pair_entry(secrets, pair, connect_timeout="1s")})
    assert pair.replica is not None and pair.replica.pid is not None
    with frozen([pair.replica.pid]):
        t0 = time.monotonic()
        results = {r.target: r for r in check_all(cfg)}
        elapsed = time.monotonic() - t0
    assert elapsed < 2 * 1 + 1, elapsed
    assert results["cache/replica"].status == "ok"
    assert results[f"{PAIR}/replica"].status == "fail"
    assert "did not answer within 1s" in results[f"{PAIR}/replica"].observed["replica_error"]
    wait_until(lambda: one(cfg_for(pair, tmp_path)).status == "ok", timeout=15, what="replica answering again")
