"""Token lineage: the token that issued each token (revoking a parent revokes its children).

Revision ID: 0007_token_lineage
Revises: 0006_audit_keys
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_token_lineage"
down_revision = "0006_audit_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("parent_id", sa.String(32), nullable=True))
        batch.create_index("ix_tokens_parent_id", ["parent_id"])


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_index("ix_tokens_parent_id")
        batch.drop_column("parent_id")
