"""Drills through real Patroni 3.0 and etcd 3.4: the sandbox of `sre up --ha patroni` with short HA
timings (ttl 10 s, loop_wait 2 s, retry_timeout 3 s), one pair for the module, each test leaving
east1 the leader and west1 its streaming replica."""

from __future__ import annotations

import os
import signal
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from sre.adapters.dns import Route53, record_for_target, route53_client
from sre.config import SreConfig, load_config
from sre.drills.failover import DrillRequest, FailoverDrill, run_drill
from sre.local.procs import wait_until
from sre.sandbox import Stack
from sre.sandbox.config import sandbox_config
from sre.sandbox.patroni import FAST, PatroniPair
from sre.store import open_store

pytestmark = pytest.mark.slow


@dataclass
class Ha:
    stack: Stack
    path: Path

    @property
    def pair(self) -> PatroniPair:
        assert isinstance(self.stack.postgres, PatroniPair)
        return self.stack.postgres

    def config(self, **objectives: Any) -> SreConfig:
        cfg = load_config(self.path)
        for k, v in objectives.items():
            setattr(cfg.postgres.clusters["main"].objectives, k, v)
        return cfg

    def cluster(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.pair.nodes[1].url}/cluster", timeout=2).json())

    def roles(self) -> dict[str, tuple[str, str]]:
        return {m["name"]: (m["role"], m["state"]) for m in self.cluster()["members"]}

    def patch_config(self, body: dict[str, Any]) -> None:
        r = httpx.patch(f"{self.pair.nodes[0].url}/config", json=body, auth=self.pair.auth, timeout=5)
        assert r.status_code == 200, r.text

    def settle(self) -> None:
        """east1 leads, west1 streams from it (what every test starts from and leaves)."""
        wait_until(lambda: self.roles() == {"east1": ("leader", "running"), "west1": ("replica", "running")},
                   timeout=60, what="east1 leading, west1 its running replica")
        self.pair.wait_streaming(timeout=30)


@pytest.fixture(scope="module")
def ha() -> Iterator[Ha]:
    stack = Stack.start({"postgres", "moto"}, ha="patroni", ha_timings=FAST)
    state = Path(tempfile.mkdtemp(prefix="sre-ha-state-"))
    try:
        cfg = sandbox_config(stack, state)
        cfg["environment"] = "staging"
        cfg.pop("backups", None)  # no backup is taken here: the preflight would refuse a stale set
        cfg["dns"]["zone"] = f"ha{uuid.uuid4().hex[:6]}.sandbox."
        cfg["dns"]["records"] = {"db": "db." + cfg["dns"]["zone"]}
        path = state / "sre.yaml"
        path.write_text(yaml.safe_dump(cfg))
        env = Ha(stack, path)
        loaded = env.config()
        r53 = Route53(route53_client(loaded.aws), loaded.dns.zone)  # type: ignore[union-attr]
        r53.ensure_zone()
        r53.wait_insync(r53.upsert_record(record_for_target(loaded.dns.records["db"],  # type: ignore[union-attr]
                                                            f"127.0.0.1:{env.pair.primary.port}", 30)))
        yield env
    finally:
        stack.stop()
        import shutil

        shutil.rmtree(state, ignore_errors=True)


def drill(env: Ha, cfg: SreConfig | None = None, **kwargs: Any) -> dict[str, Any]:
    cfg = cfg or env.config()
    return run_drill(cfg, open_store(cfg), DrillRequest("us-east-1", "eu-west-1", actor="test", **kwargs))


def test_planned_switchover_through_the_rest_api_and_back(ha: Ha) -> None:
    ha.settle()
    rep = drill(ha, failback=True)

    assert rep["status"] == "passed", rep["message"]
    assert rep["backend"] == "patroni" and rep["split_brain"]["verdict"] == "pass"
    runs = [e["step"] for e in rep["timeline"] if e["kind"] == "run"]
    assert runs.index("switchover") < runs.index("dns") < runs.index("rejoin") < runs.index("failback.switchover")
    assert not {"fence", "catchup", "promote"} & set(runs)  # Patroni switched, not the drill
    for sw in rep["switches"]:
        assert sw["rpo_rows"] == 0 and 0 < sw["rto_seconds"] < 10
    # Both nodes accepted the probe's direct writes, one after the other, never together.
    windows = rep["split_brain"]["windows"]
    assert {w["node"] for w in windows} == {"east1", "west1"} and not rep["split_brain"]["overlaps"]
    ha.settle()


