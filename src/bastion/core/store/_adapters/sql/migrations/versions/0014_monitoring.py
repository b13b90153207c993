"""Serving: alerts (one open per endpoint and kind), webhooks, their deliveries, and the
live windows the drift monitor reads (encrypted blobs of sampled validated rows).

Revision ID: 0014_monitoring
Revises: 0013_canary
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_monitoring"
down_revision = "0013_canary"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "serving_alerts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("endpoint", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("summary", sa.String(500), nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("last_seen_at", sa.String(40), nullable=False),
        sa.Column("occurrences", sa.Integer, nullable=False),
        # "open" while open, the alert's id once acknowledged: one open alert per kind
        sa.Column("open_slot", sa.String(64), nullable=False),
        sa.Column("acknowledged_by", sa.String(200), nullable=True),
        sa.Column("acknowledged_at", sa.String(40), nullable=True),
        sa.Column("ack_note", sa.String(500), nullable=True),
        sa.UniqueConstraint("project", "endpoint", "kind", "open_slot",
                            name="uq_serving_alert_open"),
    )
    op.create_index("ix_serving_alerts_project", "serving_alerts", ["project", "created_at"])
    op.create_table(
        "serving_webhooks",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("endpoint", sa.String(200), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "serving_alert_deliveries",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("alert_id", sa.String(64), nullable=False),
        sa.Column("webhook_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
    )
    op.create_index("ix_serving_alert_deliveries_alert", "serving_alert_deliveries",
                    ["alert_id"])
    op.create_table(
        "serving_live_windows",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("endpoint", sa.String(200), nullable=False),
        sa.Column("deployment_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("seen", sa.Integer, nullable=False),
        sa.Column("blob_digest", sa.String(64), nullable=False),
    )
    op.create_index("ix_serving_live_windows_deployment", "serving_live_windows",
                    ["deployment_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_serving_live_windows_deployment", table_name="serving_live_windows")
    op.drop_table("serving_live_windows")
    op.drop_index("ix_serving_alert_deliveries_alert", table_name="serving_alert_deliveries")
    op.drop_table("serving_alert_deliveries")
    op.drop_table("serving_webhooks")
    op.drop_index("ix_serving_alerts_project", table_name="serving_alerts")
    op.drop_table("serving_alerts")
