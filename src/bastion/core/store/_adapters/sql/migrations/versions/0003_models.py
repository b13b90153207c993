"""Model security: model versions, evaluations, refused artifacts, drift references.

Revision ID: 0003_models
Revises: 0002_data
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_models"
down_revision = "0002_data"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("framework", sa.String(40), nullable=False),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("manifest", sa.Text, nullable=False),
        sa.Column("root_digest", sa.String(64), nullable=False),
        sa.Column("bundle_digest", sa.String(64), nullable=False),
        sa.Column("signer_key_id", sa.String(200), nullable=False),
        sa.Column("signer_identity", sa.String(300), nullable=False),
        sa.Column("signed_at", sa.String(40), nullable=False),
        sa.Column("scan_report", sa.Text, nullable=False),
        sa.Column("trained_on", sa.Text, nullable=False),
        sa.Column("training_run", sa.Text, nullable=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("project", "name", "version", name="uq_model_version"),
    )
    op.create_table(
        "evaluations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("dataset_ref", sa.String(300), nullable=False),
        sa.Column("dataset_digest", sa.String(64), nullable=False),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("statement_digest", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "refused_artifacts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("manifest", sa.Text, nullable=False),
        sa.Column("scan_report", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "drift_references",
        sa.Column("project", sa.String(100), primary_key=True),
        sa.Column("dataset_ref", sa.String(300), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    for name in ("drift_references", "refused_artifacts", "evaluations", "model_versions"):
        op.drop_table(name)
