"""Gathering the facts readiness is judged from, as cheaply as the answer allows.

Check results younger than their job's interval are reused from the store (the service runs
`replicas.check` every 15 s and `backups.freshness` hourly), so `sre dr status` costs one store
read plus the calls nothing stores: the DNS record and the target's deployment sizes. Without a
fresh stored round, the replication check runs live (every node at once, each within its deadline).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from sre.adapters import dns
from sre.adapters.dns_provider import provider as dns_provider
from sre.adapters.kube_scale import get_replicas
from sre.checks.bucket_posture import posture
from sre.checks.humanize import human_seconds
from sre.checks.replication import check_all
from sre.config import parse_duration
from sre.content import alerts_dir
from sre.dr.facts import DnsFact, DrillFact, Facts, RecoveryPoint
from sre.errors import SreError
from sre.jobs import effective_jobs
from sre.results import CheckResult
from sre.rules import yamlio
from sre.store.drills import DrillReport
from sre.store.runs import CheckRow, Run

if TYPE_CHECKING:
    from sre.config import SreConfig
    from sre.store import Store

REPLICATION_JOB = "replicas.check"
READINESS_JOB = "dr.readiness"
POSTURE_JOB = "backups.freshness"
DRILLS_READ = 30  # newest finished drills considered (all pairs)
# Observed keys of a backup check result that name a point in time it proved restorable
# (PITR results), checked in this order.
POINT_KEYS = ("recovered_point", "recovery_point")
VERIFIED_BY = {"backup.restore": "backup verified by restore", "backup.integrity": "backup verified by checksum"}


def _interval(cfg: SreConfig, job: str) -> float | None:
    spec = effective_jobs(cfg).get(job)
    return spec[1].every if spec is not None else None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _row_result(row: CheckRow) -> CheckResult:
    return CheckResult(row.check, row.target, row.status, dict(row.observed or {}), row.message,  # type: ignore[arg-type]
                       row.at)


def stored_round(store: Store, job: str, max_age: float | None, now: datetime,
                 checks: tuple[str, ...]) -> tuple[list[CheckResult], Run] | None:
    """The results of the newest finished run of `job`, if it finished less than `max_age` ago."""
    if max_age is None:
        return None
    with store.session() as s:
        run = s.scalars(select(Run).where(Run.kind == job, Run.finished.is_not(None),
                                          Run.status.in_(("ok", "warn", "fail")))
                        .order_by(Run.finished.desc()).limit(1)).first()
        if run is None or run.finished is None or (now - run.finished).total_seconds() > max_age:
            return None
        rows = s.scalars(select(CheckRow).where(CheckRow.run_id == run.id, CheckRow.check.in_(checks))).all()
        s.expunge(run)
        return [_row_result(r) for r in rows], run


def replication(cfg: SreConfig, store: Store, now: datetime, live: bool) -> tuple[list[CheckResult], str]:
    fresh = None if live else stored_round(store, REPLICATION_JOB, _interval(cfg, REPLICATION_JOB), now,
                                           ("replication.postgres", "replication.redis"))
    if fresh is not None and fresh[0]:
        results, run = fresh
        assert run.finished is not None
        return results, f"stored run {run.id} ({human_seconds((now - run.finished).total_seconds())} old)"
    if not cfg.postgres.clusters and not cfg.redis.pairs:
        return [], "nothing configured"
    return check_all(cfg), "live"


def recovery_points(cfg: SreConfig, store: Store) -> list[RecoveryPoint]:
    """Per backup set, the newest point a stored check proved restorable.

    A dump or base backup counts once a `backup.restore` (or `backup.integrity`) result of the same
    run passed; its time is the freshness result's `taken_at` in that run. A PITR result counts by
    its own recovered point.
    """
    if not cfg.backups:
        return []
    with store.session() as s:
        rows = s.scalars(select(CheckRow).where(CheckRow.target.in_(list(cfg.backups)), CheckRow.status == "ok",
                                                CheckRow.check.like("backup.%"))
                         .order_by(CheckRow.at.desc()).limit(500)).all()
        found = [(r.run_id, r.check, r.target, dict(r.observed or {})) for r in rows]
    taken: dict[tuple[int | None, str], datetime] = {}
    for run_id, check, target, observed in found:
        at = _parse_time(observed.get("taken_at")) if check == "backup.freshness" else None
        if at is not None:
            taken.setdefault((run_id, target), at)
    best: dict[str, RecoveryPoint] = {}
    for run_id, check, target, observed in found:
        point = next((p for k in POINT_KEYS if (p := _parse_time(observed.get(k))) is not None), None)
        basis = "PITR point"
        if point is None and check in VERIFIED_BY:
            point, basis = taken.get((run_id, target)), VERIFIED_BY[check]
        if point is None:
            continue
        current = best.get(target)
        if current is None or point > current.at or (point == current.at and check == "backup.restore"):
            best[target] = RecoveryPoint(target, cfg.backups[target].cluster, point, basis, check)
    return list(best.values())


def drills(store: Store) -> list[DrillFact]:
    with store.session() as s:
        rows = s.scalars(select(DrillReport).where(DrillReport.kind == "failover", DrillReport.finished.is_not(None),
                                                   DrillReport.status != "running")
                         .order_by(DrillReport.id.desc()).limit(DRILLS_READ)).all()
        out = []
        for r in rows:
            rep = r.report or {}
            switches = rep.get("switches") or [{}]
            assert r.finished is not None
            rpo = switches[0].get("rpo_seconds")
            detected = switches[0].get("detection_seconds")
            out.append(DrillFact(r.id, r.from_region, r.to_region, r.status, r.finished, r.rto_seconds,
                                 switches[0].get("dns_insync_seconds"), rep.get("estimate"),
                                 float(rpo) if rpo is not None else None, r.mode,
                                 float(detected) if detected is not None else None))
        return out


def dns_record(cfg: SreConfig) -> DnsFact | None:
    if cfg.dns is None:
        return None
    name = cfg.dns.records.get(cfg.drills.record)
    if name is None:
        return DnsFact(None, error=f"drills.record {cfg.drills.record!r} is not a key of dns.records")
    try:
        rec = dns_provider(cfg).get_record(name)
    except SreError as exc:
        return DnsFact(name, error=str(exc))
    if rec is None:
        return DnsFact(name)
    return DnsFact(name, list(rec.values), dns.target_of(rec), rec.ttl, rec.proxied)


def deployments(cfg: SreConfig, regions: set[str]) -> dict[str, dict[str, int | str]]:
    out: dict[str, dict[str, int | str]] = {}
    for region in sorted(regions):
        kr = cfg.kubernetes.regions.get(region)
        for ref in (kr.deployments if kr else {}):
            try:
                out.setdefault(region, {})[ref] = get_replicas(cfg, region, ref)
            except Exception as exc:  # one unreadable deployment is a reason, not a crash
                out.setdefault(region, {})[ref] = f"{exc.__class__.__name__}: {exc}"
    return out


def buckets(cfg: SreConfig, store: Store, now: datetime, live: bool) -> list[CheckResult]:
    if not cfg.buckets and not any(b.replica_bucket for b in cfg.backups.values()):
        return []
    interval = _interval(cfg, POSTURE_JOB)
    fresh = None if live else stored_round(store, POSTURE_JOB, 2 * interval if interval else None, now,
                                           ("bucket.replication",))
    if fresh is not None and fresh[0]:
        return fresh[0]
    try:
        return [r for r in posture(cfg) if r.check == "bucket.replication"]
    except SreError as exc:
        return [CheckResult("bucket.replication", "all", "fail", {}, str(exc))]


def detection(cfg: SreConfig, history: list[DrillFact] | None = None) -> tuple[float, str]:
    """How long a lost primary goes undetected: as the HA layer's last observed drill measured it
    (the HA layer, not an alert, replaces the primary), else the longest `for:` of the detection
    alerts plus one evaluation interval."""
    measured = next((d for d in history or [] if d.detection_seconds is not None), None)
    if measured is not None and measured.detection_seconds is not None:
        return measured.detection_seconds, (f"the HA layer's detection as measured by observed drill {measured.id} "
                                            f"({human_seconds(measured.detection_seconds)})")
    wanted = set(cfg.dr.detection_alerts)
    found: dict[str, float] = {}
    root = alerts_dir(cfg)
    for path in sorted(root.glob("*.y*ml")):
        try:
            data = yamlio.load(path.read_text()) or {}
        except Exception:
            continue
        for group in data.get("groups") or []:
            for rule in group.get("rules") or []:
                if rule.get("alert") in wanted:
                    found[rule["alert"]] = parse_duration(rule.get("for") or 0)
    interval = cfg.dr.evaluation_interval
    if not found:
        return interval, f"none of {sorted(wanted)} found in {root}: one evaluation interval"
    name, hold = max(found.items(), key=lambda kv: kv[1])
    return hold + interval, (f"{name} for: {human_seconds(hold)} + evaluation interval "
                             f"{human_seconds(interval)}")


def stored_outside(cfg: SreConfig, store: Store, now: datetime, targets: set[str]) -> dict[str, Any] | None:
    """The DNS record and deployment sizes the last `dr.readiness` run read, if younger than its interval."""
    fresh = stored_round(store, READINESS_JOB, _interval(cfg, READINESS_JOB), now, (READINESS_JOB,))
    if fresh is None or not fresh[0]:
        return None
    inputs = fresh[0][0].observed.get("inputs") or {}
    seen = inputs.get("deployments")
    needed = {r for r in targets if (kr := cfg.kubernetes.regions.get(r)) is not None and kr.deployments}
    if "dns" not in inputs or not isinstance(seen, dict) or not needed <= set(seen):
        return None
    dns_fact = DnsFact(**inputs["dns"]) if inputs["dns"] else None
    return {"dns": dns_fact, "deployments": seen, "basis": f"stored run {fresh[1].id}"}


def gather(cfg: SreConfig, store: Store, targets: set[str], *, live: bool = False,
           now: datetime | None = None) -> Facts:
    """Every fact readiness needs; the outside calls run at once."""
    now = now or datetime.now(UTC)
    calls: dict[str, Callable[[], Any]] = {
        "replication": lambda: replication(cfg, store, now, live),
        "buckets": lambda: buckets(cfg, store, now, live),
    }
    outside = None if live else stored_outside(cfg, store, now, targets)
    if outside is None:
        calls["dns"] = lambda: dns_record(cfg)
        calls["deployments"] = lambda: deployments(cfg, targets)
    timings: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            t0 = time.monotonic()
            try:
                return fn()
            finally:
                timings[name] = round(time.monotonic() - t0, 3)
        return run

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = {k: pool.submit(timed(k, fn)) for k, fn in calls.items()}
        points = timed("backups", lambda: recovery_points(cfg, store))()
        history = timed("drills", lambda: drills(store))()
        seconds, basis = timed("detection", lambda: detection(cfg, history))()
        got = {k: f.result() for k, f in futures.items()}
    if outside is not None:
        got.update(dns=outside["dns"], deployments=outside["deployments"])
    results, rep_basis = got["replication"]
    return Facts(now=now, replication=results, replication_basis=rep_basis, recovery_points=points,
                 drills=history, dns=got["dns"], deployments=got["deployments"], buckets=got["buckets"],
                 detection_seconds=seconds, detection_basis=basis, timings=timings)
