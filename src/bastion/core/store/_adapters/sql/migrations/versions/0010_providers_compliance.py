"""Governance: third-party register and compliance (reserved; filled in by that work).

Revision ID: 0010_providers_compliance
Revises: 0009_approvals_gate
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0010_providers_compliance"
down_revision = "0009_approvals_gate"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