def test_maintenance_mode_is_cleared_after_sigint(ha: Ha) -> None:
    ha.settle()
    seen: dict[str, Any] = {}

    def interrupt(d: FailoverDrill) -> None:
        seen["pause"] = ha.cluster().get("pause")
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, between steps

    rep = drill(ha, mode="unplanned", hooks={"after:hold": interrupt})

    assert seen["pause"] is True
    assert rep["interrupted"] and rep["status"] == "aborted"
    assert "hold" in rep["undo"]["undone"]
    assert "pause" not in ha.cluster()
    assert ha.roles()["east1"][0] == "leader"  # nothing was lost: the fault step never ran


def test_observed_drill_measures_the_ha_layer_and_recommends_settings(ha: Ha) -> None:
    ha.settle()
    # An RTO objective Patroni cannot meet with ttl 10 s: the report must say what to change.
    cfg = ha.config(rto=8.0)
    rep = drill(ha, cfg, mode="unplanned", kind="observed", failback=True)

    fo = rep["switches"][0]
    timeline = {e["step"]: e for e in rep["timeline"] if e["kind"] == "run"}
    assert timeline["lose"]["status"] == "ok" and timeline["recover"]["status"] == "ok", rep["message"]
    # Patroni replaced the killed leader once its key expired: a gap close to ttl, nothing lost.
    assert 10 - 2 <= fo["rto_seconds"] <= 10 + 2 + 3, fo
    assert fo["rpo_rows"] == 0
    parts = fo["detection_seconds"] + fo["promotion_seconds"] + fo["path_back_seconds"]
    assert abs(parts - fo["rto_seconds"]) < 0.01 and fo["detection_seconds"] > fo["promotion_seconds"]
    assert rep["split_brain"]["verdict"] == "pass"
    # Failed on the RTO alone, with a recommendation that fits within it.
    assert rep["status"] == "failed"
    assert [v["objective"] for v in rep["verdicts"] if not v["pass"]] == ["RTO"]
    [rec] = rep["recommendations"]
    assert rec["dominant"] == "ttl" and rec["current"]["ttl"] == 10
    new = rec["suggested"]
    assert new["ttl"] + new["loop_wait"] + rec["other_seconds"] <= 8.0
    assert new["loop_wait"] + 2 * new["retry_timeout"] <= new["ttl"]
    # Patroni rejoined the killed node and the failback restored the topology.
    assert [e["status"] for e in rep["timeline"] if e["step"] in ("rejoin", "failback.rejoin")] == ["ok", "ok"]
    ha.settle()


def test_split_brain_probe_catches_a_second_primary(ha: Ha) -> None:
    ha.settle()

    def promote_behind_patronis_back(d: FailoverDrill) -> None:
        ha.patch_config({"pause": True})
        ha.pair.node("west1").pg.sql("SELECT pg_promote(wait => true)")
        assert d.probe is not None
        wait_until(d.probe.split_brain, timeout=10, what="the probe to see two primaries")

    try:
        rep = drill(ha, hooks={"after:canary": promote_behind_patronis_back})
        assert rep["status"] == "failed"
        assert "split-brain" in rep["message"]
        [overlap] = rep["split_brain"]["overlaps"]
        assert overlap["nodes"] == ["east1", "west1"] and overlap["seconds"] > 0
        assert {"objective": "split-brain", "pass": False}.items() <= next(
            v for v in rep["verdicts"] if v["objective"] == "split-brain").items()
        assert "split-brain" in Path(rep["files"]["markdown"]).read_text()
    finally:
        # Patroni, resumed, demotes and rewinds the node that holds no leader key.
        ha.patch_config({"pause": False})
        ha.settle()
