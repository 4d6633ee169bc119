"""RTO and RPO from the canary's acknowledgements (pure functions, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sre.drills.canary import Ack
from sre.drills.steps import iso


def ack_dict(a: Ack | None) -> dict[str, Any] | None:
    return None if a is None else {"n": a.n, "at": iso(a.at), "ts": a.at, "target": a.target}


def first_after(acks: Iterable[Ack], t: float, target: str | None = None) -> Ack | None:
    """The first acknowledged write after time `t` (on `target` when given)."""
    for a in acks:
        if a.at > t and (target is None or a.target == target):
            return a
    return None


def last_before(acks: list[Ack], t: float) -> Ack | None:
    found = None
    for a in acks:
        if a.at < t:
            found = a
        else:
            break
    return found


def rto(acks: list[Ack], fenced_at: float, new_target: str | None) -> dict[str, Any]:
    """RTO of one switch: from the last acknowledged write before it to the first one after it.

    "After" is after the old primary was fenced (it refuses writes from then on) and, when the
    canary knows which server it wrote to, on the new primary.
    """
    after = first_after(acks, fenced_at, new_target)
    before = last_before(acks, after.at) if after is not None else last_before(acks, float("inf"))
    seconds = after.at - before.at if after is not None and before is not None else None
    return {"rto_seconds": round(seconds, 4) if seconds is not None else None,
            "last_ack_before": ack_dict(before), "first_ack_after": ack_dict(after)}


def rpo(acked_before: list[Ack], present: set[int]) -> dict[str, Any]:
    """RPO of one switch: acknowledged rows the new primary does not have.

    rpo_seconds is the span of acknowledged writes lost: from the newest write that survived to
    the newest one acknowledged before the switch (0 when nothing was lost).
    """
    lost = [a for a in acked_before if a.n not in present]
    seconds = 0.0
    if lost:
        survived = [a for a in acked_before if a.n in present]
        newest = acked_before[-1].at
        seconds = newest - (survived[-1].at if survived else acked_before[0].at)
    return {"acknowledged_before": len(acked_before), "rpo_rows": len(lost), "lost": [a.n for a in lost][:200],
            "rpo_seconds": round(seconds, 4)}
