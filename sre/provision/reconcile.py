"""The reconcile jobs: one per kind of content (alerts, dashboards, elk), all the same.

Each run plans every target of its kind; with `<kind>.apply` it applies the plan. A target whose
plan has changes and is not applied is drift: a `warn` result (`provision.<kind>`, one per
target) and `sre_provision_drift{kind}` = 1. A refused change is `warn`, a failed one `fail`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import Gauge

from sre import content
from sre.provision.plan import Action, ApplyResult, Plan
from sre.provision.prometheus import desired_files, targets
from sre.provision.target import Target, apply, plan
from sre.results import CheckResult, JobOutcome, worst
from sre.telemetry import get_logger, log_fields

if TYPE_CHECKING:
    from sre.config import SreConfig
    from sre.results import JobContext, JobOutcome

log = get_logger("sre.provision.reconcile")

PLAN_CHANGES = Gauge("sre_provision_plan_changes", "Changes the last reconcile plan of a kind found, by action "
                     "(refused: changes apply will not make).", ["kind", "action"])
DRIFT = Gauge("sre_provision_drift", "1 when the last reconcile of a kind left live objects different from code "
              "(changes pending, refused or failed), else 0.", ["kind"])
LAST_APPLY = Gauge("sre_provision_last_apply_timestamp_seconds", "Unix time of the last reconcile apply of a kind "
                   "with no failed change.", ["kind"])


def _alerts(cfg: SreConfig) -> list[Target]:
    files = desired_files(content.alerts_dir(cfg), cfg.alerts.runbook_base_url, slo_severity=cfg.alerts.slo_severity)
    return targets(cfg, files)


def _dashboards(cfg: SreConfig) -> list[Target]:
    from sre.provision.grafana import targets

    return targets(cfg)


def _elk(cfg: SreConfig) -> list[Target]:
    from sre.provision.elasticsearch import targets

    return targets(cfg)


def _unconfigured(kind: str, cfg: SreConfig) -> str | None:
    if kind == "alerts" and cfg.alerts.rules_dir is None and not (
            cfg.kubernetes.host or cfg.kubernetes.kubeconfig or cfg.kubernetes.regions):
        return "neither alerts.rules_dir nor kubernetes is configured"
    if kind == "dashboards" and cfg.endpoints.grafana is None:
        return "endpoints.grafana is not configured"
    if kind == "elk" and cfg.endpoints.elasticsearch is None:
        return "endpoints.elasticsearch is not configured"
    return None


TARGETS: dict[str, Callable[[SreConfig], list[Target]]] = {"alerts": _alerts, "dashboards": _dashboards, "elk": _elk}


def total_counts(plans: list[Plan]) -> dict[str, int]:
    """Changes by action over several plans, and how many are refused."""
    counts = {a.value: 0 for a in Action} | {"refused": 0}
    for p in plans:
        for action, n in p.counts().items():
            counts[action] += n
        counts["refused"] += len(p.refused())
    return counts


def record_plan(kind: str, plans: list[Plan]) -> None:
    for action, n in total_counts(plans).items():
        PLAN_CHANGES.labels(kind, action).set(n)


def _result(kind: str, the_plan: Plan, applied: ApplyResult | None) -> CheckResult:
    pending = [f"{c.action.value} {c.kind} {c.name}" + (f" (refused: {c.refusal})" if c.refused else "")
               for c in the_plan.changes if c.action is not Action.unchanged]
    observed: dict[str, Any] = {"counts": the_plan.counts(), "refused": len(the_plan.refused())}
    if applied is None:
        status = "warn" if pending else "ok"
        message = f"{len(pending)} change(s) not applied: " + "; ".join(pending[:10]) if pending else "matches code"
    else:
        status = applied.status
        observed.update(applied=len(applied.applied), failed=len(applied.failed))
        problems = [f"{r.outcome.value} {r.change.kind} {r.change.name}: {r.message}"
                    for r in applied.changes if r.outcome.value != "applied"]
        message = "; ".join(problems[:10]) or f"{len(applied.applied)} change(s) applied"
    return CheckResult(check=f"provision.{kind}", target=the_plan.target, status=status,  # type: ignore[arg-type]
                       observed=observed, message=message)


def run(ctx: JobContext, kind: str) -> JobOutcome:
    """Plan every target of `kind`; apply when `<kind>.apply` is set."""
    cfg = ctx.cfg
    why_not = _unconfigured(kind, cfg)
    if why_not is not None:
        return JobOutcome(status="ok", summary={"skipped": why_not})
    settings = getattr(cfg, kind)
    results: list[CheckResult] = []
    plans: list[Plan] = []
    applies: list[ApplyResult] = []
    for target in TARGETS[kind](cfg):
        with target:
            the_plan = plan(target)
            plans.append(the_plan)
            applied = apply(target, the_plan) if settings.apply and the_plan.has_changes else None
        if applied is not None:
            applies.append(applied)
            results += applied.verified
        results.append(_result(kind, the_plan, applied))
    record_plan(kind, plans)
    status = worst([r.status for r in results])
    DRIFT.labels(kind).set(0 if status == "ok" else 1)
    if applies and not any(a.failed for a in applies):
        LAST_APPLY.labels(kind).set(time.time())
    summary: dict[str, Any] = {
        "targets": [p.target for p in plans],
        "counts": total_counts(plans),
        "requests": sum(p.requests for p in plans),
        "pending": [f"{c.action.value} {c.kind} {c.name}" for p in plans for c in p.changes
                    if c.action is not Action.unchanged],
        "applied": bool(applies),
        "results": [a.to_dict() for a in applies],
    }
    log.info("%s reconcile: %s", kind, status, extra=log_fields(job=f"{kind}.reconcile", status=status))
    return JobOutcome(status=status, summary=summary, results=results)


def run_alerts(ctx: JobContext) -> JobOutcome:
    return run(ctx, "alerts")


def run_dashboards(ctx: JobContext) -> JobOutcome:
    return run(ctx, "dashboards")


def run_elk(ctx: JobContext) -> JobOutcome:
    return run(ctx, "elk")
