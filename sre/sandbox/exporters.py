"""The exporters the alert rules are written against, run as real processes beside the sandbox's
servers (Debian's prometheus-*-exporter packages): postgres_exporter per PostgreSQL node,
redis_exporter per Redis node, one node_exporter and one blackbox_exporter. Each listens on a
free loopback port, is stopped by PID, and is scraped by the sandbox Prometheus under the job
name and labels the rules expect (alerts/README.md)."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sre.local.procs import ManagedProcess, free_port, require_binary

if TYPE_CHECKING:
    from sre.sandbox.postgres import PgPair
    from sre.sandbox.prometheus import Prometheus
    from sre.sandbox.redis import RedisPair

# The cluster names sandbox_config() gives the PostgreSQL pair and the Redis pair.
PG_CLUSTER = "main"
REDIS_CLUSTER = "cache"

# blackbox_exporter modules. The sandbox's TLS endpoints carry self-signed certificates, so the
# https module skips verification: what the rules read from it is the certificate's expiry.
BLACKBOX_CONFIG: dict[str, Any] = {"modules": {
    "http_2xx": {"prober": "http", "timeout": "2s"},
    "https_expiry": {"prober": "http", "timeout": "2s",
                     "http": {"fail_if_not_ssl": True, "tls_config": {"insecure_skip_verify": True}}},
    "tcp_connect": {"prober": "tcp", "timeout": "2s"},
}}


def _metrics_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return bool(resp.status == 200)


@dataclass
class Exporter:
    """One exporter process: the job it is scraped as and the labels its target carries."""

    name: str
    job: str
    port: int
    cmd: list[str]
    labels: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] | None = None
    process: ManagedProcess | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self, root: Path) -> None:
        self.process = ManagedProcess(name=self.name, cmd=self.cmd, log_path=root / f"{self.name}.log",
                                      env=self.env).start()

    def wait_ready(self) -> None:
        assert self.process is not None
        # blackbox_exporter serves its own metrics on /metrics too.
        self.process.wait_ready(lambda: _metrics_ok(f"{self.url}/metrics"), timeout=20)

    def stop(self) -> None:
        if self.process:
            self.process.stop()


@dataclass
class Probe:
    """One blackbox_exporter probe: the `instance` label of its series is the probed target."""

    target: str
    module: str = "http_2xx"


@dataclass
class Exporters:
    root: Path
    items: list[Exporter]
    probes: list[Probe] = field(default_factory=list)

    @classmethod
    def start(cls, root: Path, *, postgres: PgPair | None, redis: RedisPair | None) -> Exporters:
        root.mkdir(parents=True, exist_ok=True)
        items: list[Exporter] = []
        if postgres is not None:
            exe = require_binary("postgres_exporter", "prometheus-postgres-exporter")
            for node in (postgres.primary, postgres.replica):
                port = free_port()
                items.append(Exporter(
                    f"postgres_exporter-{node.name}", "postgres", port,
                    [exe, f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                    {"cluster": PG_CLUSTER, "node": node.name},
                    env={"DATA_SOURCE_NAME": f"postgresql://postgres@127.0.0.1:{node.port}/postgres?sslmode=disable"}))
        if redis is not None:
            exe = require_binary("redis_exporter", "prometheus-redis-exporter")
            for role, url in (("primary", redis.primary_url), ("replica", redis.replica_url)):
                port = free_port()
                items.append(Exporter(
                    f"redis_exporter-{role}", "redis", port,
                    [exe, "-redis.addr", url.rsplit("/", 1)[0], "-web.listen-address", f"127.0.0.1:{port}"],
                    {"cluster": REDIS_CLUSTER, "node": role}))
        exe = require_binary("node_exporter", "prometheus-node-exporter")
        port = free_port()
        items.append(Exporter("node_exporter", "node", port,
                              [exe, f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]))
        exe = require_binary("blackbox_exporter", "prometheus-blackbox-exporter")
        port = free_port()
        config = root / "blackbox.yml"
        config.write_text(yaml.safe_dump(BLACKBOX_CONFIG, sort_keys=False))
        items.append(Exporter("blackbox_exporter", "blackbox", port,
                              [exe, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
                               "--log.level=warn"]))
        exporters = cls(root, items)
        try:
            for item in items:  # all started first: they get ready in parallel
                item.start(root)
            for item in items:
                item.wait_ready()
        except BaseException:
            exporters.stop()
            raise
        return exporters

    def by_job(self, job: str) -> list[Exporter]:
        return [e for e in self.items if e.job == job]

    @property
    def blackbox(self) -> Exporter:
        return self.by_job("blackbox")[0]

    def register(self, prometheus: Prometheus, *, slow_postgres: bool = True) -> None:
        """Scrape every exporter under its job (file_sd: no reload), and the current probes.

        postgres_exporter answers in about 1 s when its server is down and serves requests one
        at a time: at a 1 s interval scrapes queue up and time out, and pg_up 0 is never stored.
        So it is scraped every 3 s, unless `slow_postgres` is off (a benchmark that keeps its
        servers up and wants every interval at 1 s)."""
        for job in sorted({e.job for e in self.items} - {"blackbox"}):
            groups = [{"targets": [e.address], "labels": {"job": job, **e.labels}} for e in self.by_job(job)]
            slow = slow_postgres and job == "postgres"
            prometheus.set_target_groups(job, groups, slow=slow)
            (prometheus.targets_dir if slow else prometheus.slow_targets_dir).joinpath(f"{job}.json").unlink(
                missing_ok=True)
        self.set_probes(prometheus, self.probes)

    def set_probes(self, prometheus: Prometheus, probes: list[Probe]) -> None:
        """Probe `probes` through blackbox_exporter, scraped as job="blackbox" (the multi-target
        pattern: the exporter's address is scraped with ?target=&module=, `instance` is the target)."""
        self.probes = list(probes)
        groups = [{"targets": [self.blackbox.address],
                   "labels": {"job": "blackbox", "instance": p.target, "__metrics_path__": "/probe",
                              "__param_target": p.target, "__param_module": p.module}} for p in self.probes]
        prometheus.set_target_groups("blackbox", groups)

    def components(self) -> list[dict[str, Any]]:
        return [{"component": e.name.replace("-", " "), "url": e.url, "pid": e.process.pid if e.process else None,
                 "log": str(e.process.log_path) if e.process else ""} for e in self.items]

    def stop(self) -> None:
        for item in reversed(self.items):
            item.stop()

