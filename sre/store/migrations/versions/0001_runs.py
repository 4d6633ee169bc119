"""runs and check results

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sre.store.base import JsonDoc, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("target", sa.String(200)),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("started", UtcDateTime, nullable=False),
        sa.Column("finished", UtcDateTime),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("summary", JsonDoc, nullable=False),
        sa.Column("host", sa.String(200)),
    )
    op.create_index("ix_runs_kind", "runs", ["kind"])
    op.create_index("ix_runs_kind_started", "runs", ["kind", "started"])
    op.create_table(
        "check_results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE")),
        sa.Column("check", sa.String(100), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("observed", JsonDoc, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_check_results_run_id", "check_results", ["run_id"])
    op.create_index("ix_check_results_check_target_at", "check_results", ["check", "target", "at"])


def downgrade() -> None:
    op.drop_table("check_results")
    op.drop_table("runs")
