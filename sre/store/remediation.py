"""Remediation state: the alert inbox, one row per decision, its timeline, target locks, the breaker.

The inbox is written by the webhook before it answers; the worker claims its rows. A decision
that takes an action (or its dry run) holds the one slot of (fingerprint, starts_at, action):
a partial unique index, so two deliveries or two replicas never run one fix twice.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from sre.store.base import Base, JsonDoc, UtcDateTime, utcnow

# Column sizes the webhook payload model also enforces, so a valid payload always fits.
FINGERPRINT_LEN = 128
SHORT_TEXT_LEN = 200
TARGET_LEN = 500


def fit(value: str, limit: int) -> str:
    """`value` when it fits `limit` characters; else its start and a hash of the whole, so two
    long values stay distinct (a target keys locks and cooldowns) and the row is never refused."""
    if len(value) <= limit:
        return value
    suffix = "...sha256:" + hashlib.sha256(value.encode()).hexdigest()[:16]
    return value[:limit - len(suffix)] + suffix


class InboxRow(Base):
    __tablename__ = "alert_inbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    fingerprint: Mapped[str] = mapped_column(String(FINGERPRINT_LEN))
    status: Mapped[str] = mapped_column(String(10))  # firing | resolved
    alertname: Mapped[str] = mapped_column(Text, default="")
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    labels: Mapped[dict[str, str]] = mapped_column(JsonDoc, default=dict)
    annotations: Mapped[dict[str, str]] = mapped_column(JsonDoc, default=dict)
    generator_url: Mapped[str] = mapped_column(Text, default="")
    group_key: Mapped[str] = mapped_column(Text, default="")
    receiver: Mapped[str] = mapped_column(Text, default="")
    # pending -> claimed -> done; a claim older than the lease is taken again (a crashed worker).
    state: Mapped[str] = mapped_column(String(10), default="pending")
    claimed_by: Mapped[str | None] = mapped_column(String(SHORT_TEXT_LEN))
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    outcome: Mapped[str | None] = mapped_column(String(30))  # no_runbook | resolved | decided | error
    remediation_id: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        # Only rows still to process: most rows are done (stored done, or processed) and need no
        # index entry. Queries repeat `state <> 'done'` so SQLite sees it may use this index.
        Index("ix_alert_inbox_state_id", "state", "id", sqlite_where=text("state <> 'done'"),
              postgresql_where=text("state <> 'done'")),
        # "Was this alert already seen resolved?" before any action; firing rows (most) skip it.
        Index("ix_alert_inbox_resolved_fingerprint", "fingerprint", sqlite_where=text("status = 'resolved'"),
              postgresql_where=text("status = 'resolved'")),
    )


class Remediation(Base):
    """One decision about one alert: acted, dry run, stopped by a guard, failed or escalated."""

    __tablename__ = "remediations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    inbox_id: Mapped[int | None] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(String(FINGERPRINT_LEN))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    alertname: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[dict[str, str]] = mapped_column(JsonDoc, default=dict)
    runbook: Mapped[str] = mapped_column(Text, default="")
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(TARGET_LEN), default="")
    params: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    # executed | dry_run | skipped | refused | failed | escalated | interrupted
    outcome: Mapped[str] = mapped_column(String(20))
    guard: Mapped[str | None] = mapped_column(String(30))  # the guard that stopped it
    reason: Mapped[str] = mapped_column(Text, default="")
    # running | verifying | verified | verify_failed | resolved | done
    state: Mapped[str] = mapped_column(String(20), default="done")
    acted: Mapped[bool] = mapped_column(Boolean, default=False)  # holds the (fingerprint, starts_at, action) slot
    result: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    silence_id: Mapped[str | None] = mapped_column(String(100))
    verify_query: Mapped[str | None] = mapped_column(Text)
    verify_deadline: Mapped[datetime | None] = mapped_column(UtcDateTime)
    verify_next_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    host: Mapped[str | None] = mapped_column(String(SHORT_TEXT_LEN))

    __table_args__ = (
        Index("uq_remediations_once", "fingerprint", "starts_at", "action", unique=True,
              sqlite_where=text("acted"), postgresql_where=text("acted")),
        Index("ix_remediations_target_created", "target", "created_at"),
        Index("ix_remediations_fingerprint", "fingerprint"),
        Index("ix_remediations_state", "state"),
    )


class RemediationEvent(Base):
    """The timeline of one remediation: decided, silenced, executed, each verification, escalated."""

    __tablename__ = "remediation_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    remediation_id: Mapped[int] = mapped_column(ForeignKey("remediations.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(30))
    message: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)


class TargetLock(Base):
    """Held while one remediation acts on and verifies a target; expires in case its holder died."""

    __tablename__ = "remediation_locks"

    target: Mapped[str] = mapped_column(String(TARGET_LEN), primary_key=True)
    remediation_id: Mapped[int | None] = mapped_column(Integer)
    holder: Mapped[str] = mapped_column(String(SHORT_TEXT_LEN), default="")
    acquired_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class BreakerRow(Base):
    """The global circuit breaker: one row (id 1). Opened by the worker, closed only by a person."""

    __tablename__ = "remediation_breaker"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    open: Mapped[bool] = mapped_column(Boolean, default=False)
    opened_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(Text, default="")
    reset_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reset_by: Mapped[str | None] = mapped_column(String(SHORT_TEXT_LEN))
