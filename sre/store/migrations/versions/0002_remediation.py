"""remediation inbox, remediations, audit and breaker (issue: webhook and remediation)

Revision ID: 0002
Revises: 0001
Placeholder in the chain, filled in by the feature that owns these tables.
"""

from __future__ import annotations

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
