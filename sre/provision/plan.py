"""Plan / apply: the one shape every provisioning target uses.

A plan lists creates, updates, deletes, drift and unchanged, each with a readable diff; a change
the target will not make (an object sre does not own, one still in use) carries its `refusal`.
Applying a plan gives one `ApplyResult`: each change applied, refused or failed, with why.
`sre.provision.target` holds the `Target` interface and the one apply loop.

Content hashes are computed over a canonical JSON form (sorted keys, no whitespace) of the object
with server-side fields removed, so the same object always hashes the same and a plan with nothing
changed needs no GETs.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sre.results import CheckResult

# Re-exported: the provisioning targets hash through here.
from sre.hashing import HASH_LEN as HASH_LEN
from sre.hashing import canonical_json as canonical_json
from sre.hashing import content_hash as content_hash

MANAGED_BY = "sre"
ADOPTED = "adopted: "  # the note of an update that takes over an object sre did not own


class Action(StrEnum):
    create = "create"
    update = "update"
    delete = "delete"
    unchanged = "unchanged"
    drift = "drift"  # live object edited by hand: shown, overwritten only by apply


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
    reason: str = ""  # a note: what drift means, what was reused or adopted
    refusal: str = ""  # set: apply will not make this change, and why (an unowned object, one in use)

    @property
    def refused(self) -> bool:
        return bool(self.refusal)

    @property
    def key(self) -> tuple[str, str]:
        return self.kind, self.name

    def refuse(self, why: str) -> Change:
        """This change, refused."""
        return replace(self, refusal=why)

    def to_dict(self, with_bodies: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "name": self.name, "action": self.action.value}
        if self.refusal:
            d["refused"] = self.refusal
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

    def refused(self) -> list[Change]:
        return [c for c in self.changes if c.refused]

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "counts": self.counts(),
            "refused": len(self.refused()),
            "requests": self.requests,
            "changes": [c.to_dict() for c in self.changes],
        }


def adopted(kind: str, name: str, adopt: Collection[str]) -> bool:
    """Whether the operator named this object with `--adopt NAME` (or KIND/NAME)."""
    return name in adopt or f"{kind}/{name}" in adopt


def claim(kind: str, name: str, adopt: Collection[str], what: str) -> tuple[str, str]:
    """The one ownership rule, for an object of the desired identity that sre does not own: refused,
    unless the operator adopts it. Returns the update's (reason, refusal)."""
    if adopted(kind, name, adopt):
        return f"{ADOPTED}{what}; apply takes it over", ""
    return "", f"{what}, not owned by sre: left alone (`--adopt {name}` takes it over)"


class Outcome(StrEnum):
    applied = "applied"
    refused = "refused"  # not attempted: the plan refused it, or the server will not take it (provisioned)
    failed = "failed"  # attempted and refused or broken by the server, or not attempted because what it needs failed


@dataclass
class ChangeResult:
    change: Change
    outcome: Outcome
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = {"kind": self.change.kind, "name": self.change.name, "action": self.change.action.value,
             "outcome": self.outcome.value}
        if self.message:
            d["message"] = self.message
        return d


@dataclass
class ApplyResult:
    """What one apply did, change by change; the same for every target."""

    target: str
    changes: list[ChangeResult] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0
    verified: list[CheckResult] = field(default_factory=list)  # a check after the apply (elk's simulate index)
    notes: dict[str, Any] = field(default_factory=dict)  # target-specific figures (groups confirmed loaded)

    def add(self, change: Change, outcome: Outcome, message: str = "") -> None:
        self.changes.append(ChangeResult(change, outcome, message))

    def of(self, outcome: Outcome) -> list[ChangeResult]:
        return [r for r in self.changes if r.outcome is outcome]

    @property
    def applied(self) -> list[ChangeResult]:
        return self.of(Outcome.applied)

    @property
    def refused(self) -> list[ChangeResult]:
        return self.of(Outcome.refused)

    @property
    def failed(self) -> list[ChangeResult]:
        return self.of(Outcome.failed)

    @property
    def status(self) -> str:
        """fail: a change failed or a check after the apply failed; warn: a change was refused; else ok."""
        statuses = [r.status for r in self.verified]
        if self.failed or "fail" in statuses:
            return "fail"
        return "warn" if self.refused or "warn" in statuses else "ok"

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "target": self.target,
            "ok": self.ok,
            **{o.value: [r.to_dict() for r in self.of(o)] for o in Outcome},
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            **self.notes,
        }
        if self.verified:
            d["verified"] = [r.to_dict() for r in self.verified]
        return d
