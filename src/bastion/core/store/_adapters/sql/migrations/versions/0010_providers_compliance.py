"""Governance: the third-party register (providers and their versioned assessments).

Links from a source or a model version to a provider are lineage edges (kind
``provider``), bound by their ``provider.linked`` audit entries: no table here.
Compliance reports are computed from state and written to files: no table either.

Revision ID: 0010_providers_compliance
Revises: 0009_approvals_gate
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_providers_compliance"
down_revision = "0009_approvals_gate"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "providers",
        sa.Column("project", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(100), primary_key=True),
        # look-alike key (case, separators, confusable characters): one per project
        sa.Column("name_key", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("project", "name_key", name="uq_provider_lookalike"),
    )
    op.create_table(
        "provider_assessments",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("provider", sa.String(100), nullable=False),
        sa.Column("assessment_version", sa.Integer, nullable=False),
        sa.Column("data_sent", sa.Text, nullable=False),
        sa.Column("dpa", sa.Boolean, nullable=False),
        sa.Column("certifications", sa.Text, nullable=False),
        sa.Column("reviewed_on", sa.String(10), nullable=False),
        sa.Column("expires_on", sa.String(10), nullable=False),
        sa.Column("risk", sa.String(20), nullable=False),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.UniqueConstraint(
            "project", "provider", "assessment_version", name="uq_provider_assessment"
        ),
    )


def downgrade() -> None:
    op.drop_table("provider_assessments")
    op.drop_table("providers")
