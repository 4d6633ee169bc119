"""Deciding about one alert: route to its runbook, apply the guards, act, start verification.

First the alert is validated against its runbook and the inventory (docs/remediation.md lists
what): an alert that does not fit is `refused` (guard `validation`), escalated, and never counts
as a failed action for the breaker. Then the guards, each recorded when it stops an action:
  resolved  the alert (this fingerprint and startsAt) was already seen resolved: never act on it
  duplicate this (fingerprint, startsAt, action) already has its remediation: a note on that one
  guards.ADMISSION  allowlist (namespaces / clusters / environments), paused (maintenance windows),
                    drill (a failover drill is running on the cluster)
  breaker   the global circuit breaker is open, or this action would reach its limit: escalate
  lock      another remediation is acting on or verifying this target
  guards.UNDER_LOCK cooldown (acted on less than `cooldown` ago), max_per_day (24 hours)
Then the decision takes the (fingerprint, startsAt, action) slot (a unique index: two replicas or
two deliveries cannot both take it), and the action runs, or is described when in dry run.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from sre.annotate import queue as queue_annotation
from sre.annotate import service_of
from sre.remediation import breaker, graph
from sre.remediation.actions import Action, ActionContext, ActionError, ActionRefused, get_action
from sre.remediation.actions.alertmanager import create_silence, expire_silence
from sre.remediation.actions.notify import escalate
from sre.remediation.audit import add_event, count
from sre.remediation.guards import ADMISSION, UNDER_LOCK, Guard, Proposal
from sre.remediation.runbook import TemplateError
from sre.remediation.verify import VerifyError, holds, poll_interval
from sre.store.base import utcnow
from sre.store.remediation import TARGET_LEN, InboxRow, Remediation, TargetLock, fit
from sre.telemetry import get_logger

if TYPE_CHECKING:
    from sre.config import SreConfig
    from sre.remediation.runbook import RenderedRemediation, Runbook
    from sre.store import Store

log = get_logger("sre.remediation")

# Time an action itself may take, on top of the verification window, for locks and silences.
ACTION_BUDGET = 120.0
LOCK_MARGIN = 60.0


@dataclass
class Prepared:
    """A runbook filled in for one alert: what the guards and the action need, or why it does not fit."""

    base: dict[str, Any]  # the remediation row's columns known before deciding
    rendered: RenderedRemediation | None = None
    proposal: Proposal | None = None
    dry: str | None = None  # why it would be a dry run, if it would
    error: str = ""


@dataclass
class InboxAlert:
    id: int
    fingerprint: str
    status: str
    alertname: str
    starts_at: datetime
    labels: dict[str, str]
    annotations: dict[str, str]


def kubernetes_configured(cfg: SreConfig) -> bool:
    """A cluster to talk to: host, kubeconfig, or running inside one (the service account)."""
    k = cfg.kubernetes
    return bool(k.host or k.kubeconfig or os.environ.get("KUBERNETES_SERVICE_HOST"))


def _one_line(exc: Exception) -> str:
    """The reason, on one line; a validation error lists each bad field without its input echoed."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}"
                         for e in exc.errors(include_url=False, include_input=False))
    return str(exc).replace("\n", " ")


