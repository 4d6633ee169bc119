"""Regions that are apart: the replication link through the sandbox's delaying proxy (75 ms round
trip), an unplanned drill under a steady write load, and the RPO it really loses held to the
estimate its preflight took."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sre.drills.failover import DrillRequest, run_drill
from sre.local.procs import wait_until
from sre.sandbox.wan import Wan, WanSettings, attach_postgres
from tests.dr_support import configure, writes
from tests.drill_env import EnvFactory

pytestmark = pytest.mark.slow

# The canary's write interval; the load writes as fast as it can. The measured RPO is quantised
# to the interval (the span of lost writes). The round trip is longer than the sandbox's default
# 75 ms so that writes are always on the way when the primary dies, even on a busy machine whose
# threads stall for tens of milliseconds.
INTERVAL = 0.02
RTT = 0.2


def test_unplanned_drill_over_the_wan_loses_what_was_estimated(drill_env: EnvFactory) -> None:
    env = drill_env(objectives={"rto": "5m"})
    data_drills = {"nodes": {n.name: {"datadir": str(n.datadir), "start_options": " ".join(n.server_options()[2:]),
                                      "log_file": str(n.log_path)} for n in (env.east1, env.west1)},
                   "canary_interval": INTERVAL}
    cfg = configure(env, drills=data_drills)
    wan = Wan(WanSettings(rtt=RTT, drop_in_flight=True), env.root / "wan")
    try:
        attach_postgres(wan, env.east1.port, env.west1)  # returns once west1 streams through it
        with writes(env.east1, every=0.002):
            # The load is under way and crossing the WAN before the fault.
            wait_until(lambda: env.west1.sql("SELECT count(*) FROM dr_load")[0][0] >= 50, timeout=30,
                       what="the write load replayed on west1")
            rep = run_drill(cfg, env.store(), DrillRequest("us-east-1", "eu-west-1", mode="unplanned",
                                                           reason="wan", actor="test"))
    finally:
        wan.stop()
    sw = rep["switches"][0]
    cmp = rep["estimate_vs_measured"]
    print(f"WAN {RTT * 1000:.0f} ms: RPO estimated {cmp['estimated_rpo_seconds']} s, measured {sw['rpo_seconds']} s "
          f"({sw['rpo_rows']} rows)")
    assert rep["status"] == "passed", rep["message"]
    assert sw["rpo_rows"] > 0  # apart, an unplanned loss loses the writes still on the wire
    # The measured RPO is the span of lost acknowledged writes: quantised to the write interval at
    # both ends (the first lost write and the last one acknowledged), so two intervals of slack.
    assert abs(cmp["measured_rpo_seconds"] - cmp["estimated_rpo_seconds"]) <= 2 * INTERVAL, cmp


def test_sandbox_regions_are_apart(tmp_path: Path) -> None:
    """`sre up --wan`: both replication links and the application's path to the other region's
    database cross the WAN, and the sandbox config points the drill's record at that path."""
    import psycopg
    import redis

    from sre.sandbox import Stack
    from sre.sandbox.config import sandbox_config

    stack = Stack.start({"postgres", "redis", "moto"}, wan=WanSettings(rtt=0.1))
    try:
        assert stack.redis is not None and stack.wan is not None and stack.postgres is not None
        assert all(link.process is not None and link.process.alive() for link in stack.wan.links.values())
        primary = redis.Redis.from_url(stack.redis.primary_url)
        replica = redis.Redis.from_url(stack.redis.replica_url)
        primary.set("wan-probe", "1")
        t0 = time.monotonic()
        wait_until(lambda: replica.get("wan-probe") is not None, timeout=10, interval=0.005,
                   what="the write across the WAN")
        assert time.monotonic() - t0 >= 0.045  # one way of a 100 ms round trip, at least
        # The application (beside the primary) reaches west1 one round trip per query away.
        west1 = stack.postgres.replica
        target = sandbox_config(stack, tmp_path / "state")["dns"]["node_targets"][west1.name]
        port = int(target.rsplit(":", 1)[1])
        assert port == stack.wan.links["postgres-clients-west1"].port != west1.port
        with psycopg.connect(west1.dsn.replace(f"port={west1.port}", f"port={port}"), autocommit=True) as conn:
            t0 = time.monotonic()
            conn.execute("SELECT 1")
            assert time.monotonic() - t0 >= 0.095
        assert "postgres-replication-west1" in stack.wan.describe()
    finally:
        stack.stop()
