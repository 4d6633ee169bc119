"""The `Target` interface every provisioning target implements, and the one apply loop.

A target (Elasticsearch, Grafana, a Prometheus rules directory, PrometheusRule objects) knows
how to list what is live, normalise an object for comparison, plan desired against live, and
apply one change. Everything else is shared: `plan` runs list + plan and checks `--adopt`;
`apply` walks the plan in the target's order, never attempts a refused change or one whose
prerequisite did not apply, and records each change as applied, refused or failed in one
`ApplyResult`. The ownership rule is the same for all (`sre.provision.plan.claim`): an object of
the desired identity that sre does not own is refused unless `--adopt` names it.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sre.errors import UsageError
from sre.provision.plan import ADOPTED, Action, ApplyResult, Change, Outcome, Plan, adopted
from sre.telemetry import get_logger, log_fields

log = get_logger("sre.provision")


class ChangeRefused(Exception):
    """The server will not take this change, and says so before changing anything (Grafana:
    a provisioned dashboard): the change is refused, not failed."""


class ChangeFailed(Exception):
    """The server refused or broke this one change; the rest of the apply goes on."""


class Target(ABC):
    """One provisioning target. `kind` names the content (alerts, dashboards, elk); `name` the
    place (a cluster, a directory). Options every target takes: `prune` (also delete owned
    objects gone from code) and `adopt` (names of unowned objects to take over)."""

    kind: str = ""
    concurrency: int = 1  # changes of one wave applied at once

    def __init__(self, *, prune: bool = False, adopt: Collection[str] = ()) -> None:
        self.prune = prune
        self.adopt = frozenset(adopt)

    @property
    @abstractmethod
    def name(self) -> str:
        """Where the objects live, for plans and results (e.g. `grafana`, `rules-dir /etc/prometheus/rules`)."""

    @abstractmethod
    def list_live(self) -> Any:
        """Everything the plan compares with, in as few requests as the API allows."""

    @abstractmethod
    def normalise(self, kind: str, body: Any) -> Any:
        """The comparable form of a desired or live object: server fields and defaults removed."""

    @abstractmethod
    def plan(self, live: Any) -> Plan:
        """Desired against live: one Change per object, ownership applied (`plan.claim`)."""

    @abstractmethod
    def apply_change(self, change: Change) -> None:
        """Make one change; raise ChangeFailed (or ChangeRefused) for this object alone."""

    def requests(self) -> int:
        """Requests made so far (plans and results report the difference)."""
        return 0

    def waves(self, plan: Plan) -> list[list[Change]]:
        """The pending changes in apply order: waves run one after another, the changes of a wave
        `concurrency` at a time. Default: one change at a time in plan order."""
        return [[c] for c in plan.changes if c.action is not Action.unchanged]

    def needs(self, change: Change, plan: Plan) -> set[tuple[str, str]]:
        """(kind, name) of the changes this one cannot go without (a dashboard's folder)."""
        return set()

    @contextlib.contextmanager
    def applying(self, plan: Plan, result: ApplyResult) -> Iterator[None]:
        """Around the changes: checks before the first write, a lock, a reload or check after."""
        yield

    def close(self) -> None:  # noqa: B027 (most targets hold nothing to release)
        """Release connections."""

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def plan(target: Target) -> Plan:
    """List and plan; every `--adopt` name must name an object sre does not own in this plan."""
    before = target.requests()
    the_plan = target.plan(target.list_live())
    the_plan.requests = target.requests() - before
    return the_plan


def check_adopt(plans: list[Plan], adopt: Collection[str]) -> None:
    """`--adopt NAME` that names no unowned object anywhere is a typo: say so rather than ignore it."""
    unmatched = [name for name in sorted(adopt)
                 if not any(c.reason.startswith(ADOPTED) and adopted(c.kind, c.name, {name})
                            for p in plans for c in p.changes)]
    if unmatched:
        raise UsageError(f"--adopt {', '.join(unmatched)}: no object of that name exists unowned by sre",
                         hint="plan shows each object it refuses to take over, with its name")


def apply(target: Target, the_plan: Plan) -> ApplyResult:
    """Execute a plan: refused changes are recorded, not attempted; a change whose prerequisite did
    not apply is failed without a request; the server's refusal of one change fails that change."""
    result = ApplyResult(the_plan.target)
    start, before = time.monotonic(), target.requests()
    blocked: dict[tuple[str, str], Outcome] = {}  # changes that did not apply, and why not

    def record(change: Change, outcome: Outcome, message: str) -> None:
        result.add(change, outcome, message)
        if outcome is not Outcome.applied:
            blocked[change.key] = outcome
            log.warning("%s %s %s %s: %s", change.action.value, change.kind, change.name, outcome.value, message,
                        extra=log_fields(target=result.target, kind=change.kind, name=change.name,
                                         action=change.action.value, outcome=outcome.value))

    def attempt(change: Change) -> tuple[Outcome, str]:
        try:
            target.apply_change(change)
        except ChangeRefused as exc:
            return Outcome.refused, str(exc)
        except ChangeFailed as exc:
            return Outcome.failed, str(exc)
        return Outcome.applied, ""

    with target.applying(the_plan, result):
        for wave in target.waves(the_plan):
            todo: list[Change] = []
            for change in wave:
                missing = sorted(target.needs(change, the_plan) & blocked.keys())
                if change.refused:
                    record(change, Outcome.refused, change.refusal)
                elif missing:
                    # What needs a refused change is refused with it; what needs a failed one fails.
                    outcome = Outcome.failed if Outcome.failed in {blocked[k] for k in missing} else Outcome.refused
                    record(change, outcome, "not attempted: it needs " + ", ".join(
                        f"{kind} {name}" for kind, name in missing) + f", which was {blocked[missing[0]].value}")
                else:
                    todo.append(change)
            with ThreadPoolExecutor(max_workers=max(1, min(target.concurrency, len(todo) or 1))) as pool:
                for change, (outcome, message) in zip(todo, pool.map(attempt, todo), strict=True):
                    record(change, outcome, message)
    result.requests = target.requests() - before
    result.seconds = time.monotonic() - start
    return result
