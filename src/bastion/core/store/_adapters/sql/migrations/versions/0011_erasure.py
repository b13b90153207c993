"""Erasure (GDPR Art. 17): erasure requests and shredded keys (reserved; filled in by that work).

Revision ID: 0011_erasure
Revises: 0010_providers_compliance
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0011_erasure"
down_revision = "0010_providers_compliance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
