"""Replay: what would sre do with this alert? Routing, every guard, templating, the action's
description and its verification query, from the real store, with no side effect.

The engine's own pieces answer (Engine.prepare, the guard lists, breaker.peek), so a replay and
a delivery cannot disagree. Nothing is written: the breaker is peeked, not tripped; the target
lock is looked at, not taken. Every guard is evaluated and reported; the decision is the first
that stops. `execute` runs the same alert for real, through Engine.handle (audited, guarded).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from sre.errors import UsageError
from sre.remediation import breaker
from sre.remediation.audit import add_event
from sre.remediation.engine import Engine, InboxAlert
from sre.remediation.guards import ADMISSION, UNDER_LOCK, Guard, Proposal
from sre.remediation.payload import Alert
from sre.store.base import utcnow
from sre.store.remediation import InboxRow, TargetLock

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from sre.config import SreConfig
    from sre.remediation.runbook import Runbook
    from sre.store import Store

REPLAY_HOST = "replay"


@dataclass
class Check:
    guard: str
    passed: bool
    detail: str = ""


@dataclass
class Replay:
    """What the engine would decide. decision: act | dry_run | stopped | refused | no_runbook |
    no_automation | resolved."""

    alertname: str
    status: str
    labels: dict[str, str]
    decision: str
    runbook: str | None = None
    action: str | None = None
    target: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    guard: str | None = None
    reason: str = ""
    would: str = ""
    dry_run_reason: str | None = None
    verify_query: str | None = None
    verify_within: float | None = None
    checks: list[Check] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- reading alerts


def fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's fingerprint of a label set (FNV-1a 64 over sorted name, 0xff, value, 0xff), so a
    replayed alert is the same alert as a delivered one."""
    h = 0xCBF29CE484222325
    for name in sorted(labels):
        for chunk in (name.encode(), b"\xff", labels[name].encode(), b"\xff"):
            for byte in chunk:
                h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def alert_from(data: dict[str, Any], now: datetime | None = None) -> InboxAlert:
    """An inbox alert from one alert of a v4 payload, or from a sample with only some of its fields
    (labels required; status firing, startsAt now and the fingerprint of the labels by default)."""
    if not isinstance(data, dict) or not isinstance(data.get("labels"), dict) or "alertname" not in data["labels"]:
        raise UsageError("an alert needs labels with an alertname")
    labels = {str(k): str(v) for k, v in data["labels"].items()}
    full = {"status": "firing", "startsAt": (now or utcnow()).isoformat(), "fingerprint": fingerprint(labels),
            **{k: v for k, v in data.items() if v is not None}, "labels": labels}
    try:
        a = Alert.model_validate(full)
    except ValidationError as exc:
        raise UsageError(f"not an alert: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from None
    return InboxAlert(0, a.fingerprint, a.status, labels["alertname"], a.startsAt, labels, dict(a.annotations))


def read_alerts(text: str) -> list[InboxAlert]:
    """Alerts from an Alertmanager v4 payload, a list of alerts or one alert (JSON or YAML)."""
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise UsageError(f"neither JSON nor YAML: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("alerts"), list):
        data = data["alerts"]
    items = data if isinstance(data, list) else [data]
    if not items:
        raise UsageError("no alert in the input")
    return [alert_from(item) for item in items]


def parse_labels(pairs: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--label {pair!r}: expected name=value")
        labels[name] = value
    return labels


# ---------------------------------------------------------------- deciding without acting


def _lock_holder(s: Session, p: Proposal) -> str | None:
    lock = s.get(TargetLock, p.target)
    if lock is None or lock.expires_at < p.now:
        return None
    who = f"remediation #{lock.remediation_id}" if lock.remediation_id else lock.holder
    return f"target {p.target} is locked by {who} since {lock.acquired_at:%Y-%m-%d %H:%M:%S}Z (acting or verifying)"


def _run_guards(engine: Engine, a: InboxAlert, p: Proposal) -> list[Check]:
    checks: list[Check] = []

    def run(guards: tuple[Guard, ...], s: Session) -> None:
        for g in guards:
            reason = g.check(s, p)
            checks.append(Check(g.name, reason is None, reason or ""))

    resolved = engine.seen_resolved(a)
    checks.append(Check("resolved", not resolved, "this alert was already delivered as resolved" if resolved else ""))
    dup = engine.slot_holder(a, p.action.name)
    checks.append(Check("duplicate", dup is None, f"remediation #{dup} already holds this alert's slot" if dup else ""))
    with engine.store.session() as s:
        run(ADMISSION, s)
        opened = breaker.peek(s, engine.cfg.remediation.breaker, before_action=not p.dry)
        checks.append(Check("breaker", opened is None, f"circuit breaker open ({opened})" if opened else ""))
        held = _lock_holder(s, p)
        checks.append(Check("lock", held is None, held or ""))
        run(UNDER_LOCK, s)
    return checks


def replay(cfg: SreConfig, store: Store, a: InboxAlert, rb: Runbook | None) -> Replay:
    """The decision the engine would take about `a` now, with every guard's answer; writes nothing."""
    out = Replay(a.alertname, a.status, a.labels, decision="resolved", runbook=rb.path.name if rb else None)
    if a.status == "resolved":
        out.reason = "a resolved alert never acts (it closes what is open for it)"
        return out
    if rb is None or rb.remediation is None:
        out.decision = "no_runbook" if rb is None else "no_automation"
        out.reason = "no runbook for this alert" if rb is None else "the runbook automates nothing"
        return out
    engine = Engine(cfg, store, REPLAY_HOST)
    prep = engine.prepare(a, rb)
    out.action = rb.remediation.action
    if prep.proposal is None or prep.rendered is None:
        out.decision, out.guard, out.reason = "refused", "validation", prep.error
        return out
    p = prep.proposal
    out.target, out.params = p.target, prep.base["params"]
    out.would = p.action.describe(p.params)
    out.dry_run_reason = prep.dry
    out.verify_query, out.verify_within = prep.rendered.verify_query, prep.rendered.verify_within
    out.checks = _run_guards(engine, a, p)
    stop = next((c for c in out.checks if not c.passed), None)
    if stop is not None:
        out.decision, out.guard, out.reason = "stopped", stop.guard, stop.detail
    else:
        out.decision = "dry_run" if prep.dry else "act"
        out.reason = "every guard passes"
    return out


def execute(cfg: SreConfig, store: Store, a: InboxAlert, rb: Runbook | None, *, reason: str, by: str) -> int | None:
    """Run the alert for real through the engine (every guard applies); returns the remediation id.

    The alert goes into the inbox first, marked as a manual replay, so the audit shows where it
    came from; the verification, if any, is then the service's worker's to run.
    """
    now = utcnow()
    with store.session() as s:
        row = InboxRow(received_at=now, fingerprint=a.fingerprint, status=a.status, alertname=a.alertname,
                       starts_at=a.starts_at, labels=a.labels, annotations=a.annotations,
                       receiver=f"replay by {by}", state="claimed", claimed_by=f"replay:{by}", claimed_at=now,
                       attempts=1)
        s.add(row)
        s.flush()
        inbox_id = row.id
    a = InboxAlert(inbox_id, a.fingerprint, a.status, a.alertname, a.starts_at, a.labels, a.annotations)
    outcome, rid = Engine(cfg, store, f"replay:{by}").handle(a, rb)
    with store.session() as s:
        inbox = s.get(InboxRow, inbox_id)
        assert inbox is not None
        inbox.state, inbox.processed_at, inbox.outcome, inbox.remediation_id = "done", utcnow(), outcome, rid
        if rid is not None:
            add_event(s, rid, "manual", f"run by hand by {by} (sre remediation replay --execute): {reason}",
                      by=by, reason=reason)
    return rid

