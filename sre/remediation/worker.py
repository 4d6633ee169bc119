"""The remediation worker: a thread that claims inbox rows, decides about each, and runs verifications.

Claims are leases: a row claimed by a worker that died (SIGKILL, a lost node) is taken again once
its lease is over, so an answered alert is always processed; the remediation's unique slot makes
that at most one action. PostgreSQL claims with FOR UPDATE SKIP LOCKED, so several replicas share
the inbox; on SQLite one process owns the store, and on start it takes back every claim at once.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, exists, literal_column, select, update

from sre import annotate
from sre.content import runbooks_dir
from sre.remediation import breaker, windows
from sre.remediation.engine import Engine, InboxAlert
from sre.remediation.routing import shared_runbooks
from sre.store.base import utcnow
from sre.store.remediation import InboxRow, Remediation
from sre.telemetry import get_logger

if TYPE_CHECKING:
    from sre.config import SreConfig
    from sre.remediation.runbook import Runbook
    from sre.store import Store

log = get_logger("sre.remediation.worker")

BATCH = 200
TRIAGE_BATCH = 1000  # rows one triage statement closes at most: bounds how long it holds SQLite's write lock
# Pause between two busy rounds: in a storm the webhook's writes (answering Alertmanager) come
# first, and acting a few milliseconds later costs nothing.
BUSY_PAUSE = 0.02
BREAKER_REFRESH = 1.0
STALE_CHECK = 30.0  # seconds between looks for claims whose lease ran out
# Implied by every state the worker looks for; written out, as a literal, so SQLite and PostgreSQL
# (even with a generic plan) know the partial (state, id) index serves the query.
OPEN = InboxRow.state != literal_column("'done'")
LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 3


class RemediationWorker:
    def __init__(self, cfg: SreConfig, store: Store, *, poll_interval: float = 0.25) -> None:
        self.cfg = cfg
        self.store = store
        self.poll_interval = poll_interval
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.engine = Engine(cfg, store, self.name)
        self.runbooks = shared_runbooks(runbooks_dir(cfg))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.postgres = store.dialect == "postgresql"
        self._breaker_read = 0.0
        self._stale_checked = 0.0
        self._errors: dict[int, str] = {}  # inbox id -> last error deciding about it
        self._annotations_sent = 0.0

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if not self.cfg.remediation.enabled:
            log.info("remediation disabled (remediation.enabled: false): alerts are stored, not acted on")
            return
        if not self.postgres:
            self.release_claims()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="sre-remediation", daemon=True)
        self._thread.start()
        log.info("remediation worker started (%s, runbooks in %s%s)", self.name, self.runbooks.directory,
                 ", dry run" if self.cfg.remediation.dry_run else "")

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                done = self.run_once()
            except Exception:
                log.exception("remediation worker: unexpected error; going on")
                done = 0
            self._stop.wait(BUSY_PAUSE if done else self.poll_interval)

    # ------------------------------------------------------------ work

    def run_once(self) -> int:
        """Process one batch of inbox rows and the verifications due; returns how much was done."""
        if time.monotonic() - self._breaker_read > BREAKER_REFRESH:
            breaker.status(self.store, self.cfg.remediation.breaker)  # keeps the gauge right across replicas
            windows.refresh_gauge(self.store, self.cfg)  # and sre_remediation_paused (windows end by themselves)
            self._breaker_read = time.monotonic()
        triaged = self.triage()
        alerts = self.claim()
        for i, a in enumerate(alerts):
            if self._stop.is_set():
                self._unclaim([x.id for x in alerts[i:]])
                break
            self._process(a, self.runbooks.get(a.alertname) if a.status == "firing" else None)
        verified = 0
        for rid in self.engine.due_verifications():
            self.engine.verify(rid)
            verified += 1
        if self.engine.annotated or time.monotonic() - self._annotations_sent > annotate.FLUSH_EVERY:
            # New annotations at once; the backlog (Grafana was down) every FLUSH_EVERY seconds.
            self.engine.annotated = False
            self._annotations_sent = time.monotonic()
            annotate.flush(self.cfg, self.store)
        return triaged + len(alerts) + verified

    def triage(self) -> int:
        """Close, in the database, the inbox rows that need no decision; returns how many.

        In an alert storm most alerts have no automated runbook, and most resolved alerts have
        nothing open: two UPDATEs close them without a row reaching Python. What is left (firing
        alerts with automation, resolved alerts with an open remediation) goes through claim().
        """
        automated, documented = self.runbooks.names()
        now = utcnow()
        window = (select(InboxRow.id).where(InboxRow.state == "pending", OPEN).order_by(InboxRow.id)
                  .limit(TRIAGE_BATCH))
        if self.postgres:
            window = window.with_for_update(skip_locked=True)
        in_window = InboxRow.id.in_(window.scalar_subquery())
        open_remediation = exists().where(Remediation.fingerprint == InboxRow.fingerprint,
                                          Remediation.acted.is_(True), Remediation.resolved_at.is_(None))
        with self.store.session() as s:
            unrouted = s.execute(
                update(InboxRow).where(in_window, InboxRow.status == "firing", InboxRow.alertname.not_in(automated))
                .values(state="done", processed_at=now, outcome=case((InboxRow.alertname.in_(documented),
                                                                      "no_automation"), else_="no_runbook")))
            resolved = s.execute(
                update(InboxRow).where(in_window, InboxRow.status == "resolved", ~open_remediation)
                .values(state="done", processed_at=now, outcome="resolved"))
            return int(unrouted.rowcount or 0) + int(resolved.rowcount or 0)  # type: ignore[attr-defined]

    def release_claims(self) -> int:
        """Give back every claim (SQLite: this process is the only worker, so any claim is a dead one's)."""
        with self.store.session() as s:
            n = s.execute(update(InboxRow).where(InboxRow.state == "claimed", OPEN)
                          .values(state="pending", claimed_by=None, claimed_at=None)).rowcount  # type: ignore[attr-defined]
        if n:
            log.warning("took back %d inbox alert(s) claimed before a restart", n)
        return int(n or 0)

    def claim(self, limit: int = BATCH) -> list[InboxAlert]:
        """Claim pending alerts that need a decision (triage() closes the others)."""
        now = utcnow()
        automated, _ = self.runbooks.names()
        # Two queries, each served by the partial (state, id) index: an OR of both made SQLite scan
        # the whole inbox on every round, and the inbox grows by every alert ever received.
        pending = (select(InboxRow.id).where(InboxRow.state == "pending", OPEN,
                                             (InboxRow.status == "resolved") | InboxRow.alertname.in_(automated))
                   .order_by(InboxRow.id).limit(limit))
        stale = None
        if time.monotonic() - self._stale_checked > STALE_CHECK:
            self._stale_checked = time.monotonic()
            stale = (select(InboxRow.id).where(InboxRow.state == "claimed", OPEN, InboxRow.claimed_at < now - LEASE)
                     .order_by(InboxRow.id).limit(limit))
        with self.store.session() as s:
            ids: list[int] = []
            for q in (pending, stale):
                if q is None:
                    continue
                if self.postgres:
                    q = q.with_for_update(skip_locked=True)
                ids += s.scalars(q)
            if not ids:
                return []
            s.execute(update(InboxRow).where(InboxRow.id.in_(ids))
                      .values(state="claimed", claimed_by=self.name, claimed_at=now, attempts=InboxRow.attempts + 1))
            rows = s.execute(select(InboxRow.id, InboxRow.fingerprint, InboxRow.status, InboxRow.alertname,
                                    InboxRow.starts_at, InboxRow.labels, InboxRow.annotations, InboxRow.attempts)
                             .where(InboxRow.id.in_(ids)).order_by(InboxRow.id)).all()
        out = []
        for r in rows:
            alert = InboxAlert(r.id, r.fingerprint, r.status, r.alertname, r.starts_at, r.labels or {},
                               r.annotations or {})
            if r.attempts > MAX_ATTEMPTS:
                rb = self.runbooks.get(r.alertname) if r.status == "firing" else None
                rid = self.engine.give_up(alert, rb, MAX_ATTEMPTS, self._errors.pop(r.id, None))
                self._finish([r.id], "error", rid, state="failed")
                log.error("inbox alert #%d failed %d times; audited and escalated for a person", r.id, MAX_ATTEMPTS)
                continue
            out.append(alert)
        return out

    def _process(self, a: InboxAlert, rb: Runbook | None) -> None:
        try:
            outcome, rid = self.engine.handle(a, rb)
        except Exception as exc:
            log.exception("inbox alert #%d (%s): deciding failed; it will be tried again", a.id, a.alertname)
            # Kept for the audit record if it keeps failing (this process only: another replica's
            # claim of the row says "failed N times" without the error).
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            self._errors[a.id] = f"{exc.__class__.__name__}: {first}"
            self._unclaim([a.id])
            return
        self._errors.pop(a.id, None)
        self._finish([a.id], outcome, rid)

    def _finish(self, ids: list[int], outcome: str, rid: int | None, state: str = "done") -> None:
        values: dict[str, Any] = {"state": state, "processed_at": utcnow(), "outcome": outcome, "remediation_id": rid}
        with self.store.session() as s:
            s.execute(update(InboxRow).where(InboxRow.id.in_(ids)).values(**values))

    def _unclaim(self, ids: list[int]) -> None:
        if ids:
            with self.store.session() as s:
                s.execute(update(InboxRow).where(InboxRow.id.in_(ids), InboxRow.claimed_by == self.name)
                          .values(state="pending", claimed_by=None, claimed_at=None))
