"""Serving: the alert outbox (one pending delivery row per webhook, written in the
transaction that opens the alert; claimed under a lease by the sender of any replica) and
the state of each live window (``writing`` until its blob is stored, then ``ready``;
``sweeping`` while a crashed write is reclaimed), so a crash between blob and index row
leaves a row that names the blob to reclaim.

Revision ID: 0016_alert_outbox
Revises: 0015_adversarial
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_alert_outbox"
down_revision = "0015_adversarial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "serving_alert_outbox",
        sa.Column("id", sa.String(64), primary_key=True),  # the delivery id receivers see
        sa.Column("alert_id", sa.String(64), nullable=False),
        sa.Column("webhook_id", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        # pending | delivered | failed | refused
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.String(40), nullable=False),
        sa.Column("claimed_by", sa.String(120), nullable=True),
        sa.Column("lease_until", sa.String(40), nullable=True),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
        sa.UniqueConstraint("alert_id", "webhook_id", name="uq_serving_alert_outbox_target"),
    )
    op.create_index("ix_serving_alert_outbox_due", "serving_alert_outbox",
                    ["status", "next_attempt_at"])
    with op.batch_alter_table("serving_live_windows") as t:
        t.add_column(sa.Column("state", sa.String(10), nullable=False,
                               server_default="ready"))


def downgrade() -> None:
    with op.batch_alter_table("serving_live_windows") as t:
        t.drop_column("state")
    op.drop_index("ix_serving_alert_outbox_due", table_name="serving_alert_outbox")
    op.drop_table("serving_alert_outbox")
