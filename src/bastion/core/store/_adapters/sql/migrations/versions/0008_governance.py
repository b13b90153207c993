"""Governance: model cards, one row per card version (edits never overwrite).

Revision ID: 0008_governance
Revises: 0007_token_lineage
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_governance"
down_revision = "0007_token_lineage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_cards",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("card_version", sa.Integer, nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("spec_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("project", "model", "version", "card_version", name="uq_model_card"),
    )


def downgrade() -> None:
    op.drop_table("model_cards")
