"""The closed loop in the sandbox, for the tests that make alerts fire: the whole stack with its
exporters and simulator, the shipped rules at test-time timings (sre.sandbox.timing.SANDBOX),
`sre serve` acting for real (no dry run) on a copy of the runbooks at the same timings, scraped
with its metrics token and receiving Alertmanager's webhook; a fake Kubernetes API holding the
messaging Deployments the scale runbooks act on; an escalation receiver; a watcher that records
every alert Alertmanager holds; and the faults, each a context manager that undoes itself."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis
import yaml

from sre.adapters.prometheus import PrometheusClient
from sre.adapters.s3 import client as s3_client
from sre.checks.backups import take_backup
from sre.config import SreConfig, load_config
from sre.content import alerts_dir, runbooks_dir
from sre.local.procs import free_port, wait_until
from sre.provision.prometheus import RulesDirTarget, desired_files
from sre.provision.target import apply, plan
from sre.sandbox import Stack
from sre.sandbox.backups import ensure_buckets, seed_messaging
from sre.sandbox.config import write_sandbox_config
from sre.sandbox.exporters import Probe
from sre.sandbox.timing import SANDBOX, Timing, fast_rule_files, fast_runbooks
from tests.fakes.kube import FakeKube
from tests.receiver import WebhookReceiver
from tests.service import ServiceProcess, running_service

# The tight RPO: the backup taken at start is older than it within seconds, and one taken by the
# remediation is fresh long enough for its verification (a poll every 2 s) to see it.
BACKUP_MAX_AGE = "8s"
# The Redis snapshot taken at start is stale within seconds (RedisSnapshotStale).
SNAPSHOT_MAX_AGE = "6s"
# The cluster's RPO objective: a replica whose replay stops for a few seconds puts the DR estimate
# beyond it (DrEstimateBeyondObjective). Backup freshness has its own max_age above.
RPO = "3s"
# The messaging Deployments of the fake cluster (the scale runbooks' targets), and their size.
NAMESPACE = "messaging"
DEPLOYMENTS = ("api", "websocket-gateway")
REPLICAS = 3


def _token(cfg: SreConfig, role: str) -> str:
    return str(getattr(cfg.api.tokens, role)[0].resolve().get_secret_value())


class AlertWatch:
    """Polls Alertmanager's active alerts (silenced ones included) and remembers when each
    (alertname, labels) was first and last seen: an alert fixed within a second is still seen."""

    def __init__(self, alertmanager_url: str, interval: float = 0.1) -> None:
        self.url = f"{alertmanager_url}/api/v2/alerts"
        self.interval = interval
        self.first: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        self.last: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="alert-watch")

    def start(self) -> AlertWatch:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, ValueError):
                with urllib.request.urlopen(self.url, timeout=2) as resp:
                    alerts = json.loads(resp.read())
                now = time.time()
                for a in alerts:
                    key = (a["labels"].get("alertname", ""), frozenset(a["labels"].items()))
                    self.first.setdefault(key, now)
                    self.last[key] = now
            self._stop.wait(self.interval)

    def seen(self, alertname: str, since: float = 0.0, **labels: str) -> float | None:
        """When an alert `alertname` with these labels was first seen (after `since`), or None."""
        times = [t for (name, lbls), t in self.first.items()
                 if name == alertname and self.last[(name, lbls)] >= since
                 and all((k, v) in lbls for k, v in labels.items())]
        return min(times) if times else None

    def active(self, alertname: str, within: float = 1.5, **labels: str) -> bool:
        now = time.time()
        return any(name == alertname and now - self.last[(name, lbls)] < within
                   and all((k, v) in lbls for k, v in labels.items()) for (name, lbls) in self.last)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


@dataclass
class Loop:
    stack: Stack
    cfg_path: Path
    cfg: SreConfig
    service: ServiceProcess
    watch: AlertWatch
    kube: FakeKube
    escalations: WebhookReceiver
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def prom(self) -> PrometheusClient:
        assert self.stack.prometheus is not None
        return PrometheusClient(self.stack.prometheus.url)

    def query(self, expr: str) -> list[dict[str, Any]]:
        with self.prom as prom:
            return prom.query(expr)

    def api(self, path: str) -> Any:
        req = urllib.request.Request(f"{self.service.url}{path}",
                                     headers={"Authorization": f"Bearer {_token(self.cfg, 'read')}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())

    def firing_in_prometheus(self, alertname: str, **labels: str) -> list[dict[str, Any]]:
        sel = ",".join([f'alertname="{alertname}"', *(f'{k}="{v}"' for k, v in labels.items())])
        return self.query(f"ALERTS{{{sel}}}")


def load_rules(stack: Stack, cfg: SreConfig, timing: Timing) -> int:
    """The shipped rules at `timing`, applied to the sandbox Prometheus and confirmed loaded."""
    assert stack.prometheus is not None
    files = fast_rule_files(desired_files(alerts_dir(cfg), cfg.alerts.runbook_base_url), timing)
    with RulesDirTarget(files, stack.prometheus.rules_dir, PrometheusClient(stack.prometheus.url),
                        prune=True) as target:
        result = apply(target, plan(target))
    return int(result.notes["confirmed_groups"])


def loop_config(stack: Stack, state: Path, timing: Timing, *, kube_url: str, escalation_url: str,
                faults: bool = True) -> Path:
    """The sandbox's sre.yaml for the loop: remediation for real on runbooks at `timing` (Kubernetes
    actions against `kube_url`, escalations to `escalation_url`), the replica check every second,
    backup freshness every second against a tight max_age, DR readiness every two seconds.

    With `faults` (the fault tests; the benchmark goes without, so the service does only what the
    loop it measures needs), also: the breaker opening at the first failure, a Redis snapshot set,
    a tight RPO objective, and the ELK reconcile job against an Elasticsearch nothing answers for."""
    path = write_sandbox_config(stack, state)
    data = yaml.safe_load(path.read_text())
    data["remediation"] = {**data.get("remediation", {}), "dry_run": False,
                           "runbooks_dir": str(fast_runbooks(runbooks_dir(load_config(path)), state / "runbooks",
                                                             timing)),
                           "escalation_webhook": escalation_url}
    data["kubernetes"] = {"host": kube_url}
    data["jobs"] = {"replicas.check": {"every": "1s"}, "backups.freshness": {"every": "1s"},
                    "dr.readiness": {"every": "2s"}}
    data["backups"]["main"]["max_age"] = BACKUP_MAX_AGE
    if faults:
        data["remediation"]["breaker"] = {"max_failures": 1, "max_actions": 100, "window": "10m"}
        data["endpoints"]["elasticsearch"] = {"url": f"http://127.0.0.1:{free_port()}", "timeout": "2s"}
        data["jobs"]["elk.reconcile"] = {"every": "5s"}
        data["backups"]["cache"] = {"format": "redis-rdb", "redis": "cache",
                                    "bucket": data["backups"]["main"]["bucket"], "prefix": "redis/cache/",
                                    "max_age": SNAPSHOT_MAX_AGE}
        data["postgres"]["clusters"]["main"]["objectives"]["rpo"] = RPO
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def messaging_cluster(kube: FakeKube) -> None:
    """The messaging namespace with the API and the gateway Deployments, REPLICAS each."""
    kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    for name in DEPLOYMENTS:
        kube.put({"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": name}},
                  "spec": {"replicas": REPLICAS, "selector": {"matchLabels": {"app": name}},
                           "template": {"metadata": {"labels": {"app": name}},
                                        "spec": {"containers": [{"name": name, "image": f"{name}:1"}]}}}})


@contextlib.contextmanager
def closed_loop(root: Path, timing: Timing = SANDBOX, *, faults: bool = True) -> Iterator[Loop]:
    """The loop (module docstring); `faults`: the fault tests' settings too (loop_config)."""
    t0 = time.monotonic()
    stack = Stack.start()
    watch: AlertWatch | None = None
    kube: FakeKube | None = None
    escalations: WebhookReceiver | None = None
    try:
        kube = FakeKube().start()
        escalations = WebhookReceiver()
        assert stack.prometheus and stack.alertmanager and stack.postgres
        timings = {"stack": time.monotonic() - t0}
        messaging_cluster(kube)
        cfg_path = loop_config(stack, root / "state", timing, kube_url=kube.url, escalation_url=escalations.url,
                               faults=faults)
        cfg = load_config(cfg_path)
        ensure_buckets(cfg)
        seed_messaging(stack.postgres.primary.dsn, users=20, conversations=5, messages=50)
        for name in cfg.backups:
            take_backup(cfg, name)
        load_rules(stack, cfg, timing)
        timings["prepared"] = time.monotonic() - t0
        with running_service(cfg_path, port=free_port()) as service:
            stack.prometheus.set_authorized_scrape("sre", [f"127.0.0.1:{service.port}"],
                                                   Path(str(cfg.api.tokens.metrics[0].file)))
            assert cfg.webhook and cfg.webhook.token
            stack.alertmanager.set_webhook(f"{service.url}/webhook/alertmanager", cfg.webhook.token.file)
            watch = AlertWatch(stack.alertmanager.url).start()
            loop = Loop(stack, cfg_path, cfg, service, watch, kube, escalations, timings)
            wait_until(lambda: loop.query('sre_replication_connected{job="sre"}'), timeout=30, interval=0.2,
                       what="the service's replica check scraped")
            timings["ready"] = time.monotonic() - t0
            yield loop
    finally:
        if watch is not None:
            watch.stop()
        if escalations is not None:
            escalations.close()
        if kube is not None:
            kube.stop()
        stack.stop()