class Engine:
    def __init__(self, cfg: SreConfig, store: Store, host: str) -> None:
        self.cfg = cfg
        self.store = store
        self.host = host
        self.postgres = store.dialect == "postgresql"
        self.annotated = False  # an annotation was queued since the worker last sent the outbox

    # ------------------------------------------------------------ entry points

    def handle(self, a: InboxAlert, rb: Runbook | None) -> tuple[str, int | None]:
        """Decide about one inbox alert; returns (inbox outcome, remediation id)."""
        if a.status == "resolved":
            return "resolved", self.resolved(a)
        if rb is None:
            return "no_runbook", None
        if rb.remediation is None:
            return "no_automation", None
        return "decided", self.firing(a, rb)

    def resolved(self, a: InboxAlert) -> int | None:
        """Close what is still open for this alert; a resolved alert never acts."""
        now = utcnow()
        closed = None
        with self.store.session() as s:
            rows = list(s.scalars(select(Remediation).where(
                Remediation.fingerprint == a.fingerprint, Remediation.starts_at == a.starts_at,
                Remediation.acted.is_(True), Remediation.resolved_at.is_(None))))
            ended = []
            for r in rows:
                r.resolved_at = now
                if r.state in ("running", "verifying"):
                    r.state = "resolved"
                    ended.append(r.id)
                add_event(s, r.id, "resolved", "the alert resolved; nothing more to do")
                closed = r.id
        for r in rows:
            if r.silence_id:
                self._expire(r.id, r.silence_id, "the alert resolved")
            self._release(r.target, r.id)
        for rid in ended:
            self._annotate(rid)
        return closed

    def prepare(self, a: InboxAlert, rb: Runbook) -> Prepared:
        """The runbook's remediation filled in for this alert; `error` says why it does not fit."""
        spec = rb.remediation
        assert spec is not None
        base: dict[str, Any] = {
            "inbox_id": a.id, "fingerprint": a.fingerprint, "starts_at": a.starts_at, "alertname": a.alertname,
            "labels": a.labels, "runbook": rb.path.name, "action": spec.action, "host": self.host,
            "created_at": utcnow(), "params": {}, "target": "",
        }
        try:
            rendered = spec.render(a.labels, a.annotations)
            action = get_action(rendered.action)
            params = action.parse({**rendered.target, **rendered.params})
        except (TemplateError, ValidationError, ActionError) as exc:
            return Prepared(base, error=f"the alert does not fit its runbook: {_one_line(exc)}")
        unknown = action.check_target(params, self.cfg)
        if unknown is not None:
            base.update(target=fit(action.target(params), TARGET_LEN))
            return Prepared(base, error=f"the alert names an unknown target: {unknown}")
        target = action.target(params)
        if action.per_alert:
            target = f"{target}/{a.alertname}/{a.fingerprint}"
        # Labels make the target: however long they are, the decision's row must be written.
        target = fit(target, TARGET_LEN)
        base.update(target=target, params=params.model_dump(mode="json"))
        dry = self._dry_run_reason(rendered.guards.dry_run, action)
        proposal = Proposal(self.cfg, a.alertname, a.labels, action, params, target, rendered.guards, dry is not None,
                            base["created_at"])
        return Prepared(base, rendered=rendered, proposal=proposal, dry=dry)

    def first_stop(self, guards: Sequence[Guard], p: Proposal) -> tuple[str, str] | None:
        """(guard name, reason) of the first guard that stops the proposal, or None."""
        with self.store.session() as s:
            for guard in guards:
                reason = guard.check(s, p)
                if reason:
                    return guard.name, reason
        return None

    def firing(self, a: InboxAlert, rb: Runbook) -> int | None:
        prep = self.prepare(a, rb)
        base = prep.base
        if prep.proposal is None or prep.rendered is None:
            return self._record(base, "refused", "validation", prep.error, escalate_kind="runbook")
        proposal, rendered, dry = prep.proposal, prep.rendered, prep.dry
        action, params, target = proposal.action, proposal.params, proposal.target

        if self.seen_resolved(a):
            return self._record(base, "skipped", "resolved", "this alert was already delivered as resolved")
        dup = self.slot_holder(a, action.name)
        if dup is not None:
            return self._duplicate(dup, a)
        stop = self.first_stop(ADMISSION, proposal)
        if stop:
            return self._record(base, "skipped", *stop)
        with self.store.session() as s:
            open_reason = breaker.trip_if_needed(s, self.cfg.remediation.breaker, before_action=dry is None)
        if open_reason:
            return self._record(base, "escalated", "breaker",
                                f"circuit breaker open ({open_reason}): a person decides "
                                "(sre remediation breaker reset closes it)", escalate_kind="breaker")
        window = rendered.verify_within or 0.0
        held = self._acquire(target, ACTION_BUDGET + window + LOCK_MARGIN)
        if held is not None:
            return self._record(base, "skipped", "lock", held)
        try:
            stopped = self.first_stop(UNDER_LOCK, replace(proposal, now=utcnow()))
            if stopped:
                return self._record(base, "skipped", *stopped)
            rid = self._claim(base, dry)
            if rid is None:
                holder = self.slot_holder(a, action.name)
                return self._duplicate(holder, a) if holder is not None else None
        except BaseException:
            self._release(target, None)
            raise
        self._set_lock_owner(target, rid)
        if dry is not None:
            self._finish_dry_run(rid, action, params, dry)
            self._release(target, rid)
            return rid
        self._act(rid, a, action, params, target, rendered.verify_query, window)
        return rid

    # ------------------------------------------------------------ guards

    def seen_resolved(self, a: InboxAlert) -> bool:
        with self.store.session() as s:
            return s.scalar(select(InboxRow.id).where(
                InboxRow.fingerprint == a.fingerprint, InboxRow.starts_at == a.starts_at,
                InboxRow.status == "resolved").limit(1)) is not None

    def slot_holder(self, a: InboxAlert, action: str) -> int | None:
        with self.store.session() as s:
            return s.scalar(select(Remediation.id).where(
                Remediation.fingerprint == a.fingerprint, Remediation.starts_at == a.starts_at,
                Remediation.action == action, Remediation.acted.is_(True)))

    def _dry_run_reason(self, runbook_dry_run: bool, action: Action) -> str | None:
        if self.cfg.remediation.dry_run:
            return "dry run for every remediation (remediation.dry_run)"
        if runbook_dry_run:
            return "dry run for this runbook (guards.dry_run)"
        if action.kubernetes and not kubernetes_configured(self.cfg):
            return "no Kubernetes API configured (kubernetes.host or kubernetes.kubeconfig): Kubernetes actions run dry"
        return None

    def _acquire(self, target: str, ttl: float) -> str | None:
        """Take the target's lock; None when taken, else why not."""
        now = utcnow()
        try:
            with self.store.session() as s:
                s.execute(delete(TargetLock).where(TargetLock.target == target, TargetLock.expires_at < now))
                s.add(TargetLock(target=target, holder=self.host, acquired_at=now,
                                 expires_at=now + timedelta(seconds=ttl)))
        except IntegrityError:
            with self.store.session() as s:
                lock = s.get(TargetLock, target)
                if lock is None:  # released in between: the next alert will find it free
                    return f"target {target} was locked a moment ago"
                who = f"remediation #{lock.remediation_id}" if lock.remediation_id else lock.holder
                return (f"target {target} is locked by {who} since {lock.acquired_at:%Y-%m-%d %H:%M:%S}Z "
                        f"(acting or verifying)")
        return None

    def _set_lock_owner(self, target: str, rid: int) -> None:
        with self.store.session() as s:
            s.execute(update(TargetLock).where(TargetLock.target == target).values(remediation_id=rid))

    def _release(self, target: str, rid: int | None) -> None:
        with self.store.session() as s:
            q = delete(TargetLock).where(TargetLock.target == target)
            if rid is not None:
                q = q.where((TargetLock.remediation_id == rid) | TargetLock.remediation_id.is_(None))
            s.execute(q)

    # ------------------------------------------------------------ recording

    def give_up(self, a: InboxAlert, rb: Runbook | None, attempts: int, last_error: str | None) -> int | None:
        """An alert whose processing failed `attempts` times: audited and escalated, so a person
        hears of every answered alert. None when even the record could not be written (logged)."""
        base: dict[str, Any] = {
            "inbox_id": a.id, "fingerprint": a.fingerprint, "starts_at": a.starts_at, "alertname": a.alertname,
            "labels": a.labels, "runbook": rb.path.name if rb is not None else "",
            "action": rb.remediation.action if rb is not None and rb.remediation is not None else "",
            "host": self.host, "created_at": utcnow(), "params": {}, "target": "",
        }
        reason = (f"deciding about this alert failed {attempts} times"
                  + (f" (last error: {last_error})" if last_error else "") + ": a person decides")
        try:
            return self._record(base, "error", None, reason, escalate_kind="processing_failed")
        except Exception as exc:
            log.error("inbox alert #%d: %s; recording that failed too: %s", a.id, reason, exc.__class__.__name__)
            return None

    def _record(self, base: dict[str, Any], outcome: str, guard: str | None, reason: str, *,
                escalate_kind: str | None = None) -> int:
        with self.store.session() as s:
            # The same alert stopped the same way again (Alertmanager repeats notifications): one
            # decision with a note, not a new row and a new escalation each time.
            same = s.scalar(select(Remediation.id).where(
                Remediation.fingerprint == base["fingerprint"], Remediation.starts_at == base["starts_at"],
                Remediation.action == base["action"], Remediation.acted.is_(False),
                Remediation.outcome == outcome, Remediation.guard.is_(None) if guard is None
                else Remediation.guard == guard).order_by(Remediation.id.desc()).limit(1))
            if same is not None:
                add_event(s, same, "repeated", f"delivered again (inbox #{base['inbox_id']}), stopped again: {reason}")
                return same
            r = Remediation(**base, outcome=outcome, guard=guard, reason=reason, state="done", acted=False,
                            dry_run=False, result={})
            s.add(r)
            s.flush()
            add_event(s, r.id, "decided", f"{outcome}" + (f" by guard {guard}" if guard else "") + f": {reason}")
            rid = r.id
        count(base["action"], outcome)
        log.info("remediation #%d %s %s on %s: %s", rid, base["alertname"], outcome, base["target"] or "-", reason)
        if escalate_kind:
            self._escalate(rid, escalate_kind, reason, base)
        return rid

    def _duplicate(self, rid: int, a: InboxAlert) -> int:
        with self.store.session() as s:
            add_event(s, rid, "duplicate", f"the same alert delivered again (inbox #{a.id}): no second action",
                      inbox_id=a.id)
            action = s.scalar(select(Remediation.action).where(Remediation.id == rid)) or ""
        count(action, "duplicate")
        return rid

    def _claim(self, base: dict[str, Any], dry: str | None) -> int | None:
        """Take the one slot of (fingerprint, startsAt, action); None if someone else has it."""
        try:
            with self.store.session() as s:
                r = Remediation(**base, outcome="dry_run" if dry else "running", guard=None, reason=dry or "",
                                state="running", acted=True, dry_run=dry is not None, result={},
                                started_at=utcnow())
                s.add(r)
                s.flush()
                add_event(s, r.id, "decided", "dry run: " + dry if dry else "every guard passed: acting")
                return r.id
        except IntegrityError:
            return None

    def _finish_dry_run(self, rid: int, action: Action, params: Any, reason: str) -> None:
        description = action.describe(params)
        with self.store.session() as s:
            s.execute(update(Remediation).where(Remediation.id == rid).values(
                state="done", finished_at=utcnow(), result={"would": description}))
            add_event(s, rid, "dry_run", description)
        count(action.name, "dry_run")
        log.info("remediation #%d dry run: %s (%s)", rid, description, reason)

    def _act(self, rid: int, a: InboxAlert, action: Action, params: Any, target: str, verify_query: str | None,
             window: float) -> None:
        silence_for = ACTION_BUDGET + window
        ctx = ActionContext(cfg=self.cfg, remediation_id=rid, alertname=a.alertname, labels=a.labels,
                            annotations=a.annotations, silence_seconds=silence_for, store=self.store)
        silence_id = None
        if action.name not in ("notify", "alertmanager.silence") and self.cfg.endpoints.alertmanager is not None:
            try:
                silence_id = create_silence(self.cfg, a.labels, silence_for,
                                            f"sre remediation #{rid}: {action.name} on {target}")
                self._event(rid, "silenced", f"alert silenced for {silence_for:g}s (silence {silence_id})",
                            silence_id=silence_id)
            except ActionError as exc:
                self._event(rid, "silence_failed", str(exc))
        t0 = utcnow()
        refused = False
        try:
            result = action.run(params, ctx)
            error = None
        except ActionError as exc:
            result, error = {}, str(exc)
            refused = isinstance(exc, ActionRefused)
        except Exception as exc:  # a client library's own error: still a failed action, never a dead worker
            log.exception("remediation #%d: %s raised", rid, action.name)
            result, error, refused = {}, f"{exc.__class__.__name__}: {exc}", False
        finished = utcnow()
        silence_id = silence_id or result.get("silence_id")
        if error is not None:
            with self.store.session() as s:
                s.execute(update(Remediation).where(Remediation.id == rid).values(
                    outcome="failed", state="done", reason=("refused: " if refused else "") + error,
                    finished_at=finished, silence_id=silence_id, result={"error": error}))
                add_event(s, rid, "failed", error, seconds=(finished - t0).total_seconds())
            count(action.name, "failed")
            log.warning("remediation #%d %s failed: %s", rid, action.name, error)
            if silence_id:
                self._expire(rid, silence_id, "the action failed")
            self._release(target, rid)
            self._escalate(rid, "action_failed", error)
            self._check_failures()
            self._annotate(rid)
            return
        verifying = verify_query is not None
        with self.store.session() as s:
            values: dict[str, Any] = {"outcome": "executed", "finished_at": finished, "result": result,
                                      "silence_id": silence_id, "state": "verifying" if verifying else "done"}
            if verifying:
                values.update(verify_query=verify_query, verify_deadline=finished + timedelta(seconds=window),
                              verify_next_at=finished)
            s.execute(update(Remediation).where(Remediation.id == rid).values(**values))
            add_event(s, rid, "executed", f"{action.name} done in {(finished - t0).total_seconds():.3f}s",
                      result=result)
        count(action.name, "executed")
        log.info("remediation #%d %s executed on %s", rid, action.name, target)
        if not verifying:
            self._release(target, rid)
            self._annotate(rid)

    # ------------------------------------------------------------ verification

    def due_verifications(self, limit: int = 20) -> list[int]:
        """Claim the verifications due now (pushing their next look ahead) and return their ids."""
        now = utcnow()
        with self.store.session() as s:
            q = (select(Remediation).where(Remediation.state == "verifying", Remediation.verify_next_at <= now)
                 .order_by(Remediation.verify_next_at).limit(limit))
            if self.postgres:
                q = q.with_for_update(skip_locked=True)
            rows = list(s.scalars(q))
            for r in rows:
                assert r.verify_deadline is not None and r.finished_at is not None
                window = (r.verify_deadline - r.finished_at).total_seconds()
                r.verify_next_at = now + timedelta(seconds=poll_interval(window))
            return [r.id for r in rows]

    def verify(self, rid: int) -> str:
        """One look at a remediation's verification: 'verified', 'verify_failed' or 'pending'."""
        with self.store.session() as s:
            r = s.get(Remediation, rid)
            if r is None or r.state != "verifying":
                return "gone"
            query, deadline, action, target, silence_id = (r.verify_query or "", r.verify_deadline, r.action,
                                                           r.target, r.silence_id)
        error = None
        try:
            ok = holds(self.cfg, query)
        except VerifyError as exc:
            ok, error = False, str(exc)
        now = utcnow()
        if ok:
            with self.store.session() as s:
                s.execute(update(Remediation).where(Remediation.id == rid, Remediation.state == "verifying")
                          .values(state="verified", verified_at=now))
                add_event(s, rid, "verified", f"verification holds: {query}")
            count(action, "verified")
            self._release(target, rid)
            log.info("remediation #%d verified", rid)
            self._annotate(rid)
            return "verified"
        if error is not None:
            self._event(rid, "verify_error", error)
        assert deadline is not None
        if now < deadline:
            return "pending"
        reason = f"verification did not hold within the window: {query}" + (f" (last error: {error})" if error else "")
        with self.store.session() as s:
            s.execute(update(Remediation).where(Remediation.id == rid, Remediation.state == "verifying")
                      .values(state="verify_failed", reason=reason))
            add_event(s, rid, "verify_failed", reason)
        count(action, "verify_failed")
        log.warning("remediation #%d: %s", rid, reason)
        if silence_id:
            self._expire(rid, silence_id, "the verification failed")
        self._release(target, rid)
        self._escalate(rid, "verify_failed", reason)
        self._check_failures()
        self._annotate(rid)
        return "verify_failed"

    # ------------------------------------------------------------ helpers

    def _event(self, rid: int, kind: str, message: str, **data: Any) -> None:
        with self.store.session() as s:
            add_event(s, rid, kind, message, **data)

    def _expire(self, rid: int, silence_id: str, why: str) -> None:
        try:
            expired = expire_silence(self.cfg, silence_id)
            self._event(rid, "silence_expired", f"silence {silence_id} expired: {why}" if expired
                        else f"silence {silence_id} was already gone ({why})", silence_id=silence_id)
        except ActionError as exc:
            self._event(rid, "silence_expire_failed", f"{why}; expiring silence {silence_id} failed: {exc}")

    def _escalate(self, rid: int, kind: str, reason: str, base: dict[str, Any] | None = None) -> None:
        with self.store.session() as s:
            r = s.get(Remediation, rid)
            if r is None:
                return
            message = {"kind": kind, "remediation_id": rid, "alertname": r.alertname, "labels": r.labels,
                       "runbook": r.runbook, "action": r.action, "target": r.target, "reason": reason,
                       "created_by": "sre"}
        message.update(self._graph(rid, message))
        try:
            sent = escalate(self.cfg, message)
            self._event(rid, "escalated", f"{kind}: {sent}")
        except ActionError as exc:
            self._event(rid, "escalation_failed", f"{kind}: {exc}")
            log.error("remediation #%d needs a person (%s): %s; escalation failed: %s", rid, kind, reason, exc)

    def _annotate(self, rid: int) -> None:
        """Queue the Grafana annotation of a finished remediation, from its action to its verification.

        Only queued here: the worker sends the outbox after its round (annotate.flush), so a slow
        Grafana never holds up deciding about the next alert."""
        with self.store.session() as s:
            r = s.get(Remediation, rid)
            if r is None or not r.acted or r.dry_run or r.started_at is None:
                return
            outcome = r.state if r.state in ("verified", "verify_failed", "resolved") else r.outcome
            end = r.verified_at or r.resolved_at or (utcnow() if r.state == "verify_failed" else r.finished_at)
            text = (f"sre remediation #{r.id} {r.alertname}: {r.action} on {r.target}: {outcome}"
                    + (f" ({r.reason})" if r.reason and outcome != "verified" else ""))
            tags = [service_of(r.labels or {}), r.alertname, outcome]
            start = r.started_at
        if queue_annotation(self.cfg, self.store, kind="remediation", text=text, tags=tags, start=start, end=end):
            self.annotated = True

    def _graph(self, rid: int, message: dict[str, Any]) -> dict[str, Any]:
        """The escalation's graph (PNG, base64) and its link, with the Markdown summary that shows it."""
        path = f"/api/remediations/{rid}/graph.png"
        url = (self.cfg.remediation.public_url or "").rstrip("/") + path
        out: dict[str, Any] = {"graph_url": url}
        try:
            g = graph.render(self.cfg, self.store, rid)
            out.update(graph_png_base64=base64.b64encode(g.png).decode(), graph_series=g.summary())
        except graph.GraphError as exc:  # the escalation goes out anyway, saying why it has no graph
            out.update(graph_error=str(exc))
            url = ""
        out["summary_markdown"] = graph.markdown(message, url or None)
        return out

    def _check_failures(self) -> None:
        with self.store.session() as s:
            reason = breaker.trip_if_needed(s, self.cfg.remediation.breaker, before_action=False)
        if reason:
            log.error("remediation circuit breaker is open: %s", reason)
