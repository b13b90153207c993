"""Serving: endpoints' deployment history and the prediction log.

Revision ID: 0012_serving
Revises: 0011_erasure
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_serving"
down_revision = "0011_erasure"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "serving_deployments",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("endpoint", sa.String(200), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("root_digest", sa.String(128), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("input_schema", sa.Text, nullable=False),
        sa.Column("response_policy", sa.Text, nullable=False),
        sa.Column("gate", sa.Text, nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("ended_at", sa.String(40), nullable=True),
        sa.Column("ended_by", sa.String(200), nullable=True),
        sa.Column("end_reason", sa.String(500), nullable=True),
        sa.UniqueConstraint("project", "endpoint", "seq", name="uq_serving_deployment_seq"),
    )
    op.create_index("ix_serving_deployments_state", "serving_deployments", ["state"])
    op.create_table(
        "serving_predictions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("endpoint", sa.String(200), nullable=False),
        sa.Column("deployment_id", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("outcome", sa.String(40), nullable=False),
        sa.Column("features_digest", sa.String(128), nullable=False),
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    op.create_index(
        "ix_serving_predictions_endpoint", "serving_predictions",
        ["project", "endpoint", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_serving_predictions_endpoint", table_name="serving_predictions")
    op.drop_table("serving_predictions")
    op.drop_index("ix_serving_deployments_state", table_name="serving_deployments")
    op.drop_table("serving_deployments")
