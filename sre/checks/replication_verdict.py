"""The verdict on one replica, shared by the PostgreSQL and Redis backends of the replication
check: problems gathered as fail / warn / notes, thresholds, and the one sentence a person reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sre.results import Status

CHECK_POSTGRES = "replication.postgres"
CHECK_REDIS = "replication.redis"


@dataclass
class Verdict:
    fail: list[str] = field(default_factory=list)
    warn: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def status(self) -> Status:
        return "fail" if self.fail else "warn" if self.warn else "ok"


def apply_threshold(verdict: Verdict, value: float | None, warn: float, fail: float, text: str) -> None:
    if value is None:
        return
    if value >= fail:
        verdict.fail.append(text)
    elif value >= warn:
        verdict.warn.append(text)


def lag_message(region: str, name: str, lag: str, v: Verdict) -> str:
    """'replica eu-west-1/west1 is 412 MB / 38 s behind; replay paused'."""
    who = f"replica {region}/{name}"
    problems = [p for p in v.fail if not p.startswith("lag in")] + [
        p for p in v.warn if not p.startswith("lag in") and p != "replay paused"]
    head = f"{who} is {lag}" if not problems else f"{who}: {'; '.join(problems)}; {lag}"
    return "; ".join([head, *v.notes])
