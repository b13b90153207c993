"""Per-project scanner allow-list policy (placeholder; filled by the scanner work).

Revision ID: 0005_scan_policy
Revises: 0004_ingest_atomicity
"""

revision = "0005_scan_policy"
down_revision = "0004_ingest_atomicity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
