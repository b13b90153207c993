"""Serving: canary releases (state, per-request samples for the analysis) and feedback labels.

Revision ID: 0013_canary
Revises: 0012_serving
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_canary"
down_revision = "0012_serving"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "serving_canaries",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("endpoint", sa.String(200), nullable=False),
        sa.Column("deployment_id", sa.String(64), nullable=False),
        sa.Column("stable_id", sa.String(64), nullable=False),
        sa.Column("weight", sa.Integer, nullable=False),
        sa.Column("promote_after", sa.Integer, nullable=False),
        sa.Column("sticky_header", sa.String(100), nullable=True),
        sa.Column("thresholds", sa.Text, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("row_version", sa.Integer, nullable=False),
        sa.Column("analysis", sa.Text, nullable=True),
        sa.Column("analyzed_at", sa.String(40), nullable=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("ended_at", sa.String(40), nullable=True),
        sa.Column("ended_by", sa.String(200), nullable=True),
        sa.Column("end_reason", sa.String(500), nullable=True),
    )
    # at most one running canary per endpoint, enforced by the database itself
    op.create_index(
        "uq_serving_canary_running", "serving_canaries", ["project", "endpoint"], unique=True,
        sqlite_where=sa.text("state = 'running'"), postgresql_where=sa.text("state = 'running'"),
    )
    op.create_table(
        "serving_canary_samples",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("canary_id", sa.String(64), nullable=False),
        sa.Column("arm", sa.String(10), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(40), nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("ood", sa.Integer, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    op.create_index(
        "ix_serving_canary_samples_window", "serving_canary_samples",
        ["canary_id", "arm", "created_at"],
    )
    op.create_index(
        "ix_serving_canary_samples_request", "serving_canary_samples",
        ["canary_id", "request_id"],
    )
    op.create_table(
        "serving_feedback",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("endpoint", sa.String(200), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.UniqueConstraint("project", "endpoint", "principal", "request_id",
                            name="uq_serving_feedback_request"),
    )
    op.create_index(
        "ix_serving_predictions_request", "serving_predictions",
        ["project", "endpoint", "request_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_serving_predictions_request", table_name="serving_predictions")
    op.drop_table("serving_feedback")
    op.drop_index("ix_serving_canary_samples_request", table_name="serving_canary_samples")
    op.drop_index("ix_serving_canary_samples_window", table_name="serving_canary_samples")
    op.drop_table("serving_canary_samples")
    op.drop_index("uq_serving_canary_running", table_name="serving_canaries")
    op.drop_table("serving_canaries")
