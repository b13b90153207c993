"""Ingestion atomicity: a fencing generation per dataset, pending versions (outbox).

- ``datasets.generation`` grows with every change of the state an ingestion
  audit reads (pin, recent window, policy, contract); a commit names the
  generation it was audited against and is refused if it moved.
- ``dataset_versions.pending_status`` / ``pending_audit``: a version committed
  with its pin but whose audit-log record is not yet appended has status
  ``pending`` (never usable); its final status and the audit record wait
  here until they are appended (at once, or by the start-up reconcile).
- ``model_versions.pending_audit``: the same outbox for model registration.

Revision ID: 0004_ingest_atomicity
Revises: 0003_models
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_ingest_atomicity"
down_revision = "0003_models"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("datasets") as t:
        t.add_column(sa.Column("generation", sa.Integer, nullable=False, server_default="0"))
    with op.batch_alter_table("dataset_versions") as t:
        t.add_column(sa.Column("pending_status", sa.String(20), nullable=True))
        t.add_column(sa.Column("pending_audit", sa.Text, nullable=True))
    with op.batch_alter_table("model_versions") as t:
        t.add_column(sa.Column("pending_audit", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as t:
        t.drop_column("pending_audit")
    with op.batch_alter_table("dataset_versions") as t:
        t.drop_column("pending_audit")
        t.drop_column("pending_status")
    with op.batch_alter_table("datasets") as t:
        t.drop_column("generation")
