"""What a drill's parts are given instead of the drill: the request, the context it runs in
(preflight reads it) and the record it leaves (the report is written from it).

`DrillContext` is fixed when the drill starts: configuration, store, request, cluster, the two
members, the DNS record and its provider, the HA layer's node control. `DrillRecord` is what
happened, taken when the report is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sre.adapters.dns import DnsProvider, DnsRecord
    from sre.config import Objectives, SreConfig
    from sre.drills.alerting import DrillAlerting
    from sre.drills.canary import Canary
    from sre.drills.ha.base import NodeControl
    from sre.drills.nodes import Member
    from sre.drills.splitbrain import SplitBrainProbe
    from sre.drills.steps import Event, Outcome
    from sre.results import CheckResult
    from sre.store import Store

# Called with the drill before/after a step by name (see DrillRequest.hooks).
Hook = Callable[[Any], None]


@dataclass
class DrillRequest:
    from_region: str
    to_region: str
    cluster: str | None = None
    mode: str = "planned"
    failback: bool = False
    reason: str | None = None
    trigger: str = "manual"  # manual | schedule | api
    actor: str | None = None
    # Called before/after a step by name ("before:dns", "after:failback.promote"): chaos and tests
    # inject faults here, through the same undo path a real failure takes.
    hooks: dict[str, Hook] = field(default_factory=dict)
    stop_on: list[str] = field(default_factory=list)  # alerts that abort the drill (with drills.alerts.stop_on)
    kind: str = "orchestrated"  # orchestrated | observed (only the fault is injected)


def deployments(cfg: SreConfig, region: str) -> dict[str, int]:
    """The deployments a switch scales in `region` (namespace/name -> replicas), from the config."""
    kr = cfg.kubernetes.regions.get(region)
    return dict(kr.deployments) if kr else {}


@dataclass
class Switch:
    """One switch of the primary (the failover, or the failback): its markers and measurements."""

    name: str  # failover | failback
    old: Member
    new: Member
    mode: str
    fenced_at: float | None = None
    old_lsn: str | None = None  # old primary's last known LSN
    replayed_lsn: str | None = None  # new primary's replay LSN when promoted
    lsn_gap_bytes: int | None = None
    promote_seconds: float | None = None
    dns_before: DnsRecord | None = None
    dns_changed: bool = False
    dns_insync_seconds: float | None = None
    scaled: dict[str, int] = field(default_factory=dict)  # namespace/name -> replicas before
    promoted: bool = False
    measured: dict[str, Any] = field(default_factory=dict)
    ha: dict[str, Any] = field(default_factory=dict)  # what an observed switch saw of the HA layer

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "from": self.old.name, "to": self.new.name, "mode": self.mode,
                "old_primary_lsn": self.old_lsn, "new_primary_replayed_lsn": self.replayed_lsn,
                "lsn_gap_bytes": self.lsn_gap_bytes, "promote_seconds": self.promote_seconds,
                "dns_insync_seconds": self.dns_insync_seconds, **self.measured,
                **({"ha": self.ha} if self.ha else {})}


@dataclass
class DrillContext:
    cfg: SreConfig
    store: Store
    req: DrillRequest
    cluster: str
    src: Member
    dst: Member
    record: str  # the DNS record the drill switches
    dns: DnsProvider
    ha: NodeControl

    @property
    def objectives(self) -> Objectives:
        return self.cfg.postgres.clusters[self.cluster].objectives

    def deployments(self, region: str) -> dict[str, int]:
        return deployments(self.cfg, region)

    def check_health(self) -> dict[str, str]:
        """Each of drills.health_urls -> its status code, or the error it ended with."""
        import httpx

        out: dict[str, str] = {}
        for url in self.cfg.drills.health_urls:
            try:
                r = httpx.get(url, timeout=self.cfg.drills.http_timeout)
                out[url] = f"{r.status_code}"
            except httpx.HTTPError as exc:
                out[url] = f"error: {exc.__class__.__name__}"
        return out


@dataclass
class DrillRecord:
    """A drill as its report sees it: its context and what happened."""

    context: DrillContext
    drill_id: int
    started: float
    preflight_results: list[CheckResult]
    estimate: dict[str, Any] | None  # the readiness estimate taken in preflight (sre.dr)
    switches: list[Switch]
    outcomes: dict[str, Outcome]
    notes: list[str]
    timeline: list[Event]
    canary: Canary | None
    alerting: DrillAlerting | None
    probe: SplitBrainProbe | None

    # The context's parts, as the report reads them.
    @property
    def cfg(self) -> SreConfig:
        return self.context.cfg

    @property
    def store(self) -> Store:
        return self.context.store

    @property
    def req(self) -> DrillRequest:
        return self.context.req

    @property
    def cluster(self) -> str:
        return self.context.cluster

    @property
    def src(self) -> Member:
        return self.context.src

    @property
    def dst(self) -> Member:
        return self.context.dst

    @property
    def record(self) -> str:
        return self.context.record

    @property
    def dns(self) -> DnsProvider:
        return self.context.dns

    @property
    def ha(self) -> NodeControl:
        return self.context.ha

    @property
    def objectives(self) -> Objectives:
        return self.context.objectives
