"""Grafana annotations of what sre did: remediations, drills, applies, deploys. Best-effort, never lost.

`annotate` writes the annotation to the store's outbox first, then tries to send the outbox at
once (one try, a short timeout). Grafana down, slow or refusing never fails the caller: the rows
stay and `flush` sends them later, oldest first (the remediation worker calls it every
FLUSH_EVERY seconds; every new annotation tries the backlog too). A sender claims a row before
posting it, so two replicas never send one twice; a claim older than CLAIM_LEASE is taken again.

Each annotation is an organization annotation (no dashboard) tagged `sre`, its kind, the service
and, for remediations, the alert name: the shipped dashboards show them with a tag query.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select, update

from sre.adapters.grafana import Grafana, RetryPolicy
from sre.errors import SreError
from sre.store import open_store
from sre.store.annotations import AnnotationRow
from sre.store.base import utcnow
from sre.telemetry import get_logger

if TYPE_CHECKING:
    from sre.config import SreConfig
    from sre.store import Store

log = get_logger("sre.annotations")

TAG = "sre"
SEND_TIMEOUT = 5.0
FLUSH_EVERY = 30.0
CLAIM_LEASE = timedelta(minutes=2)
BATCH = 50


def epoch_ms(t: datetime | float) -> int:
    return int((t.timestamp() if isinstance(t, datetime) else t) * 1000)


def tags_for(kind: str, *more: str | None) -> list[str]:
    """`sre`, the kind, then the other tags given (service, alert name), without blanks or repeats."""
    out: list[str] = []
    for t in (TAG, kind, *more):
        if t and t not in out:
            out.append(t)
    return out


def service_of(labels: dict[str, str]) -> str:
    """The service an alert is about, as a tag: its service, deployment, job or cluster label."""
    for name in ("service", "deployment", "job", "cluster"):
        if labels.get(name):
            return labels[name]
    return ""


def annotate(cfg: SreConfig, store: Store, *, kind: str, text: str, tags: list[str], start: datetime | float,
             end: datetime | float | None = None) -> int | None:
    """Queue one annotation and try to send the outbox now; returns its outbox id (None: no Grafana)."""
    rid = queue(cfg, store, kind=kind, text=text, tags=tags, start=start, end=end)
    if rid is not None:
        flush(cfg, store)
    return rid


def queue(cfg: SreConfig, store: Store, *, kind: str, text: str, tags: list[str], start: datetime | float,
          end: datetime | float | None = None) -> int | None:
    """Queue one annotation in the outbox only; `flush` sends it. Never raises."""
    if cfg.endpoints.grafana is None:
        return None
    try:
        with store.session() as s:
            row = AnnotationRow(created_at=utcnow(), kind=kind, time_ms=epoch_ms(start),
                                time_end_ms=epoch_ms(end) if end is not None else None, tags=tags_for(kind, *tags),
                                text=text or kind, attempts=0, last_error="")
            s.add(row)
            s.flush()
            rid = row.id
    except Exception:  # the store failing must not fail a remediation or a drill either
        log.exception("annotation %s not queued", kind)
        return None
    return rid


def pending(store: Store) -> int:
    """Annotations still waiting for Grafana."""
    with store.session() as s:
        return int(s.scalar(select(func.count()).select_from(AnnotationRow).where(AnnotationRow.sent_at.is_(None)))
                   or 0)


def flush(cfg: SreConfig, store: Store, *, limit: int = BATCH) -> int:
    """Send queued annotations, oldest first, until one fails; returns how many were sent. Never raises."""
    if cfg.endpoints.grafana is None:
        return 0
    try:
        return _flush(cfg, store, limit)
    except Exception:
        log.exception("sending annotations failed; they stay queued")
        return 0


def _claim(store: Store, me: str, limit: int) -> list[AnnotationRow]:
    now = utcnow()
    with store.session() as s:
        ids = list(s.scalars(select(AnnotationRow.id).where(
            AnnotationRow.sent_at.is_(None),
            or_(AnnotationRow.claimed_at.is_(None), AnnotationRow.claimed_at < now - CLAIM_LEASE))
            .order_by(AnnotationRow.id).limit(limit)))
        if not ids:
            return []
        # Conditional on the row still being free: of two senders, one gets each row.
        s.execute(update(AnnotationRow).where(
            AnnotationRow.id.in_(ids), AnnotationRow.sent_at.is_(None),
            or_(AnnotationRow.claimed_at.is_(None), AnnotationRow.claimed_at < now - CLAIM_LEASE))
            .values(claimed_by=me, claimed_at=now))
        return list(s.scalars(select(AnnotationRow).where(AnnotationRow.id.in_(ids), AnnotationRow.claimed_by == me,
                                                          AnnotationRow.sent_at.is_(None))
                              .order_by(AnnotationRow.id)))


def _flush(cfg: SreConfig, store: Store, limit: int) -> int:
    me = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"  # the worker and a job may both send
    rows = _claim(store, me, limit)
    if not rows:
        return 0
    ep = cfg.endpoints.grafana
    assert ep is not None
    sent = 0
    try:
        # One try each: the outbox is the retry, and a caller must not wait on a down Grafana.
        grafana = Grafana.from_config(ep.model_copy(update={"timeout": min(ep.timeout, SEND_TIMEOUT)}),
                                      retry=RetryPolicy(attempts=1))
        for i, row in enumerate(rows):
            gid = grafana.add_annotation(time_ms=row.time_ms, time_end_ms=row.time_end_ms, tags=list(row.tags),
                                         text=row.text)
            with store.session() as s:
                s.execute(update(AnnotationRow).where(AnnotationRow.id == row.id).values(
                    sent_at=utcnow(), grafana_id=gid, attempts=row.attempts + 1, claimed_by=None, claimed_at=None))
            sent = i + 1
    except SreError as exc:
        failed = rows[sent]
        log.warning("annotation #%d not sent (%d left queued): %s", failed.id, len(rows) - sent, exc)
        with store.session() as s:
            s.execute(update(AnnotationRow).where(AnnotationRow.id == failed.id).values(
                attempts=failed.attempts + 1, last_error=str(exc)[:500]))
    finally:
        rest = [r.id for r in rows[sent:]]
        if rest:  # give back what was not sent, so the next flush (here or elsewhere) takes it at once
            with store.session() as s:
                s.execute(update(AnnotationRow).where(AnnotationRow.id.in_(rest), AnnotationRow.claimed_by == me)
                          .values(claimed_by=None, claimed_at=None))
    return sent


def annotate_apply(cfg: SreConfig, what: str, changed: int, detail: str, started: float) -> None:
    """One annotation for a provisioning apply that changed something (from the CLI; never raises)."""
    if cfg.endpoints.grafana is None or changed == 0:
        return
    try:
        store = open_store(cfg)
    except SreError as exc:
        log.warning("apply annotation not queued: %s", exc)
        return
    try:
        annotate(cfg, store, kind="apply", text=f"sre {what} apply: {changed} change(s): {detail}", tags=[what],
                 start=started, end=time.time())
    finally:
        store.dispose()


def annotate_deploy(cfg: SreConfig, store: Store, *, service: str, version: str, environment: str,
                    text: str = "") -> int | None:
    """A deploy of `service` at `version`, marked now (the pipeline's production step)."""
    now = time.time()
    return annotate(cfg, store, kind="deploy", text=text or f"deploy {service} {version} to {environment}",
                    tags=[service, f"version:{version}", environment], start=now)