# ---------------------------------------------------------------- faults (each undoes itself)


@contextlib.contextmanager
def idle_in_transaction(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """A session that opens a transaction and then sends nothing."""
    conn = psycopg.connect(dsn, application_name="forgetful-client")
    conn.execute("SELECT 1")  # BEGIN implicitly: psycopg is not in autocommit
    try:
        yield conn
    finally:
        with contextlib.suppress(psycopg.Error):
            conn.close()


@contextlib.contextmanager
def long_running_query(dsn: str, seconds: int = 120) -> Iterator[dict[str, Any]]:
    """A statement that runs for minutes; what became of it is in the yielded dict afterwards."""
    outcome: dict[str, Any] = {}
    conn = psycopg.connect(dsn, autocommit=True, application_name="slow-report")
    pid = conn.info.backend_pid

    def run() -> None:
        try:
            conn.execute(f"SELECT pg_sleep({seconds})")
            outcome["finished"] = True
        except psycopg.Error as exc:
            outcome["error"] = exc.__class__.__name__
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield outcome
    finally:
        if thread.is_alive():
            with psycopg.connect(dsn, autocommit=True) as other:
                other.execute("SELECT pg_cancel_backend(%s)", [pid])
        thread.join(10)
        conn.close()


@contextlib.contextmanager
def leaked_pool(dsn: str, count: int) -> Iterator[list[psycopg.Connection[Any]]]:
    """A pool that leaks: `count` connections, each left idle inside a transaction."""
    conns = [psycopg.connect(dsn, application_name="pool-leak") for _ in range(count)]
    for c in conns:
        c.execute("SELECT 1")
    try:
        yield conns
    finally:
        for c in conns:
            with contextlib.suppress(psycopg.Error):
                c.close()


@contextlib.contextmanager
def replica_cut_and_behind(stack: Stack) -> Iterator[None]:
    """Replay paused on the PostgreSQL replica, WAL written and received, then its link cut: the
    primary refuses replication connections (pg_hba) and its WAL sender is terminated. The
    replica is behind and not streaming. (Changing the replica's primary_conninfo would not do:
    its startup process, paused, does not restart the receiver.)"""
    assert stack.postgres is not None
    primary, replica = stack.postgres.primary, stack.postgres.replica
    replica.sql("SELECT pg_wal_replay_pause()")
    primary.sql("CREATE TABLE IF NOT EXISTS fault_filler (id serial, pad text)")
    primary.sql("INSERT INTO fault_filler (pad) SELECT repeat('x', 1000) FROM generate_series(1, 200)")
    target = primary.sql("SELECT pg_current_wal_lsn()::text")[0][0]
    wait_until(lambda: replica.sql("SELECT pg_last_wal_receive_lsn() >= %s::pg_lsn", [target])[0][0],
               timeout=10, what="the replica receiving the new WAL")
    hba = primary.datadir / "pg_hba.conf"
    original = hba.read_text()
    hba.write_text("host replication all 127.0.0.1/32 reject\n" + original)  # the first matching line wins
    primary.sql("SELECT pg_reload_conf()")
    primary.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_replication")
    try:
        yield
    finally:
        hba.write_text(original)
        with contextlib.suppress(psycopg.Error):
            primary.sql("SELECT pg_reload_conf()")
            replica.sql("SELECT pg_wal_replay_resume()")


@contextlib.contextmanager
def redis_link_cut(stack: Stack) -> Iterator[None]:
    assert stack.redis is not None
    replica = redis.Redis.from_url(stack.redis.replica_url)
    replica.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))
    try:
        yield
    finally:
        replica.execute_command("REPLICAOF", "127.0.0.1", str(stack.redis.primary_port))
        replica.close()


