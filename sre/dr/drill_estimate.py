"""The estimate held to a measurement: every drill takes the readiness estimate of its region
pair in its preflight, and its report puts it beside the RTO and RPO it then measured.

A drill measures the write gap (DNS propagation inside it); it does not wait out client TTLs,
pod start-up or detection. So the RTO compared is the estimate's drill-comparable part, and the
agreement allowed is 0.5 s plus the TTL term (clients of a real switch may hold the old answer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sre.checks.humanize import human_seconds
from sre.dr.readiness import status

if TYPE_CHECKING:
    from sre.config import SreConfig
    from sre.store import Store

RTO_SLACK = 0.5


def take(cfg: SreConfig, store: Store, src_region: str, dst_region: str, cluster: str) -> dict[str, Any]:
    """The readiness estimate for a drill's region pair and cluster, from live checks."""
    pr = status(cfg, store, src_region, dst_region, live=True)[0]
    rpo = next((r for r in pr.rpo if r.cluster == cluster and r.kind == "postgres"), None)
    return {"at": pr.at, "verdict": pr.verdict, "reasons": [r.message for r in pr.reasons],
            "rto_seconds": pr.rto.seconds, "rto_comparable_seconds": pr.rto.drill_comparable,
            "rto_terms": pr.rto.terms, "rto_notes": pr.rto.notes, "from_drills": pr.rto.drills,
            "rpo_seconds": rpo.seconds if rpo else None, "rpo_bytes": rpo.bytes if rpo else None,
            "rpo_basis": rpo.detail if rpo else None}


def summary(est: dict[str, Any]) -> str:
    """One line of an estimate, for the drill's preflight."""
    return (f"readiness {est['verdict']}; estimated write gap "
            f"{'unknown (no passed drill yet)' if est['rto_comparable_seconds'] is None else human_seconds(est['rto_comparable_seconds'])}"
            f", RPO {human_seconds(est['rpo_seconds'])}")


def compare(estimate: dict[str, Any] | None, switch: dict[str, Any]) -> dict[str, Any] | None:
    """The estimate beside the failover's measurement, with the differences and whether they agree."""
    if estimate is None:
        return None
    est_rto, measured_rto = estimate.get("rto_comparable_seconds"), switch.get("rto_seconds")
    ttl = (estimate.get("rto_terms") or {}).get("dns_ttl") or 0.0
    out: dict[str, Any] = {"estimated_rto_seconds": est_rto, "measured_rto_seconds": measured_rto,
                           "rto_tolerance_seconds": RTO_SLACK + ttl,
                           "estimated_rpo_seconds": estimate.get("rpo_seconds"),
                           "measured_rpo_seconds": switch.get("rpo_seconds"),
                           "measured_rpo_rows": switch.get("rpo_rows")}
    if est_rto is not None and measured_rto is not None:
        out["rto_difference_seconds"] = round(measured_rto - est_rto, 4)
        out["rto_agrees"] = abs(measured_rto - est_rto) <= RTO_SLACK + ttl
    if out["estimated_rpo_seconds"] is not None and out["measured_rpo_seconds"] is not None:
        out["rpo_difference_seconds"] = round(out["measured_rpo_seconds"] - out["estimated_rpo_seconds"], 4)
    return out


def markdown(rep: dict[str, Any]) -> list[str]:
    est, cmp = rep.get("estimate"), rep.get("estimate_vs_measured")
    if not est:
        return []
    lines = ["## Estimate (preflight) vs measured", "", "| | estimated | measured |", "|---|---|---|"]
    cmp = cmp or {}
    lines.append(f"| RTO (write gap) | {_f(cmp.get('estimated_rto_seconds'))} | "
                 f"{_f(cmp.get('measured_rto_seconds'))} |")
    lines.append(f"| RPO | {_f(cmp.get('estimated_rpo_seconds'))} | {_f(cmp.get('measured_rpo_seconds'))} "
                 f"({cmp.get('measured_rpo_rows', '-')} rows) |")
    lines += ["", f"Readiness before the drill: {est['verdict']}; full RTO estimate {_f(est['rto_seconds'])} "
                  f"(terms: {', '.join(f'{k} {_f(v)}' for k, v in (est.get('rto_terms') or {}).items())})."]
    lines += [f"> {n}" for n in est.get("rto_notes") or [] if "proxied" in n]
    return [*lines, ""]


def _f(v: Any) -> str:
    return "-" if v is None else f"{v:.3f} s"
