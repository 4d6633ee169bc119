"""DR readiness per region pair: gather the facts once, judge every pair, export the metrics.

Used by `sre dr status`, the `dr.readiness` job and a drill's preflight (sre.dr.drill_estimate).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Gauge

from sre.dr.estimate import READY_VALUE, PairReadiness, assess, compare_estimates, pair_drills
from sre.dr.gather import gather
from sre.errors import UsageError
from sre.results import CheckResult, JobOutcome, worst

if TYPE_CHECKING:
    from sre.config import SreConfig
    from sre.results import JobContext
    from sre.store import Store

READY = Gauge("sre_dr_ready", "DR readiness of a region pair: 1 ready, 0.5 degraded, 0 not ready.", ["from", "to"])
EST_RPO = Gauge("sre_dr_estimated_rpo_seconds", "Data a loss of the source region would lose now, per cluster.",
                ["from", "to", "cluster"])
EST_RPO_BYTES = Gauge("sre_dr_estimated_rpo_bytes", "Bytes not yet replayed on the target's replica, per cluster.",
                      ["from", "to", "cluster"])
EST_RTO = Gauge("sre_dr_estimated_rto_seconds", "Estimated time to serve writes from the target region again.",
                ["from", "to"])
RPO_OBJECTIVE = Gauge("sre_dr_rpo_objective_seconds", "The RPO objective of a cluster (objectives.rpo).",
                      ["from", "to", "cluster"])
RTO_OBJECTIVE = Gauge("sre_dr_rto_objective_seconds", "The tightest RTO objective of the clusters at risk.",
                      ["from", "to"])
REASONS = Gauge("sre_dr_reasons", "Reasons a region pair is not ready, by what they are about and severity.",
                ["from", "to", "what", "severity"])

CHECK = "dr.readiness"
STATUS = {"ready": "ok", "degraded": "warn", "not_ready": "fail"}


def pairs(cfg: SreConfig, src: str | None = None, dst: str | None = None) -> list[tuple[str, str]]:
    """The region pairs to judge: the one asked for, else every ordered pair whose source holds a primary."""
    for name, region in (("--from", src), ("--to", dst)):
        if region is not None and region not in cfg.regions:
            raise UsageError(f"{name}: unknown region {region!r} (regions: {', '.join(cfg.regions)})")
    if src is not None and src == dst:
        raise UsageError("--from and --to name the same region")
    sources = {c.primary.region for c in cfg.postgres.clusters.values()} | {
        p.primary.region for p in cfg.redis.pairs.values()}
    out = []
    for a in cfg.regions:
        for b in cfg.regions:
            if a == b or (src is not None and a != src) or (dst is not None and b != dst):
                continue
            if src is None and a not in sources:
                continue
            out.append((a, b))
    return out


def status(cfg: SreConfig, store: Store, src: str | None = None, dst: str | None = None, *,
           live: bool = False) -> list[PairReadiness]:
    """Judge every asked pair from one gathering of facts."""
    wanted = pairs(cfg, src, dst)
    if not wanted:
        raise UsageError("no region holds a primary: nothing to judge",
                         hint="configure postgres.clusters (or redis.pairs), or name --from and --to")
    facts = gather(cfg, store, {b for _, b in wanted}, live=live)
    out = []
    for a, b in wanted:
        pr = assess(cfg, facts, a, b)
        pr.last_estimates = compare_estimates(pair_drills(facts, a, b))
        out.append(pr)
    return out


def export(results: list[PairReadiness]) -> None:
    for pr in results:
        labels = (pr.from_region, pr.to_region)
        READY.labels(*labels).set(READY_VALUE[pr.verdict])
        for what in ("replication", "backups", "drills", "kubernetes", "dns", "buckets", "objectives"):
            for severity in ("degraded", "not_ready"):
                REASONS.labels(*labels, what, severity).set(
                    sum(1 for r in pr.reasons if r.what == what and r.severity == severity))
        for rpo in pr.rpo:
            if rpo.seconds is not None:
                EST_RPO.labels(*labels, rpo.cluster).set(rpo.seconds)
            else:
                _remove(EST_RPO, *labels, rpo.cluster)
            if rpo.bytes is not None:
                EST_RPO_BYTES.labels(*labels, rpo.cluster).set(rpo.bytes)
            if rpo.objective_seconds is not None:
                RPO_OBJECTIVE.labels(*labels, rpo.cluster).set(rpo.objective_seconds)
        if pr.rto.seconds is not None:
            EST_RTO.labels(*labels).set(pr.rto.seconds)
        else:
            _remove(EST_RTO, *labels)
        if pr.rto.objective_seconds is not None:
            RTO_OBJECTIVE.labels(*labels).set(pr.rto.objective_seconds)


def _remove(gauge: Gauge, *labels: str) -> None:
    """No estimate is no series: an invented 0 would read as a perfect RTO."""
    try:
        gauge.remove(*labels)
    except KeyError:
        pass


def as_result(pr: PairReadiness) -> CheckResult:
    msg = pr.verdict if not pr.reasons else pr.verdict + ": " + "; ".join(r.message for r in pr.reasons)
    return CheckResult(CHECK, pr.pair, STATUS[pr.verdict], pr.to_dict(), msg)  # type: ignore[arg-type]


def run_job(ctx: JobContext) -> JobOutcome:
    """Every minute: every pair judged, stored as a `dr.readiness` result per pair, exported as metrics."""
    if not pairs(ctx.cfg):
        return JobOutcome("ok", {"pairs": 0, "note": "no region holds a primary: nothing to judge"})
    results = status(ctx.cfg, ctx.store)
    export(results)
    checks = [as_result(pr) for pr in results]
    return JobOutcome(worst([c.status for c in checks]),
                      {pr.pair: pr.verdict for pr in results}, checks)
