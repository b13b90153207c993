"""Ingestion atomicity (placeholder; filled by the ingest work).

Revision ID: 0004_ingest_atomicity
Revises: 0003_models
"""

revision = "0004_ingest_atomicity"
down_revision = "0003_models"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
