"""Replica lag and link checks for PostgreSQL streaming replicas and Redis replicas: the entry points.

One CheckResult per replica, with every figure in `observed` and a sentence a person can act on.
Every node of every cluster is asked at once, each within its own timeout, so a node that does
not answer costs its timeout and delays no other result. What each figure means, and why lag in
seconds is computed the way it is (an idle primary is not lag; equal LSNs on a cut link are not
"caught up"): docs/replication.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import Gauge

from sre.checks import replication_postgres, replication_redis
from sre.checks.bounded import Probe, Task, run_bounded
from sre.errors import UsageError
from sre.results import CheckResult, JobOutcome, worst

if TYPE_CHECKING:
    from sre.config import SreConfig
    from sre.results import JobContext

_LABELS = ["cluster", "replica", "region"]
LAG_SECONDS = Gauge("sre_replication_lag_seconds",
                    "Age of the oldest change the replica has not applied (absent when unknown).", _LABELS)
LAG_BYTES = Gauge("sre_replication_lag_bytes",
                  "Bytes of WAL (PostgreSQL) or replication stream (Redis) the replica has not applied.", _LABELS)
CONNECTED = Gauge("sre_replication_connected",
                  "1 while the replica streams from its primary over a live link, else 0.", _LABELS)
CHECK_SUCCESS = Gauge("sre_replication_check_success",
                      "1 when the last check could read both the primary and the replica, else 0.", _LABELS)

# ---------------------------------------------------------------- metrics, entry points


def export(results: list[CheckResult]) -> None:
    """Set the sre_replication_* gauges from results; a figure that is unknown removes its series."""
    for r in results:
        o = r.observed
        labels = (o.get("cluster", ""), o.get("replica", ""), o.get("region", ""))
        for gauge, value in ((LAG_SECONDS, o.get("lag_seconds")), (LAG_BYTES, o.get("lag_bytes"))):
            if value is None:
                try:
                    gauge.remove(*labels)
                except KeyError:
                    pass
            else:
                gauge.labels(*labels).set(value)
        CONNECTED.labels(*labels).set(1 if o.get("connected") else 0)
        measured = "primary_error" not in o and "replica_error" not in o
        CHECK_SUCCESS.labels(*labels).set(1 if measured else 0)


def _targets(cfg: SreConfig, name: str | None) -> tuple[list[str], list[str]]:
    pg = sorted(cfg.postgres.clusters)
    rd = sorted(cfg.redis.pairs)
    if name is None:
        return pg, rd
    if name not in cfg.postgres.clusters and name not in cfg.redis.pairs:
        known = ", ".join(pg + rd) or "none configured"
        raise UsageError(f"no PostgreSQL cluster or Redis pair named {name!r} (known: {known})")
    return [name] if name in cfg.postgres.clusters else [], [name] if name in cfg.redis.pairs else []


def _run(cfg: SreConfig, pg_names: list[str], redis_names: list[str]) -> list[CheckResult]:
    """Ask every node of the named clusters and pairs at once; judge, export, return in order."""
    tasks: list[Task[Any]] = []
    for n in pg_names:
        tasks.extend(replication_postgres.tasks(n, cfg.postgres.clusters[n]))
    for n in redis_names:
        tasks.extend(replication_redis.tasks(n, cfg.redis.pairs[n]))
    answers = run_bounded(tasks)

    def of(kind: str, name: str) -> dict[str, Probe]:
        return {k[2]: p for k, p in answers.items() if k[:2] == (kind, name)}

    results: list[CheckResult] = []
    for n in pg_names:
        results.extend(replication_postgres.judge_cluster(n, cfg.postgres.clusters[n], of("postgres", n)))
    for n in redis_names:
        results.extend(replication_redis.judge_pair(n, cfg.redis.pairs[n], of("redis", n)))
    export(results)
    return results


def check_all(cfg: SreConfig, cluster: str | None = None) -> list[CheckResult]:
    """Every replica of every PostgreSQL cluster and Redis pair (or only those named `cluster`),
    all nodes asked at once; results are exported as metrics and returned in config order."""
    return _run(cfg, *_targets(cfg, cluster))


def check_postgres(cfg: SreConfig, cluster_name: str) -> list[CheckResult]:
    """One CheckResult per replica of PostgreSQL cluster `cluster_name` (check "replication.postgres")."""
    if cluster_name not in cfg.postgres.clusters:
        raise UsageError(f"no PostgreSQL cluster named {cluster_name!r} "
                         f"(known: {', '.join(sorted(cfg.postgres.clusters)) or 'none configured'})")
    return _run(cfg, [cluster_name], [])


def check_redis(cfg: SreConfig, pair_name: str) -> list[CheckResult]:
    """One CheckResult per replica of Redis pair `pair_name` (check "replication.redis")."""
    if pair_name not in cfg.redis.pairs:
        raise UsageError(f"no Redis pair named {pair_name!r} "
                         f"(known: {', '.join(sorted(cfg.redis.pairs)) or 'none configured'})")
    return _run(cfg, [], [pair_name])


def outcome(results: list[CheckResult]) -> JobOutcome:
    counts = {s: sum(1 for r in results if r.status == s) for s in ("ok", "warn", "fail")}
    failing = [r.target for r in results if r.status == "fail"]
    return JobOutcome(status=worst([r.status for r in results]),
                      summary={"replicas": len(results), **counts, "failing": failing}, results=results)


def run_job(ctx: JobContext) -> JobOutcome:
    """The scheduled job "replicas.check": every replica, stored by `sre.jobs.run_job`."""
    return outcome(check_all(ctx.cfg))
