"""drill reports and the drill lock (issue: failover drills)

Revision ID: 0003
Revises: 0002
Placeholder in the chain, filled in by the feature that owns these tables.
"""

from __future__ import annotations

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