@contextlib.contextmanager
def redis_full(stack: Stack) -> Iterator[None]:
    """maxmemory just above what the primary uses, then writes past it: near max, and evicting."""
    assert stack.redis is not None
    primary = redis.Redis.from_url(stack.redis.primary_url)
    used = int(primary.info("memory")["used_memory"])
    primary.config_set("maxmemory", str(used + 1024 * 1024))
    try:
        pipe = primary.pipeline(transaction=False)
        for i in range(3000):
            pipe.set(f"fault:{i}", "x" * 1024)
        # Writes past the limit evict older keys; some may be refused outright (OOM) when what
        # is left to evict is not enough: both are what a full cache does.
        pipe.execute(raise_on_error=False)
        assert int(primary.info("stats")["evicted_keys"]) > 0
        yield
    finally:
        primary.config_set("maxmemory", "256mb")
        primary.close()


@contextlib.contextmanager
def failing_probe(stack: Stack) -> Iterator[str]:
    """blackbox_exporter probing a port nothing listens on."""
    assert stack.exporters is not None and stack.prometheus is not None
    before = list(stack.exporters.probes)
    target = f"http://127.0.0.1:{free_port()}/healthz"
    stack.exporters.set_probes(stack.prometheus, [*before, Probe(target)])
    try:
        yield target
    finally:
        stack.exporters.set_probes(stack.prometheus, before)


