"""drill: no remediation acts on a cluster while a failover drill is switching it.

Two signals, either one enough:
  - the state store: a live drill lease (sre.drills.lock) and its drill's cluster, when the drill
    runs against the same store as this worker;
  - Alertmanager: the silence a drill creates before its fault (comment "sre drill #<id> ...", a
    `cluster` matcher), which reaches every worker whatever store the drill used (a drill run
    from a laptop against production, say).
Only actions scoped to a cluster (PostgreSQL actions, or alerts with a `cluster` label) are looked
at, so Kubernetes alerts cost no request. Alertmanager being unreachable does not block
remediation: the store still answers, and the failure is logged.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sre.adapters.alertmanager import AlertmanagerClient
from sre.drills.alerting import SCOPE_LABEL, drill_id_of
from sre.drills.lock import holder_in
from sre.errors import SreError
from sre.remediation.guards.base import Guard, Proposal
from sre.store.drills import DrillReport
from sre.telemetry import get_logger

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from sre.config import SreConfig

log = get_logger("sre.remediation")


def _from_store(s: Session, cluster: str) -> str | None:
    drill_id = holder_in(s)
    if drill_id is None:
        return None
    row = s.get(DrillReport, drill_id)
    if row is None or row.cluster != cluster or row.status != "running":
        return None
    return (f"cluster {cluster} is inside running drill #{drill_id} ({row.mode} failover "
            f"{row.from_region} -> {row.to_region}, by {row.actor or 'unknown'}): hands off until it ends")


def _from_silences(cfg: SreConfig, cluster: str) -> str | None:
    if cfg.endpoints.alertmanager is None:
        return None
    try:
        with AlertmanagerClient.from_config(cfg) as am:
            silences = am.silences()
    except SreError as exc:
        log.warning("drill guard: cannot read Alertmanager's silences (%s); relying on the state store", exc)
        return None
    now = time.time()
    for sil in silences:
        drill_id = drill_id_of(sil.comment)
        matcher = sil.matcher(SCOPE_LABEL)
        if drill_id is None or sil.state != "active" or matcher is None or matcher.regex or not matcher.equal:
            continue
        if matcher.value != cluster or (sil.ends_at is not None and sil.ends_at.timestamp() <= now):
            continue
        until = f"{sil.ends_at:%H:%M:%S}Z" if sil.ends_at else "its end"
        return (f"cluster {cluster} is inside running drill #{drill_id} (Alertmanager silence {sil.id}, "
                f"until {until}): hands off until it ends")
    return None


def refusal(cfg: SreConfig, s: Session, scope: dict[str, str], labels: dict[str, str]) -> str | None:
    """Why a running drill forbids acting here (naming the drill), or None."""
    cluster = scope.get(SCOPE_LABEL) or labels.get(SCOPE_LABEL)
    if not cluster:
        return None
    return _from_store(s, cluster) or _from_silences(cfg, cluster)


class Drill(Guard):
    name = "drill"

    def check(self, s: Session, p: Proposal) -> str | None:
        return refusal(p.cfg, s, p.scope, p.labels)
