"""Serving: endpoints and deployments (reserved; filled in by the serving work).

Revision ID: 0012_serving
Revises: 0011_erasure
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0012_serving"
down_revision = "0011_erasure"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
