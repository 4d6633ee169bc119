"""job slots: the last slot each scheduled job ran, claimed once across replicas

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sre.store.base import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_slots",
        sa.Column("job", sa.String(100), primary_key=True),
        sa.Column("slot_ms", sa.BigInteger, nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("claimed_at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("job_slots")
