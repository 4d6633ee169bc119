"""The sandbox of `sre up --ha patroni` (etcd, two Patroni-managed nodes) with moto's Route 53 and
an sre.yaml whose drills go through the patroni backend: for the Patroni drill tests and the
bench. Short HA timings (ttl 10 s, loop_wait 2 s, retry_timeout 3 s) unless told otherwise."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from sre.adapters.dns import Route53, record_for_target, route53_client
from sre.config import SreConfig, load_config
from sre.local.procs import wait_until
from sre.sandbox import Stack
from sre.sandbox.config import sandbox_config
from sre.sandbox.patroni import FAST, HaTimings, PatroniPair


@dataclass
class HaEnv:
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

    def rebuild(self, name: str, leader: str = "east1", attempts: int = 3) -> None:
        """Rebuild `name` from the leader until it streams: a reinitialize Patroni accepts while it is
        still demoting the node can leave the old data in place (the node then waits for WAL
        "ahead of the upstream server's flush position" for ever)."""
        for attempt in range(attempts):
            self.reinitialize(name)
            try:
                self.settle(leader, timeout=45)
                return
            except AssertionError:
                if attempt == attempts - 1:
                    raise

    def reinitialize(self, name: str) -> None:
        """Patroni rebuilds `name` from the leader (`POST /reinitialize`), once it is no longer leading."""
        url = f"{self.pair.node(name).url}/reinitialize"
        answers: list[str] = []

        def accepted() -> bool:
            r = httpx.post(url, json={"force": True}, auth=self.pair.auth, timeout=10)
            answers.append(f"{r.status_code} {r.text.strip()}")
            return r.status_code == 200

        try:
            wait_until(accepted, timeout=60, interval=1.0, what=f"Patroni to accept reinitializing {name}")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}; Patroni answered {answers[-3:]}; cluster {self.cluster()}") from None

    def settle(self, leader: str = "east1", timeout: float = 90.0) -> None:
        """`leader` leads, the other node is its running replica and streams from it."""
        other = next(n.name for n in self.pair.nodes if n.name != leader)
        try:
            wait_until(lambda: self.roles() == {leader: ("leader", "running"), other: ("replica", "running")},
                       timeout=timeout, what=f"{leader} leading, {other} its running replica")
            # A node Patroni demoted and rewound may take a few HA loops more to stream.
            self.pair.wait_streaming(timeout=timeout)
        except TimeoutError as exc:
            logs = {n.name: n.pg.log_path.read_text()[-1500:] for n in self.pair.nodes}
            raise AssertionError(f"{exc}; cluster {self.cluster()}; logs {logs}") from None

    def multi_host_dsn(self) -> str:
        """What an application without DNS uses: every node, the writable one chosen at connect."""
        p, r = self.pair.primary, self.pair.replica
        return (f"host=127.0.0.1,127.0.0.1 port={p.port},{r.port} user=postgres dbname=postgres "
                "target_session_attrs=read-write connect_timeout=2")

    def stop(self) -> None:
        try:
            self.stack.stop()
        finally:
            shutil.rmtree(self.path.parent, ignore_errors=True)


def start_ha_env(timings: HaTimings = FAST) -> HaEnv:
    stack = Stack.start({"postgres", "moto"}, ha="patroni", ha_timings=timings)
    state = Path(tempfile.mkdtemp(prefix="sre-ha-state-"))
    env = HaEnv(stack, state / "sre.yaml")
    try:
        cfg = sandbox_config(stack, state)
        cfg["environment"] = "staging"
        cfg.pop("backups", None)  # no backup is taken here: the preflight would refuse a stale set
        cfg["dns"]["zone"] = f"ha{uuid.uuid4().hex[:6]}.sandbox."
        cfg["dns"]["records"] = {"db": "db." + cfg["dns"]["zone"]}
        env.path.write_text(yaml.safe_dump(cfg))
        loaded = env.config()
        assert loaded.dns is not None
        r53 = Route53(route53_client(loaded.aws), loaded.dns.zone)
        r53.ensure_zone()
        r53.wait_insync(r53.upsert_record(record_for_target(loaded.dns.records["db"],
                                                            f"127.0.0.1:{env.pair.primary.port}", 30)))
    except BaseException:
        env.stop()
        raise
    return env
