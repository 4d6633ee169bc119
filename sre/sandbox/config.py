"""The sre.yaml that describes a running sandbox, with its secrets written to files."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sre.files import write_private
from sre.sandbox.patroni import PatroniPair
from sre.sandbox.wan import client_link

if TYPE_CHECKING:
    from sre.sandbox.stack import Stack

API_ROLES = ("read", "metrics", "operate")
SANDBOX_ZONE = "messaging.sandbox."
DB_RECORD = "db.messaging.sandbox."


# What `sre alerts lint --live` and `sre dashboards validate --live` cannot find in the sandbox,
# and why (alerts.live_absent). Everything else the rules and dashboards read must have series.
SANDBOX_ABSENT: dict[str, str] = {
    r"kube_.*": "no Kubernetes API server in the sandbox: kube-state-metrics does not run",
    r"container_.*": "no kubelet in the sandbox: cAdvisor does not run",
    r"pg_replication_is_replica(\{.*\})?": "postgres_exporter 0.11 (Debian) does not publish it; "
                                           "PostgresPrimaryDown reads pg_settings_in_hot_standby too",
    r"nginx_ingress_controller_.*": "no ingress controller in the sandbox: the simulated API is scraped directly",
    r"sre_drill_.*": "published from the first failover drill the service runs",
    r"sre_dr_estimated_rto_seconds.*": "estimated from passed failover drills; none has run here",
    r"sre_remediations_total.*": "counted from the first automated remediation",
    r"sre_backup_restore_duration_seconds.*": "set by the daily backups.verify job's restore test",
    r'sre_backup_verify_success\{.*check="backup\.pitr".*\}': "set by the daily backups.verify job's PITR restore",
    r"sre_backup_pitr_.*": "set by the daily backups.verify job's PITR restore",
    r"sre_backup_wal_gap.*": "set by the daily backups.verify job's WAL continuity check",
    r'sre_backup_(last_success_timestamp|max_age)_seconds\{.*format="redis-rdb".*\}':
        "no Redis snapshot set in the sandbox's backups",
    r'sre_job_runs_total\{.*status="error".*\}': "counted from the first job run that errors",
    r'sre_job_last_success_timestamp_seconds\{.*exported_job="backups\.(freshness|verify)".*\}':
        "the backup jobs run on their daily schedule (sre up verifies the backup through the CLI)",
}


def _secret_file(directory: Path, name: str, value: str) -> dict[str, str]:
    return {"file": str(write_private(directory / name, value + "\n"))}


def sandbox_config(stack: Stack, state_dir: Path, *, webhook_token: str | None = None,
                   kubeconfig: Path | None = None) -> dict[str, Any]:
    """A complete config for `stack`: every secret (DSNs, token, AWS keys) in a 0600 file.

    Remediation runs in dry-run unless a kubeconfig is given: the sandbox has no Kubernetes."""
    sec = state_dir / "secrets"
    token = webhook_token or secrets.token_urlsafe(32)
    cfg: dict[str, Any] = {
        "environment": "dev",
        "regions": ["us-east-1", "eu-west-1"],
        "state": {"dir": str(state_dir)},
        "webhook": {"auth": "bearer", "token": _secret_file(sec, "webhook-token", token)},
        # One token per role, beside the webhook's (docs/operations.md#security); the pages of
        # the API's schema are on here, never in production.
        "api": {"docs": True, "tokens": {role: [_secret_file(sec, f"{role}-token", secrets.token_urlsafe(32))]
                                         for role in API_ROLES}},
        "endpoints": {},
        "remediation": {"dry_run": kubeconfig is None},
        "jobs": {},
        # The sandbox Prometheus evaluates rules every second: the DR detection term follows it.
        "dr": {"evaluation_interval": "1s"},
    }
    if kubeconfig is not None:
        cfg["kubernetes"] = {"kubeconfig": str(kubeconfig)}
    if stack.prometheus:
        cfg["endpoints"]["prometheus"] = {"url": stack.prometheus.url}
        cfg["alerts"] = {"rules_dir": str(stack.prometheus.rules_dir), "live_absent": SANDBOX_ABSENT}
    if stack.alertmanager:
        cfg["endpoints"]["alertmanager"] = {"url": stack.alertmanager.url}
    if stack.postgres:
        p, r = stack.postgres.primary, stack.postgres.replica
        cfg["postgres"] = {"clusters": {"main": {
            "database": "postgres",
            "primary": {"name": p.name, "region": p.region, "dsn": _secret_file(sec, f"pg-{p.name}-dsn", p.dsn)},
            "replicas": [{"name": r.name, "region": r.region,
                          "dsn": _secret_file(sec, f"pg-{r.name}-dsn", r.dsn)}],
            "objectives": {"rpo": "5m", "rto": "60s", "lag_warn": "5s", "lag_fail": "30s"},
        }}}
        if isinstance(stack.postgres, PatroniPair):
            cfg["drills"] = {"ha": patroni_ha(stack.postgres, sec)}
        else:
            # The drill restarts and rewinds these servers itself (pg_ctl, pg_rewind): how each one runs.
            cfg["drills"] = {"nodes": {n.name: {"datadir": str(n.datadir),
                                                "start_options": " ".join(n.server_options()[2:]),
                                                "log_file": str(n.log_path)} for n in (p, r)}}
    if stack.redis:
        cfg["redis"] = {"pairs": {"cache": {
            "primary": {"name": "primary", "region": "us-east-1",
                        "url": _secret_file(sec, "redis-primary-url", stack.redis.primary_url)},
            "replicas": [{"name": "replica", "region": "eu-west-1",
                          "url": _secret_file(sec, "redis-replica-url", stack.redis.replica_url)}],
        }}}
    if stack.moto:
        cfg["aws"] = {"region": "us-east-1", "endpoint_url": stack.moto.url,
                      "access_key_id": _secret_file(sec, "aws-access-key-id", "sandbox"),
                      "secret_access_key": _secret_file(sec, "aws-secret-access-key", "sandbox")}
        cfg["buckets"] = {"media": {"name": "messaging-media-use1", "replica_bucket": "messaging-media-euw1"}}
        cfg["dns"] = {"provider": "route53", "zone": SANDBOX_ZONE, "records": {"db": DB_RECORD}}
        if stack.postgres:
            cfg["dns"]["node_targets"] = {n.name: f"127.0.0.1:{n.port}"
                                          for n in (stack.postgres.primary, stack.postgres.replica)}
            if stack.wan is not None:
                # The application beside the primary reaches the other region across the WAN.
                for name in list(cfg["dns"]["node_targets"]):
                    link = stack.wan.links.get(client_link(name))
                    if link is not None:
                        cfg["dns"]["node_targets"][name] = f"127.0.0.1:{link.port}"
            cfg["backups"] = {"main": {"cluster": "main", "bucket": "messaging-backups-use1",
                                       "prefix": "postgres/main/", "replica_bucket": "messaging-backups-euw1",
                                       # The messaging schema `sre up` seeds (sre.sandbox.backups).
                                       "tables": ["messaging.users", "messaging.conversations",
                                                  "messaging.messages"],
                                       "sanity": [{"name": "users present",
                                                   "sql": "SELECT count(*) FROM messaging.users"}],
                                       "canary": "SELECT 1 FROM messaging.messages WHERE id = 0",
                                       # Only `sre up` takes a backup here: a day, not the 5m RPO.
                                       "max_age": "1d"}}
            if stack.pgbackrest:
                # The primary's WAL archive (pgBackRest, S3 on moto), restored to a point in time.
                # Target 2 minutes back: the archive lags up to archive_timeout (60 s) behind.
                cfg["backups"]["main-pitr"] = {"cluster": "main", **stack.pgbackrest.site.backup_set(),
                                               "max_age": "1d", "pitr": {"target": "latest-minus 2m"}}
    return cfg


def patroni_ha(pair: PatroniPair, sec: Path) -> dict[str, Any]:
    """drills.ha for the sandbox's Patroni pair: its REST API, and each node's fault and restore as
    commands, as production configures ssh or systemctl ones."""
    def ctl(action: str, node_dir: Path) -> list[str]:
        return [sys.executable, "-m", "sre.sandbox.patroni", action, str(node_dir)]

    return {"backend": "patroni", "patroni": {
        "username": pair.auth[0], "password": _secret_file(sec, "patroni-rest-password", pair.auth[1]),
        "members": {n.name: {"url": n.url, "fault": ctl("kill", n.dir), "restore": ctl("start", n.dir)}
                    for n in pair.nodes}}}


def write_sandbox_config(stack: Stack, state_dir: Path, **kwargs: Any) -> Path:
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = state_dir / "sre.yaml"
    path.write_text("# Written by `sre up` for the local sandbox; secrets live in ./secrets.\n"
                    + yaml.safe_dump(sandbox_config(stack, state_dir, **kwargs), sort_keys=False))
    return path
