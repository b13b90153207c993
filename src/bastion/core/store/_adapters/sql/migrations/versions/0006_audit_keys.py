"""Audit witness / signing-key revocation records (placeholder; filled by the audit work).

Revision ID: 0006_audit_keys
Revises: 0005_scan_policy
"""

revision = "0006_audit_keys"
down_revision = "0005_scan_policy"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