@contextlib.contextmanager
def app_trouble(stack: Stack) -> Iterator[None]:
    """Through the simulator: 40% of API requests fail, 20% are rate-limited (429), 20% refused
    as unauthenticated (401), every request takes 3 s, the event loop
    lags 1 s; the gateway delivers in 3 s, drops sockets server-side, and loses 70% of them. Rates
    go up tenfold so that the fault dominates the history the long burn windows see."""
    assert stack.appsim is not None
    before = stack.appsim.control()
    stack.appsim.control({
        "api": {"request_rate": 300, "status_ratios": {"500": 0.4, "429": 0.2, "401": 0.2}, "latency_seconds": 3,
                "event_loop_lag_p99_seconds": 1},
        "gateway": {"delivery_rate": 500, "delivery_latency_seconds": 3, "churn_rate": 200, "connections": 300},
        "tls": {"cert_days": 5},
    })
    try:
        yield
    finally:
        stack.appsim.control(before)


def unauthorised_webhook_posts(service_url: str, count: int = 5) -> None:
    """Deliveries with a wrong token: refused with 401 and counted."""
    for _ in range(count):
        req = urllib.request.Request(f"{service_url}/webhook/alertmanager", data=b"{}", method="POST",
                                     headers={"Authorization": "Bearer not-the-token",
                                              "Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=5).close()
        except urllib.error.HTTPError as exc:
            assert exc.code == 401, exc.code


@contextlib.contextmanager
def app_slow(stack: Stack) -> Iterator[None]:
    """Through the simulator: the API's event loop lags 1 s, the gateway delivers in 3 s (the
    symptoms the scale runbooks act on)."""
    assert stack.appsim is not None
    before = stack.appsim.control()
    stack.appsim.control({"api": {"event_loop_lag_p99_seconds": 1}, "gateway": {"delivery_latency_seconds": 3}})
    try:
        yield
    finally:
        stack.appsim.control(before)


@contextlib.contextmanager
def replay_paused(stack: Stack) -> Iterator[None]:
    """The PostgreSQL replica's replay paused, a commit on the primary behind it, the link up: the
    data a loss of the primary takes grows with every second."""
    assert stack.postgres is not None
    primary, replica = stack.postgres.primary, stack.postgres.replica
    replica.sql("SELECT pg_wal_replay_pause()")
    primary.sql("CREATE TABLE IF NOT EXISTS fault_filler (id serial, pad text)")
    primary.sql("INSERT INTO fault_filler (pad) VALUES ('behind')")
    try:
        yield
    finally:
        with contextlib.suppress(psycopg.Error):
            replica.sql("SELECT pg_wal_replay_resume()")


@contextlib.contextmanager
def failing_rule(stack: Stack) -> Iterator[str]:
    """A rule group, beside the shipped ones, whose rule fails at every evaluation (a many-to-many
    match: `on()` puts every `up` series in one group). Yields its `rule_group` label (file;group)."""
    assert stack.prometheus is not None
    name = "fault-broken-join"
    path = stack.prometheus.rules_dir / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": name, "rules": [
        {"record": "fault:up_joined", "expr": "up * on() group_left() up"}]}]}))
    stack.prometheus.reload()
    try:
        yield f"{path};{name}"
    finally:
        path.unlink(missing_ok=True)
        stack.prometheus.reload()


@contextlib.contextmanager
def dead_alertmanager(stack: Stack) -> Iterator[str]:
    """Prometheus sends its alerts to a second Alertmanager that is not there (connection refused)
    besides the real one. Yields the dead one's address."""
    assert stack.prometheus is not None and stack.alertmanager is not None
    dead = f"127.0.0.1:{free_port()}"
    stack.prometheus.set_alertmanagers([stack.alertmanager.url, dead])
    try:
        yield dead
    finally:
        stack.prometheus.set_alertmanagers(None)


@contextlib.contextmanager
def versioning_suspended(cfg: SreConfig, bucket: str) -> Iterator[None]:
    """Someone suspends versioning on the backup bucket: a deleted or overwritten backup is gone for good."""
    s3 = s3_client(cfg.aws)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    try:
        yield
    finally:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
