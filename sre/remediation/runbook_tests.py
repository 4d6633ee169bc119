"""Runbook tests: `runbooks/tests/*.yaml`, cases of an input alert and the decision expected of it.

```yaml
runbook: WebsocketGatewayMemoryHigh
config: {environment: production}          # optional: sre.yaml keys these cases assume
cases:
  - name: restarts the gateway
    alert: {labels: {namespace: messaging, deployment: websocket-gateway}}
    expect: {action: kubernetes.rollout_restart, target: kubernetes/messaging/deployment/websocket-gateway}
  - name: not twice within the cooldown
    alert: {labels: {namespace: messaging, deployment: websocket-gateway}}
    state: {recent_actions: [{ago: 10m}]}
    expect: {guard: cooldown, reason: "cooldown 1800s"}
```

`alert` is one alert (labels, annotations, status; alertname is the runbook's unless given).
`state` is the store before the alert arrives: `recent_actions` on the same target (`ago`,
optional `dry_run`), `breaker_open` (true or its reason), `locked` (another remediation holds
the target), `windows` (maintenance windows: `scope` all | namespace=X | alert=NAME | cluster=C,
optional `ends_in`). `expect` is the action and its exact target (a real action or its dry run),
or the guard that stops it with a part of its `reason`, or a `decision` (no_automation, refused, resolved...).

Each case runs `replay` against a fresh in-memory SQLite store: the engine's own decision, no
outside system, milliseconds a case. Lint (`sre alerts lint`) also requires of every runbook
whose action changes something a case where it acts and a case where a guard refuses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sre.config import Seconds, SreConfig, format_validation_error
from sre.errors import UsageError
from sre.remediation.replay import Replay, alert_from, replay
from sre.remediation.runbook import Runbook, scan_runbooks
from sre.store.base import Base, utcnow
from sre.store.db import Store
from sre.store.maintenance import MaintenanceWindow
from sre.store.remediation import BreakerRow, Remediation, TargetLock

# Actions that change nothing: notify escalates to a person, a silence only quietens the alert.
HUMAN_ONLY_ACTIONS = frozenset({"notify", "alertmanager.silence"})
ACTING = frozenset({"act", "dry_run"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecentAction(_Model):
    ago: Seconds = Field(ge=0)
    dry_run: bool = False


class WindowState(_Model):
    scope: str = "all"
    ends_in: Seconds = Field(3600.0, gt=0)
    reason: str = "runbook test"


class State(_Model):
    recent_actions: list[RecentAction] = Field(default_factory=list)
    breaker_open: bool | str = False
    locked: bool = False
    windows: list[WindowState] = Field(default_factory=list)


class Expect(_Model):
    decision: str | None = None
    action: str | None = None
    target: str | None = None
    guard: str | None = None
    reason: str | None = Field(None, description="A part of the decision's reason.")


class Case(_Model):
    name: str
    alert: dict[str, Any]
    state: State = Field(default_factory=State)
    expect: Expect


class TestFile(_Model):
    runbook: str
    config: dict[str, Any] = Field(default_factory=dict)
    cases: list[Case] = Field(min_length=1)


@dataclass
class CaseResult:
    file: str
    runbook: str
    name: str
    ok: bool
    problems: list[str] = field(default_factory=list)
    got: dict[str, Any] = field(default_factory=dict)
    expect: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "runbook": self.runbook, "case": self.name, "ok": self.ok,
                "problems": self.problems, "got": self.got, "expect": self.expect}


@dataclass
class SuiteResult:
    cases: list[CaseResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # files that cannot run: each names its file
    coverage: dict[str, tuple[bool, bool]] = field(default_factory=dict)  # runbook -> (acts, refuses)

    @property
    def ok(self) -> bool:
        return not self.errors and all(c.ok for c in self.cases)


def tests_dir(runbooks_dir: Path) -> Path:
    return runbooks_dir / "tests"


def _memory_store() -> Store:
    store = Store("sqlite://")
    Base.metadata.create_all(store.engine)
    return store


def _seed(store: Store, state: State, target: str) -> None:
    now = utcnow()
    with store.session() as s:
        for i, r in enumerate(state.recent_actions):
            at = now - timedelta(seconds=r.ago)
            s.add(Remediation(created_at=at, fingerprint=f"runbook-test-{i}", starts_at=at, alertname="", action="",
                              target=target, outcome="dry_run" if r.dry_run else "executed", dry_run=r.dry_run,
                              acted=True, state="done"))
        if state.breaker_open:
            reason = state.breaker_open if isinstance(state.breaker_open, str) else "opened by the runbook test"
            s.add(BreakerRow(id=1, open=True, opened_at=now, reason=reason))
        if state.locked:
            s.add(TargetLock(target=target, remediation_id=None, holder="another-replica", acquired_at=now,
                             expires_at=now + timedelta(hours=1)))
        for w in state.windows:
            kind, _, value = w.scope.partition("=")
            s.add(MaintenanceWindow(created_at=now, created_by="runbook-test", reason=w.reason, scope_kind=kind,
                                    scope_value=value, starts_at=now - timedelta(seconds=1),
                                    ends_at=now + timedelta(seconds=w.ends_in)))


def _judge(got: Replay, expect: Expect) -> list[str]:
    problems: list[str] = []
    if expect.decision is not None and got.decision != expect.decision:
        problems.append(f"decision: expected {expect.decision}, got {got.decision}")
    if expect.action is not None or expect.target is not None:
        if got.decision not in ACTING:
            problems.append(f"expected it to act, but it was {got.decision}"
                            + (f" by guard {got.guard}" if got.guard else "") + f": {got.reason}")
        if expect.action is not None and got.action != expect.action:
            problems.append(f"action: expected {expect.action}, got {got.action}")
        if expect.target is not None and got.target != expect.target:
            problems.append(f"target: expected {expect.target!r}, got {got.target!r}")
    if expect.guard is not None and (got.decision not in ("stopped", "refused") or got.guard != expect.guard):
        problems.append(f"expected guard {expect.guard} to stop it, got {got.decision}"
                        + (f" by guard {got.guard}" if got.guard else "") + (f": {got.reason}" if got.reason else ""))
    if expect.reason is not None and expect.reason not in got.reason:
        problems.append(f"reason: expected it to contain {expect.reason!r}, got {got.reason!r}")
    return problems


def run_case(rb: Runbook, cfg: SreConfig, case: Case) -> tuple[Replay, list[str]]:
    data = dict(case.alert)
    data["labels"] = {"alertname": rb.alert, **(data.get("labels") or {})}
    a = alert_from(data)
    store = _memory_store()
    try:
        first = replay(cfg, store, a, rb)
        if first.target:
            _seed(store, case.state, first.target)
        got = replay(cfg, store, a, rb) if first.target else first
    finally:
        store.dispose()
    return got, _judge(got, case.expect)


def _load_file(path: Path) -> TestFile:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    try:
        return TestFile.model_validate(data)
    except ValidationError as exc:
        raise UsageError(f"{path}: " + "; ".join(format_validation_error(exc))) from None


def run_suite(runbooks_dir: Path, only: list[Path] | None = None,
              runbooks: dict[str, Runbook] | None = None) -> SuiteResult:
    """Run every test file under runbooks/tests (or the ones given)."""
    if runbooks is None:
        runbooks, _ = scan_runbooks(runbooks_dir)
    tdir = tests_dir(runbooks_dir)
    files = only if only is not None else sorted(
        tdir / n for n in (os.listdir(tdir) if tdir.is_dir() else []) if n.endswith((".yaml", ".yml")))
    result = SuiteResult()
    for path in files:
        try:
            tf = _load_file(path)
            cfg = SreConfig.model_validate(tf.config)
        except UsageError as exc:
            result.errors.append(str(exc))
            continue
        except ValidationError as exc:
            result.errors.append(f"{path}: config: " + "; ".join(format_validation_error(exc)))
            continue
        rb = runbooks.get(tf.runbook)
        if rb is None:
            result.errors.append(f"{path}: runbook {tf.runbook} not found in {runbooks_dir}")
            continue
        acts, refuses = result.coverage.get(rb.alert, (False, False))
        for case in tf.cases:
            try:
                got, problems = run_case(rb, cfg, case)
            except UsageError as exc:
                result.cases.append(CaseResult(str(path), rb.alert, case.name, False, [str(exc)]))
                continue
            ok = not problems
            result.cases.append(CaseResult(str(path), rb.alert, case.name, ok, problems,
                                           got={"decision": got.decision, "action": got.action, "target": got.target,
                                                "guard": got.guard, "reason": got.reason},
                                           expect=case.expect.model_dump(exclude_none=True)))
            acts = acts or (ok and got.decision in ACTING)
            refuses = refuses or (ok and got.decision == "stopped")
        result.coverage[rb.alert] = (acts, refuses)
    return result


def needs_tests(rb: Runbook) -> bool:
    """A runbook whose action changes a system: it needs a case that acts and one that refuses."""
    return rb.remediation is not None and rb.remediation.action not in HUMAN_ONLY_ACTIONS


def coverage_problems(runbooks: dict[str, Runbook], suite: SuiteResult) -> list[tuple[Runbook, str]]:
    out = []
    for name in sorted(runbooks):
        rb = runbooks[name]
        if not needs_tests(rb):
            continue
        acts, refuses = suite.coverage.get(name, (False, False))
        if not acts:
            out.append((rb, "automated runbook without a passing runbook test where it acts (runbooks/tests/)"))
        if not refuses:
            out.append((rb, "automated runbook without a passing runbook test where a guard refuses "
                            "(runbooks/tests/)"))
    return out
