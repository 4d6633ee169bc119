"""A PostgreSQL pair of its own for each drill test (drills promote and rewind: never the session
sandbox's pair), a Route 53 zone of its own in the session's moto, and the sre.yaml describing it."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sre.adapters.dns import DnsRecord, Route53, record_for_target, route53_client, target_of
from sre.config import SreConfig, load_config
from sre.local.postgres import PgServer
from sre.sandbox import Stack
from sre.sandbox.postgres import PgPair
from sre.store import Store, open_store

EnvFactory = Callable[..., "DrillEnv"]


def _secret(directory: Path, name: str, value: str) -> dict[str, str]:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / name
    path.write_text(value + "\n")
    path.chmod(0o600)
    return {"file": str(path)}


@dataclass
class DrillEnv:
    root: Path
    pair: PgPair
    state_dir: Path
    config_path: Path
    zone: str
    record: str
    moto_url: str

    @property
    def east1(self) -> PgServer:
        return self.pair.primary

    @property
    def west1(self) -> PgServer:
        return self.pair.replica

    def config(self) -> SreConfig:
        return load_config(self.config_path)

    def store(self) -> Store:
        return open_store(self.config())

    def route53(self) -> Route53:
        cfg = self.config()
        return Route53(route53_client(cfg.aws), self.zone)

    def dns_target(self) -> str | None:
        rec = self.route53().get_record(self.record)
        return target_of(rec) if rec else None

    def target(self, node: PgServer) -> str:
        return f"127.0.0.1:{node.port}"

    def stop(self) -> None:
        try:
            self.pair.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start_drill_env(sandbox: Stack, *, objectives: dict[str, Any] | None = None,
                    kube_host: str | None = None, deployments: dict[str, dict[str, int]] | None = None,
                    health_urls: list[str] | None = None, environment: str = "staging",
                    grafana: tuple[str, str] | None = None,
                    extra: dict[str, Any] | None = None) -> DrillEnv:
    """`extra`: more configuration, merged one level deep (drills: {alerts: ...} adds to drills)."""
    assert sandbox.moto is not None
    root = Path(tempfile.mkdtemp(prefix="sre-drill-"))
    root.chmod(0o755)
    try:
        pair = PgPair.start(root / "pg")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    try:
        pair.wait_streaming()
        state = root / "state"
        sec = state / "secrets"
        tag = uuid.uuid4().hex[:8]
        zone, record = f"drill{tag}.sandbox.", f"db.drill{tag}.sandbox."
        p, r = pair.primary, pair.replica
        cfg: dict[str, Any] = {
            "environment": environment,
            "regions": ["us-east-1", "eu-west-1"],
            "state": {"dir": str(state)},
            "postgres": {"clusters": {"main": {
                "primary": {"name": p.name, "region": p.region, "dsn": _secret(sec, "east1", p.dsn)},
                "replicas": [{"name": r.name, "region": r.region, "dsn": _secret(sec, "west1", r.dsn)}],
                "objectives": {"rpo": "5m", "rto": "60s", **(objectives or {})},
            }}},
            "aws": {"region": "us-east-1", "endpoint_url": sandbox.moto.url,
                    "access_key_id": _secret(sec, "ak", "sandbox"), "secret_access_key": _secret(sec, "sk", "sandbox")},
            "dns": {"provider": "route53", "zone": zone, "records": {"db": record},
                    "node_targets": {n.name: f"127.0.0.1:{n.port}" for n in (p, r)}},
            "drills": {"nodes": {n.name: {"datadir": str(n.datadir), "start_options": " ".join(n.server_options()[2:]),
                                          "log_file": str(n.log_path)} for n in (p, r)},
                       "health_urls": health_urls or []},
        }
        if grafana:  # (url, token): drills annotate Grafana
            cfg["endpoints"] = {"grafana": {"url": grafana[0], "token": _secret(sec, "grafana", grafana[1])}}
        if kube_host:
            cfg["kubernetes"] = {"host": kube_host, "regions": {
                region: {"deployments": deps} for region, deps in (deployments or {}).items()}}
        for key, value in (extra or {}).items():
            cfg[key] = {**cfg[key], **value} if isinstance(cfg.get(key), dict) else value
        state.mkdir(parents=True, exist_ok=True)
        path = state / "sre.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        env = DrillEnv(root, pair, state, path, zone, record, sandbox.moto.url)
        r53 = env.route53()
        r53.ensure_zone()
        r53.upsert_record(record_for_target(record, env.target(p), 30))
        return env
    except BaseException:
        pair.stop()
        shutil.rmtree(root, ignore_errors=True)
        raise


def delete_zone(env: DrillEnv) -> None:
    """Remove the env's hosted zone (its records first): the next UPSERT fails for real."""
    r53 = env.route53()
    rec: DnsRecord | None = r53.get_record(env.record)
    if rec is not None:
        r53.delete_record(rec)
    r53.client.delete_hosted_zone(Id=r53.zone_id())


def writable(node: PgServer) -> bool:
    """A new session on `node` can write (a real INSERT, committed)."""
    rows = node.sql("SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only')")
    if rows[0] != (False, "off"):
        return False
    node.sql("CREATE TABLE IF NOT EXISTS drill_probe (at timestamptz DEFAULT now())")
    node.sql("INSERT INTO drill_probe DEFAULT VALUES")
    return True


def streaming(primary: PgServer, standby: PgServer) -> bool:
    return bool(primary.sql("SELECT 1 FROM pg_stat_replication WHERE application_name = %s AND state = 'streaming'",
                            [standby.name]))


def assert_topology(env: DrillEnv, primary: PgServer, standby: PgServer) -> None:
    """`primary` takes writes, `standby` streams from it and has them, the record leads to `primary`."""
    from sre.local.procs import wait_until

    assert primary.sql("SELECT pg_is_in_recovery()") == [(False,)]
    assert standby.sql("SELECT pg_is_in_recovery()") == [(True,)]
    assert writable(primary)
    wait_until(lambda: streaming(primary, standby), timeout=30, what=f"{standby.name} streaming from {primary.name}")
    marker = uuid.uuid4().hex
    primary.sql("CREATE TABLE IF NOT EXISTS drill_marker (v text)")
    primary.sql("INSERT INTO drill_marker VALUES (%s)", [marker])
    wait_until(lambda: standby.sql("SELECT 1 FROM drill_marker WHERE v = %s", [marker]), timeout=30,
               what=f"a new row replicated to {standby.name}")
    assert env.dns_target() == env.target(primary)
