"""maintenance windows: pauses of remediation, for everything or one scope

Revision ID: 0005_maintenance
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sre.store.base import UtcDateTime

revision = "0005_maintenance"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "maintenance_windows",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("scope_kind", sa.String(20), nullable=False),
        sa.Column("scope_value", sa.String(200), nullable=False),
        sa.Column("starts_at", UtcDateTime, nullable=False),
        sa.Column("ends_at", UtcDateTime, nullable=False),
        sa.Column("ended_at", UtcDateTime),
        sa.Column("ended_by", sa.String(200)),
    )
    op.create_index("ix_maintenance_windows_ends_at", "maintenance_windows", ["ends_at"])


def downgrade() -> None:
    op.drop_table("maintenance_windows")
