"""The verdict and the two estimates for one region pair, from `Facts` alone (no I/O).

RPO (per cluster, if the source region were lost now): what the target's replica has not
replayed, from the replication check; when that replica is unusable, the age of the newest
verified backup or PITR point. RTO: the median write gap of the pair's last passed drills (their
DNS wait taken out), plus what a drill does not include and a real loss will: the record's TTL,
the provider's propagation time, scaling the target's deployments, detecting the loss.
Every reason carries its severity and the fix; no figure is invented where nothing was measured.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from statistics import median
from typing import TYPE_CHECKING, Any, Literal

from sre.adapters.dns import normalize_target
from sre.checks.humanize import human_bytes, human_seconds
from sre.dr.facts import DrillFact, Facts, RecoveryPoint

if TYPE_CHECKING:
    from sre.config import PostgresCluster, SreConfig

Verdict = Literal["ready", "degraded", "not_ready"]
Severity = Literal["degraded", "not_ready"]
READY_VALUE = {"ready": 1.0, "degraded": 0.5, "not_ready": 0.0}
FAILED_DRILL = ("failed", "aborted")


@dataclass
class Reason:
    severity: Severity
    what: str  # replication | backups | drills | kubernetes | dns | buckets | objectives
    message: str
    fix: str

    def to_dict(self) -> dict[str, str]:
        return {"severity": self.severity, "what": self.what, "message": self.message, "fix": self.fix}


@dataclass
class ClusterRpo:
    cluster: str
    kind: str  # postgres | redis
    seconds: float | None
    bytes: int | None
    basis: str  # replica | backup | nothing_at_risk | unknown
    detail: str
    objective_seconds: float | None = None
    link: str | None = None  # up | down, for a replica basis

    @property
    def beyond_objective(self) -> bool:
        return self.seconds is not None and self.objective_seconds is not None and self.seconds > self.objective_seconds

    def to_dict(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "kind": self.kind, "seconds": self.seconds, "bytes": self.bytes,
                "basis": self.basis, "detail": self.detail, "objective_seconds": self.objective_seconds,
                "link": self.link, "beyond_objective": self.beyond_objective}


@dataclass
class RtoEstimate:
    seconds: float | None  # None: no passed drill to measure from
    terms: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    drills: list[int] = field(default_factory=list)  # the drills the write-gap term is the median of
    objective_seconds: float | None = None

    @property
    def drill_comparable(self) -> float | None:
        """The part a drill measures itself: the write gap and the DNS propagation inside it."""
        gap = self.terms.get("write_gap")
        return None if gap is None else round(gap + (self.terms.get("dns_propagation") or 0.0), 4)

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "terms": self.terms, "drill_comparable_seconds": self.drill_comparable,
                "notes": self.notes, "from_drills": self.drills, "objective_seconds": self.objective_seconds,
                "beyond_objective": (self.seconds is not None and self.objective_seconds is not None
                                     and self.seconds > self.objective_seconds)}


@dataclass
class PairReadiness:
    from_region: str
    to_region: str
    verdict: Verdict
    reasons: list[Reason]
    rpo: list[ClusterRpo]
    rto: RtoEstimate
    at: str
    inputs: dict[str, Any] = field(default_factory=dict)
    last_estimates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pair(self) -> str:
        return f"{self.from_region}->{self.to_region}"

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.from_region, "to": self.to_region, "verdict": self.verdict,
                "reasons": [r.to_dict() for r in self.reasons], "rpo": [r.to_dict() for r in self.rpo],
                "rto": self.rto.to_dict(), "at": self.at, "inputs": self.inputs,
                "last_estimates_vs_measured": self.last_estimates}


def verdict_of(reasons: list[Reason]) -> Verdict:
    if any(r.severity == "not_ready" for r in reasons):
        return "not_ready"
    return "degraded" if reasons else "ready"


# --------------------------------------------------------------------------- RPO


def _replicas_in(facts: Facts, check: str, cluster: str, region: str) -> list[Any]:
    return [r for r in facts.replication if r.check == check and r.observed.get("cluster") == cluster
            and r.observed.get("region") == region]


def _usable(o: dict[str, Any]) -> bool:
    """A replica a promotion can use: it answers, is in recovery, and its link is up."""
    return "replica_error" not in o and o.get("in_recovery", True) is not False and bool(o.get("connected"))


def newest_recovery_point(facts: Facts, cluster: str) -> RecoveryPoint | None:
    points = [p for p in facts.recovery_points if p.cluster == cluster]
    return max(points, key=lambda p: p.at) if points else None


def _postgres_rpo(cfg: SreConfig, facts: Facts, name: str, cluster: PostgresCluster, src: str, dst: str,
                  reasons: list[Reason]) -> ClusterRpo:
    obj = cluster.objectives
    if cluster.primary.region != src:
        return ClusterRpo(name, "postgres", 0.0, 0, "nothing_at_risk",
                          f"its primary {cluster.primary.name} is in {cluster.primary.region}", obj.rpo)
    results = _replicas_in(facts, "replication.postgres", name, dst)
    usable = [r for r in results if _usable(r.observed)]
    for r in results:
        if r.status == "fail" and _usable(r.observed):
            reasons.append(Reason("not_ready", "replication", f"{r.target}: {r.message}",
                                  f"bring its lag under the budget (lag_fail {human_seconds(obj.lag_fail)} / "
                                  f"{human_bytes(obj.lag_fail_bytes)}): resume replay (pg_wal_replay_resume()), "
                                  "look for long queries or I/O on the replica, or network between the regions"))
        elif r.status == "fail":
            reasons.append(Reason("not_ready", "replication", f"{r.target}: {r.message}",
                                  f"reconnect or rebuild replica {r.observed.get('replica')} "
                                  f"(see the runbook ReplicationLinkDown)"))
        elif r.status == "warn":
            reasons.append(Reason("degraded", "replication", f"{r.target}: {r.message}",
                                  "watch the lag; resume replay if it was paused (pg_wal_replay_resume())"))
    if not results:
        reasons.append(Reason("not_ready", "replication", f"cluster {name} has no replica in {dst}",
                              f"add a streaming replica in {dst} to postgres.clusters.{name}.replicas"))
    if usable:
        best = min(usable, key=lambda r: (r.observed.get("lag_seconds") is None, r.observed.get("lag_seconds") or 0))
        o = best.observed
        seconds = o.get("lag_seconds")
        basis = o.get("lag_seconds_basis")
        note = ""
        transit = o.get("receiver_transit_seconds")
        if basis in ("primary_replay_lag", "caught_up") and o.get("lag_bytes") and transit is not None:
            # The replica applies what it receives; the primary is ahead only by the WAL still on
            # the way. The primary's lag figures are round trips (WAL out, the reply back) and are
            # NULL until sampled, so the data a loss takes is the one-way transit of the replica's
            # last message.
            seconds = round(transit, 4)
            note = ", one-way transit: WAL still on the way"
        detail = (f"not yet replayed on {o.get('replica')}: {human_seconds(seconds)} / "
                  f"{human_bytes(o.get('lag_bytes'))} ({basis}{note}), link up")
        return ClusterRpo(name, "postgres", seconds, o.get("lag_bytes"), "replica", detail, obj.rpo, "up")
    point = newest_recovery_point(facts, name)
    if point is None:
        reasons.append(Reason("not_ready", "backups", f"cluster {name}: no usable replica in {dst} and no verified "
                              "backup or PITR point to fall back on",
                              "fix the replica, and run `sre backup take` then `sre backup verify`"))
        return ClusterRpo(name, "postgres", None, None, "unknown", "no usable replica and no verified backup",
                          obj.rpo, "down" if results else None)
    age = max(0.0, (facts.now - point.at).total_seconds())
    detail = f"replica unusable: falls back to the newest {point.basis} of set {point.backup_set}, taken " \
             f"{point.at.isoformat(timespec='seconds')} ({human_seconds(age)} old)"
    return ClusterRpo(name, "postgres", round(age, 3), None, "backup", detail, obj.rpo, "down" if results else None)


def _backup_reasons(cfg: SreConfig, facts: Facts, cluster: str, reasons: list[Reason]) -> None:
    sets = {n: b for n, b in cfg.backups.items() if b.cluster == cluster}
    if not sets:
        reasons.append(Reason("degraded", "backups", f"cluster {cluster} has no backup set configured",
                              f"add a backups.<name> entry with cluster: {cluster}"))
        return
    for name, bcfg in sets.items():
        limit = bcfg.max_age if bcfg.max_age is not None else cfg.postgres.clusters[cluster].objectives.rpo
        points = [p for p in facts.recovery_points if p.backup_set == name]
        newest = max(points, key=lambda p: p.at) if points else None
        if newest is None:
            reasons.append(Reason("degraded", "backups", f"backup set {name}: no verified backup or PITR point on "
                                  "record", "run `sre backup verify` (or wait for the backups.verify job)"))
        elif (facts.now - newest.at).total_seconds() > limit:
            age = (facts.now - newest.at).total_seconds()
            reasons.append(Reason("degraded", "backups", f"backup set {name}: the newest verified backup is "
                                  f"{human_seconds(age)} old, outside its {human_seconds(limit)}",
                                  "take and verify a backup (`sre backup take`, `sre backup verify`); check the "
                                  "backup schedule"))


def _redis_rpo(facts: Facts, name: str, primary_region: str, src: str, dst: str,
               reasons: list[Reason]) -> ClusterRpo:
    if primary_region != src:
        return ClusterRpo(name, "redis", None, 0, "nothing_at_risk", f"its primary is in {primary_region}")
    results = _replicas_in(facts, "replication.redis", name, dst)
    if not results:
        reasons.append(Reason("degraded", "replication", f"redis pair {name} has no replica in {dst}",
                              f"add a replica in {dst} to redis.pairs.{name}.replicas"))
        return ClusterRpo(name, "redis", None, None, "unknown", f"no replica in {dst}")
    r = min(results, key=lambda x: x.observed.get("lag_bytes") if x.observed.get("lag_bytes") is not None else 1 << 62)
    if r.status != "ok":
        reasons.append(Reason("degraded" if r.status == "warn" else "not_ready", "replication",
                              f"redis {r.target}: {r.message}",
                              "reconnect the replica (REPLICAOF) and let it resynchronise"))
    link = "up" if r.observed.get("connected") else "down"
    return ClusterRpo(name, "redis", None, r.observed.get("lag_bytes"), "replica",
                      f"replica offset {human_bytes(r.observed.get('lag_bytes'))} behind, link {link}", None, link)


# --------------------------------------------------------------------------- RTO


def pair_drills(facts: Facts, src: str, dst: str) -> list[DrillFact]:
    return [d for d in facts.drills if d.from_region == src and d.to_region == dst]


def _rto(cfg: SreConfig, facts: Facts, src: str, dst: str, reasons: list[Reason]) -> RtoEstimate:
    drills = pair_drills(facts, src, dst)
    passed = [d for d in drills if d.status == "passed" and d.rto_seconds is not None]
    est = RtoEstimate(None)
    max_age = cfg.drills.max_age
    if not passed:
        reasons.append(Reason("not_ready", "drills", f"no drill of {src} -> {dst} has passed: the failover path "
                              "is unmeasured", f"run `sre drill failover --from {src} --to {dst} --execute`"))
    else:
        age = (facts.now - passed[0].finished).total_seconds()
        if age > max_age:
            reasons.append(Reason("not_ready", "drills", f"no passed drill of {src} -> {dst} in the last "
                                  f"{human_seconds(max_age)} (the last, drill {passed[0].id}, was "
                                  f"{human_seconds(age)} ago)",
                                  f"run `sre drill failover --from {src} --to {dst} --execute`"))
    if drills and drills[0].status in FAILED_DRILL:
        reasons.append(Reason("degraded", "drills", f"the last drill of {src} -> {dst} (drill {drills[0].id}) "
                              f"{drills[0].status}", f"read `sre drill show {drills[0].id}`, fix, and drill again"))

    # Propagation as last measured by a drill of any pair (it is the provider's, not the pair's).
    measured = next((d for d in facts.drills if d.dns_insync_seconds is not None), None)
    if measured is not None:
        propagation: float | None = measured.dns_insync_seconds
        est.notes.append(f"DNS propagation as measured by drill {measured.id}")
    else:
        propagation = cfg.dr.dns_propagation
        est.notes.append("DNS propagation: no drill measured it; " + (
            "dr.dns_propagation assumed" if propagation is not None else "counted as 0"))
    est.terms["dns_propagation"] = propagation

    dns = facts.dns
    if dns is not None and dns.proxied:
        est.terms["dns_ttl"] = 0.0
        est.notes.append("the record is proxied (Cloudflare): clients hold the edge's answer, not a TTL of their "
                         "own; the switch is visible once the edge has it")
    else:
        ttl = dns.ttl if dns is not None and dns.ttl is not None else (cfg.dns.ttl if cfg.dns else None)
        est.terms["dns_ttl"] = float(ttl) if ttl is not None else None
    est.terms["scale"] = _scale_term(cfg, facts, dst, reasons, est)
    est.terms["detection"] = facts.detection_seconds
    est.notes.append(f"detection: {facts.detection_basis}")

    if passed:
        recent = passed[:cfg.drills.rto_history]
        gaps = [max(0.0, (d.rto_seconds or 0.0) - (d.dns_insync_seconds or 0.0)) for d in recent]
        est.terms["write_gap"] = round(median(gaps), 4)
        est.drills = [d.id for d in recent]
        est.seconds = round(sum(v for v in est.terms.values() if v is not None), 3)
    else:
        est.terms["write_gap"] = None
    return est


def _scale_term(cfg: SreConfig, facts: Facts, dst: str, reasons: list[Reason], est: RtoEstimate) -> float:
    kr = cfg.kubernetes.regions.get(dst)
    wanted = dict(kr.deployments) if kr else {}
    if not wanted:
        est.notes.append(f"no deployments configured for {dst}: scaling not estimated")
        return 0.0
    seen = facts.deployments.get(dst, {})
    term = 0.0
    for ref, size in wanted.items():
        now = seen.get(ref)
        if isinstance(now, str) or now is None:
            reasons.append(Reason("degraded", "kubernetes", f"deployment {ref} in {dst}: "
                                  f"{now or 'not read'}", "check kubernetes access for the region"))
            term = max(term, cfg.dr.startup.get(ref, cfg.dr.default_startup))
            continue
        if now == 0:
            reasons.append(Reason("not_ready", "kubernetes", f"deployment {ref} in {dst} runs 0 replicas",
                                  f"scale it to at least {max(1, cfg.dr.min_replicas)} (warm standby)"))
        elif now < cfg.dr.min_replicas:
            reasons.append(Reason("degraded", "kubernetes", f"deployment {ref} in {dst} runs {now} replicas, "
                                  f"below the minimum of {cfg.dr.min_replicas}",
                                  f"scale it to {cfg.dr.min_replicas} or more"))
        if now < size:
            term = max(term, cfg.dr.startup.get(ref, cfg.dr.default_startup))
    return term


# --------------------------------------------------------------------------- the pair


def _dns_reasons(cfg: SreConfig, facts: Facts, src: str, reasons: list[Reason]) -> None:
    if cfg.dns is None:
        reasons.append(Reason("degraded", "dns", "no dns section: the switch of the application's record is "
                              "manual", "configure dns (provider, zone, records, node_targets)"))
        return
    dns = facts.dns
    if dns is None or dns.error:
        reasons.append(Reason("degraded", "dns", f"the record could not be read: {dns.error if dns else 'not read'}",
                              "check the DNS provider's credentials and reachability"))
        return
    if dns.target is None:
        reasons.append(Reason("not_ready", "dns", f"record {dns.record} does not exist in zone {cfg.dns.zone}",
                              f"create {dns.record} pointing at the primary"))
        return
    primaries = [c.primary for c in cfg.postgres.clusters.values() if c.primary.region == src]
    expected = {normalize_target(t) for p in primaries if (t := cfg.dns.node_targets.get(p.name))}
    if expected and normalize_target(dns.target) not in expected:
        reasons.append(Reason("degraded", "dns", f"record {dns.record} leads to {dns.target}, not to the primary in "
                              f"{src} ({', '.join(sorted(expected))})",
                              "point it at the primary, or correct dns.node_targets"))


def _bucket_reasons(facts: Facts, reasons: list[Reason]) -> None:
    for r in facts.buckets:
        if r.status != "ok":
            reasons.append(Reason("degraded", "buckets", f"bucket {r.target}: {r.message}",
                                  f"configure replication of {r.target} to its replica bucket "
                                  "(and versioning, which replication needs)"))


def assess(cfg: SreConfig, facts: Facts, src: str, dst: str) -> PairReadiness:
    """The verdict, reasons and estimates for losing region `src` and running from `dst`."""
    reasons: list[Reason] = []
    rpos: list[ClusterRpo] = []
    for name, cluster in cfg.postgres.clusters.items():
        rpos.append(_postgres_rpo(cfg, facts, name, cluster, src, dst, reasons))
        if cluster.primary.region == src:
            _backup_reasons(cfg, facts, name, reasons)
    for name, pair in cfg.redis.pairs.items():
        rpos.append(_redis_rpo(facts, name, pair.primary.region, src, dst, reasons))
    rto = _rto(cfg, facts, src, dst, reasons)
    at_risk = [c for n, c in cfg.postgres.clusters.items() if c.primary.region == src]
    rto.objective_seconds = min((c.objectives.rto for c in at_risk), default=None)
    _dns_reasons(cfg, facts, src, reasons)
    _bucket_reasons(facts, reasons)
    for r in rpos:
        if r.beyond_objective:
            reasons.append(Reason("degraded", "objectives", f"cluster {r.cluster}: RPO estimate "
                                  f"{human_seconds(r.seconds)} is beyond its objective "
                                  f"{human_seconds(r.objective_seconds)}", "see the replication and backup reasons"))
    if rto.seconds is not None and rto.objective_seconds is not None and rto.seconds > rto.objective_seconds:
        top, value = max(((k, v) for k, v in rto.terms.items() if v is not None), key=lambda kv: kv[1])
        reasons.append(Reason("degraded", "objectives", f"RTO estimate {human_seconds(rto.seconds)} is beyond the "
                              f"objective {human_seconds(rto.objective_seconds)} (largest term: {top}, "
                              f"{human_seconds(value)})", _RTO_FIX.get(top, "shorten the largest term")))
    return PairReadiness(src, dst, verdict_of(reasons), reasons, rpos, rto, facts.now.isoformat(),
                         {"replication": facts.replication_basis, "seconds": facts.timings,
                          "dns": asdict(facts.dns) if facts.dns is not None else None,
                          "deployments": facts.deployments})


_RTO_FIX = {
    "write_gap": "find the slow step in the last drills' timelines (catch-up, promote, DNS)",
    "dns_ttl": "lower dns.ttl of the application's record",
    "dns_propagation": "the provider is slow to propagate: consider a lower-latency provider or health-checked records",
    "scale": "keep the target region's deployments warm (higher replicas) or shorten start-up (dr.startup)",
    "detection": "shorten the `for:` of the detection alerts (dr.detection_alerts) or the evaluation interval",
}


def compare_estimates(drills: list[DrillFact], limit: int = 3) -> list[dict[str, Any]]:
    """How far the estimates drills took in their preflight were from what they then measured."""
    out: list[dict[str, Any]] = []
    for d in drills:
        if d.estimate is None or len(out) >= limit:
            continue
        est_rto = d.estimate.get("rto_comparable_seconds")
        row: dict[str, Any] = {"drill": d.id, "status": d.status, "mode": d.mode,
                               "estimated_rto_seconds": est_rto, "measured_rto_seconds": d.rto_seconds,
                               "rto_difference_seconds": None if est_rto is None or d.rto_seconds is None
                               else round(d.rto_seconds - est_rto, 3),
                               "estimated_rpo_seconds": d.estimate.get("rpo_seconds"),
                               "measured_rpo_seconds": d.measured_rpo_seconds}
        if row["estimated_rpo_seconds"] is not None and d.measured_rpo_seconds is not None:
            row["rpo_difference_seconds"] = round(d.measured_rpo_seconds - row["estimated_rpo_seconds"], 3)
        out.append(row)
    return out
