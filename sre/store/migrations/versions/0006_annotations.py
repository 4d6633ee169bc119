"""annotation outbox: Grafana annotations written first, sent when Grafana answers

Revision ID: 0006_annotations
Revises: 0005_maintenance
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sre.store.base import JsonDoc, UtcDateTime

revision = "0006_annotations"
down_revision = "0005_maintenance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "annotation_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("time_ms", sa.BigInteger, nullable=False),
        sa.Column("time_end_ms", sa.BigInteger),
        sa.Column("tags", JsonDoc, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("claimed_by", sa.String(200)),
        sa.Column("claimed_at", UtcDateTime),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("sent_at", UtcDateTime),
        sa.Column("grafana_id", sa.BigInteger),
    )
    op.create_index("ix_annotation_outbox_pending", "annotation_outbox", ["id"],
                    sqlite_where=sa.text("sent_at IS NULL"), postgresql_where=sa.text("sent_at IS NULL"))


def downgrade() -> None:
    op.drop_table("annotation_outbox")
