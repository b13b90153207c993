"""Erasure (GDPR Art. 17): erasure requests and the blobs each one shredded or retained.

``erasures`` holds one row per request: the keyed pseudonym of the subject
(HMAC, never the identifier), the column, the reason, the policy mode, its
state (``committed`` until every blob is shredded and the audit record is on
the log, then ``done``), the report and the pending audit record (the outbox).
``erasure_blobs`` lists every blob of a superseded version with what happened
to its data key: ``pending``, ``shredded``, ``retained`` (policy) or ``shared``
(still named by a live version, so not shredded).

Revision ID: 0011_erasure
Revises: 0010_providers_compliance
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_erasure"
down_revision = "0010_providers_compliance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("column_name", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("report", sa.Text, nullable=False),
        sa.Column("audit", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("completed_at", sa.String(40), nullable=True),
    )
    op.create_index("ix_erasures_subject", "erasures", ["project", "dataset", "subject"])
    op.create_index("ix_erasures_state", "erasures", ["state"])
    op.create_table(
        "erasure_blobs",
        sa.Column("erasure_id", sa.String(32), sa.ForeignKey("erasures.id"), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("role", sa.String(300), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("done_at", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("erasure_id", "digest", name="pk_erasure_blobs"),
    )
    op.create_index("ix_erasure_blobs_digest", "erasure_blobs", ["digest"])


def downgrade() -> None:
    op.drop_index("ix_erasure_blobs_digest", table_name="erasure_blobs")
    op.drop_table("erasure_blobs")
    op.drop_index("ix_erasures_state", table_name="erasures")
    op.drop_index("ix_erasures_subject", table_name="erasures")
    op.drop_table("erasures")
