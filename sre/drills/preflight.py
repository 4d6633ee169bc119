"""Preflight: everything a drill needs, checked read-only before anything changes.

Each check is a CheckResult (check "drill.preflight.<what>"); any "fail" refuses the drill and the
message says which check refused and why. Roles come from the servers, so a config that still
names the old primary after an earlier drill is checked against what is really running.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sre.adapters.dns import target_of
from sre.adapters.kube_scale import get_replicas
from sre.checks.backups import set_freshness
from sre.checks.replication import check_postgres
from sre.dr import drill_estimate
from sre.results import CheckResult, guarded

if TYPE_CHECKING:
    from sre.drills.context import DrillContext


def _result(what: str, target: str, problems: list[str], ok: str, observed: Mapping[str, Any] | None = None,
            warnings: list[str] | None = None) -> CheckResult:
    status = "fail" if problems else "warn" if warnings else "ok"
    msg = "; ".join(problems or warnings or [ok])
    return CheckResult(f"drill.preflight.{what}", target, status, dict(observed or {}), msg)  # type: ignore[arg-type]


def roles(d: DrillContext) -> list[CheckResult]:
    out = []
    for m, want_primary in ((d.src, True), (d.dst, False)):
        problems = []
        in_recovery = m.in_recovery()
        if want_primary and in_recovery:
            problems.append(f"{m.name} ({m.region}) is a standby, not the primary: nothing to fail over from there")
        if not want_primary and not in_recovery:
            problems.append(f"{m.name} ({m.region}) is not a standby (a second primary?)")
        role = "standby" if in_recovery else "primary"
        out.append(_result("roles", m.name, problems, f"{m.name} ({m.region}) is {role}", {"role": role}))
    return out


def replication(d: DrillContext) -> list[CheckResult]:
    """The target streams from the source within the lag budget, and its replay is not paused."""
    cfg = d.cfg
    cluster = cfg.postgres.clusters[d.cluster]
    # Judge the topology that is running: the source as primary, whatever the config names.
    others = [n for n in cluster.nodes() if n.name != d.src.name]
    live = cluster.model_copy(update={"primary": d.src.node, "replicas": others})
    live_cfg = cfg.model_copy(update={"postgres": cfg.postgres.model_copy(
        update={"clusters": {**cfg.postgres.clusters, d.cluster: live}})})
    results = [r for r in check_postgres(live_cfg, d.cluster) if r.observed.get("replica") == d.dst.name]
    if not results:
        return [_result("replication", d.dst.name, [f"no replication result for {d.dst.name}"], "")]
    r = results[0]
    obj = d.objectives
    budget = f"lag budget {obj.lag_fail:g}s / {obj.lag_fail_bytes} bytes"
    problems = [f"{r.message} (over the {budget})" if "behind" in r.message else r.message] \
        if r.status == "fail" else []
    if r.observed.get("replay_paused"):
        problems.append(f"replay is paused on {d.dst.name}: it could not catch up (pg_wal_replay_resume())")
    return [_result("replication", d.dst.name, problems, f"{r.message} (within the {budget})",
                    {k: r.observed.get(k) for k in ("lag_bytes", "lag_seconds", "replay_paused", "connected",
                                                    "state")},
                    [r.message] if r.status == "warn" else None)]


def backups(d: DrillContext) -> list[CheckResult]:
    names = [n for n, b in d.cfg.backups.items() if b.cluster == d.cluster]
    if not names:
        return [_result("backups", d.cluster, [], "", warnings=[f"no backups configured for cluster {d.cluster}"])]
    out = []
    for name in names:
        r = set_freshness(d.cfg, name)
        out.append(_result("backups", name, [r.message] if r.status == "fail" else [], r.message, r.observed,
                           [r.message] if r.status == "warn" else None))
    return out


def kubernetes(d: DrillContext) -> list[CheckResult]:
    wanted = d.deployments(d.dst.region)
    if not wanted:
        return [_result("kubernetes", d.dst.region, [], f"no deployments to scale in {d.dst.region}")]
    problems, seen = [], {}
    for ref in wanted:
        try:
            seen[ref] = get_replicas(d.cfg, d.dst.region, ref)
        except Exception as exc:
            problems.append(f"{ref}: {exc}")
    return [_result("kubernetes", d.dst.region, problems, f"{len(seen)} deployment(s) exist in {d.dst.region}",
                    {"replicas": seen})]


def dns(d: DrillContext) -> list[CheckResult]:
    rec = d.dns.get_record(d.record)
    if rec is None:
        return [_result("dns", d.record, [f"zone {d.dns.zone} has no record {d.record}"], "")]
    now = target_of(rec)
    problems = [] if now == d.src.target else [
        f"{d.record} leads to {now}, not to the source primary {d.src.name} ({d.src.target})"]
    return [_result("dns", d.record, problems, f"{d.record} {rec.type} leads to {now} ({d.src.name})",
                    rec.to_dict())]


def control(d: DrillContext) -> list[CheckResult]:
    """What the node-control backend needs for this request (drills.ha.backend)."""
    problems, warnings = d.ha.problems(mode=d.req.mode, kind=d.req.kind, failback=d.req.failback, src=d.src,
                                       dst=d.dst)
    ok = "pg_ctl/pg_rewind available where needed" if d.ha.name == "local" else \
        f"the {d.ha.name} backend can drive this drill"
    return [_result("control", d.cluster, problems, ok, {"backend": d.ha.name}, warnings)]


def health(d: DrillContext) -> list[CheckResult]:
    if not d.cfg.drills.health_urls:
        return []
    answers = d.check_health()
    problems = [f"{u} -> {r}" for u, r in answers.items() if not r.startswith("2")]
    return [_result("health", "endpoints", problems, f"{len(answers)} health endpoint(s) answer", answers)]


def readiness(d: DrillContext) -> list[CheckResult]:
    """Record the readiness estimate of the drill's pair (sre.dr). Never refuses: the first drill
    of a pair has none."""
    estimate = drill_estimate.take(d.cfg, d.store, d.src.region, d.dst.region, d.cluster)
    return [CheckResult("drill.preflight.readiness", f"{d.src.region}->{d.dst.region}", "ok", estimate,
                        drill_estimate.summary(estimate))]


CHECKS: list[tuple[str, Callable[[DrillContext], list[CheckResult]]]] = [
    ("roles", roles), ("replication", replication), ("backups", backups), ("kubernetes", kubernetes),
    ("dns", dns), ("control", control), ("health", health), ("readiness", readiness),
]


def run_preflight(d: DrillContext) -> list[CheckResult]:
    out: list[CheckResult] = []
    for what, fn in CHECKS:
        # Any error of a check refuses the drill with its reason; the other checks still run.
        out.extend(guarded(f"drill.preflight.{what}", d.cluster, lambda fn=fn: fn(d), catch=(Exception,)))  # type: ignore[misc]
    return out
