"""Plan / apply: the one shape every provisioning target uses.

`plan(desired, live) -> Plan` lists creates, updates, deletes and unchanged, each with a
readable diff; the target's `apply(plan)` executes it. Content hashes are computed over a
canonical JSON form (sorted keys, no whitespace) of the object with server-side fields removed,
so the same object always hashes the same and a plan with nothing changed needs no GETs.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

MANAGED_BY = "sre"
HASH_LEN = 12


class Action(StrEnum):
    create = "create"
    update = "update"
    delete = "delete"
    unchanged = "unchanged"
    drift = "drift"  # live object edited by hand: shown, overwritten only by apply


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def content_hash(obj: Any) -> str:
    """12 hex characters of SHA-256 over the canonical JSON of `obj`."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:HASH_LEN]


def unified_diff(before: Any, after: Any, name: str) -> str:
    """A readable diff of two JSON-able objects (or strings), empty when they are equal."""

    def lines(o: Any) -> list[str]:
        text = o if isinstance(o, str) else json.dumps(o, indent=2, sort_keys=True, default=str)
        return text.splitlines(keepends=True)

    return "".join(
        difflib.unified_diff(lines(before), lines(after), fromfile=f"live/{name}", tofile=f"desired/{name}")
    )


@dataclass
class Change:
    kind: str  # object kind within the target, e.g. "dashboard", "ilm_policy", "rule_group"
    name: str  # identifier (uid, policy name, group name)
    action: Action
    diff: str = ""
    desired: Any = None
    live: Any = None
    reason: str = ""  # why an action was refused or what drift means

    def to_dict(self, with_bodies: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "name": self.name, "action": self.action.value}
        if self.diff:
            d["diff"] = self.diff
        if self.reason:
            d["reason"] = self.reason
        if with_bodies:
            d["desired"] = self.desired
        return d


@dataclass
class Plan:
    target: str
    changes: list[Change] = field(default_factory=list)
    requests: int = 0  # requests made against the live system to build this plan

    def of(self, *actions: Action) -> list[Change]:
        return [c for c in self.changes if c.action in actions]

    @property
    def has_changes(self) -> bool:
        return any(c.action is not Action.unchanged for c in self.changes)

    def counts(self) -> dict[str, int]:
        out = {a.value: 0 for a in Action}
        for c in self.changes:
            out[c.action.value] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "counts": self.counts(),
            "requests": self.requests,
            "changes": [c.to_dict() for c in self.changes],
        }
