"""Governance: approvals and release-gate policies (reserved; filled in by the approvals work).

Revision ID: 0009_approvals_gate
Revises: 0008_governance
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0009_approvals_gate"
down_revision = "0008_governance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
