"""remediation inbox, remediations, their events, target locks and the circuit breaker

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sre.store.base import JsonDoc, UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_inbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("alertname", sa.Text, nullable=False),
        sa.Column("starts_at", UtcDateTime, nullable=False),
        sa.Column("ends_at", UtcDateTime),
        sa.Column("labels", JsonDoc, nullable=False),
        sa.Column("annotations", JsonDoc, nullable=False),
        sa.Column("generator_url", sa.Text, nullable=False),
        sa.Column("group_key", sa.Text, nullable=False),
        sa.Column("receiver", sa.Text, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("claimed_by", sa.String(200)),
        sa.Column("claimed_at", UtcDateTime),
        sa.Column("processed_at", UtcDateTime),
        sa.Column("outcome", sa.String(30)),
        sa.Column("remediation_id", sa.Integer),
        sa.Column("attempts", sa.Integer, nullable=False),
    )
    op.create_index("ix_alert_inbox_state_id", "alert_inbox", ["state", "id"],
                    sqlite_where=sa.text("state <> 'done'"), postgresql_where=sa.text("state <> 'done'"))
    op.create_index("ix_alert_inbox_resolved_fingerprint", "alert_inbox", ["fingerprint"],
                    sqlite_where=sa.text("status = 'resolved'"), postgresql_where=sa.text("status = 'resolved'"))
    op.create_table(
        "remediations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("inbox_id", sa.Integer),
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("starts_at", UtcDateTime, nullable=False),
        sa.Column("alertname", sa.Text, nullable=False),
        sa.Column("labels", JsonDoc, nullable=False),
        sa.Column("runbook", sa.Text, nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("target", sa.String(500), nullable=False),
        sa.Column("params", JsonDoc, nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("guard", sa.String(30)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("acted", sa.Boolean, nullable=False),
        sa.Column("result", JsonDoc, nullable=False),
        sa.Column("silence_id", sa.String(100)),
        sa.Column("verify_query", sa.Text),
        sa.Column("verify_deadline", UtcDateTime),
        sa.Column("verify_next_at", UtcDateTime),
        sa.Column("started_at", UtcDateTime),
        sa.Column("finished_at", UtcDateTime),
        sa.Column("verified_at", UtcDateTime),
        sa.Column("resolved_at", UtcDateTime),
        sa.Column("host", sa.String(200)),
    )
    # One remediation per (fingerprint, startsAt, action): decisions that only record a guard
    # stopping an action do not take the slot.
    op.create_index("uq_remediations_once", "remediations", ["fingerprint", "starts_at", "action"], unique=True,
                    sqlite_where=sa.text("acted"), postgresql_where=sa.text("acted"))
    op.create_index("ix_remediations_target_created", "remediations", ["target", "created_at"])
    op.create_index("ix_remediations_fingerprint", "remediations", ["fingerprint"])
    op.create_index("ix_remediations_state", "remediations", ["state"])
    op.create_table(
        "remediation_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("remediation_id", sa.Integer, sa.ForeignKey("remediations.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("data", JsonDoc, nullable=False),
    )
    op.create_index("ix_remediation_events_remediation_id", "remediation_events", ["remediation_id"])
    op.create_table(
        "remediation_locks",
        sa.Column("target", sa.String(500), primary_key=True),
        sa.Column("remediation_id", sa.Integer),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("acquired_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
    )
    breaker = op.create_table(
        "remediation_breaker",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("open", sa.Boolean, nullable=False),
        sa.Column("opened_at", UtcDateTime),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("reset_at", UtcDateTime),
        sa.Column("reset_by", sa.String(200)),
    )
    op.bulk_insert(breaker, [{"id": 1, "open": False, "reason": ""}])


def downgrade() -> None:
    op.drop_table("remediation_breaker")
    op.drop_table("remediation_locks")
    op.drop_table("remediation_events")
    op.drop_table("remediations")
    op.drop_table("alert_inbox")
