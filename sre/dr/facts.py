"""What the readiness verdict is judged from: plain data, gathered by `sre.dr.gather` and judged by
`sre.dr.estimate` without I/O, so every rule of the verdict is testable from a table of facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sre.results import CheckResult


@dataclass
class RecoveryPoint:
    """The newest point a backup set can be restored to, as proved by a stored check result."""

    backup_set: str
    cluster: str
    at: datetime
    basis: str  # "backup verified by restore" | "backup verified by checksum" | "PITR point"
    check: str

    def to_dict(self) -> dict[str, Any]:
        return {"set": self.backup_set, "cluster": self.cluster, "at": self.at.isoformat(), "basis": self.basis,
                "check": self.check}


@dataclass
class DrillFact:
    """One finished failover drill of a region pair, as far as readiness needs it."""

    id: int
    from_region: str
    to_region: str
    status: str  # passed | failed | aborted | refused | completed
    finished: datetime
    rto_seconds: float | None
    dns_insync_seconds: float | None
    estimate: dict[str, Any] | None = None  # the readiness estimate its preflight took
    measured_rpo_seconds: float | None = None
    mode: str = "planned"
    detection_seconds: float | None = None  # an observed drill: until the HA layer replaced the primary


@dataclass
class DnsFact:
    record: str | None
    values: list[str] = field(default_factory=list)
    target: str | None = None  # what the record leads to (sre.adapters.dns.target_of)
    ttl: int | None = None
    proxied: bool | None = None
    error: str | None = None


@dataclass
class Facts:
    now: datetime
    replication: list[CheckResult]  # replication.postgres / replication.redis, one per replica
    replication_basis: str  # "stored run <id> (<age> old)" | "live"
    recovery_points: list[RecoveryPoint] = field(default_factory=list)
    drills: list[DrillFact] = field(default_factory=list)  # newest first
    dns: DnsFact | None = None
    deployments: dict[str, dict[str, int | str]] = field(default_factory=dict)  # region -> ref -> replicas | error
    buckets: list[CheckResult] = field(default_factory=list)  # bucket.replication results
    detection_seconds: float = 0.0
    detection_basis: str = ""
    timings: dict[str, float] = field(default_factory=dict)  # seconds each gathering took
