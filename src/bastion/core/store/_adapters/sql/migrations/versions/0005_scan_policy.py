"""Per-project scanner policy: extra allow-listed pickle globals and policy flags.

One row per entry (``kind`` = ``global`` with ``value`` = ``module.name``, or
``kind`` = ``flag`` with ``value`` = ``torchscript`` / ``opaque-data``), so that
allow and disallow are single-row inserts and deletes; every change is also an
audit-log entry written by the service.

Revision ID: 0005_scan_policy
Revises: 0004_ingest_atomicity
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_scan_policy"
down_revision = "0004_ingest_atomicity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scan_policy_entries",
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("value", sa.String(300), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("project", "kind", "value", name="pk_scan_policy_entries"),
    )


def downgrade() -> None:
    op.drop_table("scan_policy_entries")
