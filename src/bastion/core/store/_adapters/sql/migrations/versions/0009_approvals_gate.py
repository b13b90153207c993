"""Governance: release policies (versioned), approvals and gate waivers.

- ``release_policies``: one row per version of a project's release policy (the
  YAML text as written, its sha256); the highest version is the active one.
- ``model_approvals``: one row per approval or rejection, each with the digest of
  its signed in-toto statement; ``(project, nonce)`` is unique, so a replayed
  request is refused by the database even if two arrive at once.
- ``gate_waivers``: a named, reasoned, expiring waiver of one gate rule for one
  model version, with the digest of its signed statement.

Revision ID: 0009_approvals_gate
Revises: 0008_governance
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_approvals_gate"
down_revision = "0008_governance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "release_policies",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("project", "version", name="uq_release_policy"),
    )
    op.create_table(
        "model_approvals",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("human", sa.String(200), nullable=False),
        sa.Column("token_id", sa.String(32), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("root_digest", sa.String(64), nullable=False),
        sa.Column("card_version", sa.Integer, nullable=False),
        sa.Column("card_sha256", sa.String(64), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("statement_digest", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("expires_at", sa.String(40), nullable=False),
        sa.UniqueConstraint("project", "nonce", name="uq_approval_nonce"),
    )
    op.create_index("ix_model_approvals_model", "model_approvals", ["project", "model", "version"])
    op.create_table(
        "gate_waivers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("rule", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("granted_by", sa.String(200), nullable=False),
        sa.Column("granted_at", sa.String(40), nullable=False),
        sa.Column("expires_at", sa.String(40), nullable=False),
        sa.Column("statement_digest", sa.String(64), nullable=False),
    )
    op.create_index("ix_gate_waivers_model", "gate_waivers", ["project", "model", "version"])


def downgrade() -> None:
    op.drop_index("ix_gate_waivers_model", table_name="gate_waivers")
    op.drop_table("gate_waivers")
    op.drop_index("ix_model_approvals_model", table_name="model_approvals")
    op.drop_table("model_approvals")
    op.drop_table("release_policies")
