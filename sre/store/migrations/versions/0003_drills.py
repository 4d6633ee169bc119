"""drill reports and the drill lock

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sre.store.base import JsonDoc, UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drill_reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("cluster", sa.String(100), nullable=False),
        sa.Column("from_region", sa.String(50), nullable=False),
        sa.Column("to_region", sa.String(50), nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("failback", sa.Boolean, nullable=False),
        sa.Column("environment", sa.String(20), nullable=False),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("actor", sa.String(200)),
        sa.Column("host", sa.String(200)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started", UtcDateTime, nullable=False),
        sa.Column("finished", UtcDateTime),
        sa.Column("rto_seconds", sa.Float),
        sa.Column("rpo_rows", sa.Integer),
        sa.Column("rpo_bytes", sa.Integer),
        sa.Column("report", JsonDoc, nullable=False),
        sa.Column("markdown", sa.Text, nullable=False),
        sa.Column("png", sa.LargeBinary),
        sa.Column("report_dir", sa.Text),
    )
    op.create_index("ix_drill_reports_cluster_started", "drill_reports", ["cluster", "started"])
    op.create_table(
        "drill_locks",
        sa.Column("scope", sa.String(100), primary_key=True),
        sa.Column("drill_id", sa.Integer),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("acquired", UtcDateTime, nullable=False),
        sa.Column("expires", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("drill_locks")
    op.drop_table("drill_reports")
