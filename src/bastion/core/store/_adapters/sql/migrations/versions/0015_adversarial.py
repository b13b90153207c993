"""Serving: the prediction log counts the rows flagged out of distribution per request.

Revision ID: 0015_adversarial
Revises: 0014_monitoring
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_adversarial"
down_revision = "0014_monitoring"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("serving_predictions") as t:
        t.add_column(sa.Column("ood", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("serving_predictions") as t:
        t.drop_column("ood")
