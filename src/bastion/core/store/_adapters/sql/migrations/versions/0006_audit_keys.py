"""Audit witness / signing-key records: intentionally no schema change.

Signing-key rotations and revocations are recorded as audit-log entries
(``keys.signing_rotated`` / ``keys.signing_revoked``), read back through the
existing ``ix_audit_action`` index (``bastion.core.crypto.ledger``): the
tamper-evident log is the authority, so a second, editable table would only
add something to keep in agreement.  The witness stays a file by design.

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
