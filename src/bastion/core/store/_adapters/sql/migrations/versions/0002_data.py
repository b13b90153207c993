"""Data security and lineage: sources, datasets, versions, contracts, lineage edges.

Revision ID: 0002_data
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_data"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("project", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("trusted", sa.Boolean, nullable=False),
        sa.Column("require_checksum", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "dataset_sources",
        sa.Column("project", sa.String(100), primary_key=True),
        sa.Column("dataset", sa.String(200), primary_key=True),
        sa.Column("source", sa.String(200), primary_key=True),
    )
    op.create_table(
        "datasets",
        sa.Column("project", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("label", sa.String(200), nullable=True),
        sa.Column("sensitive", sa.Text, nullable=False),
        sa.Column("policy", sa.Text, nullable=False),
        sa.Column("reference_digest", sa.String(64), nullable=True),
        sa.Column("reference_version", sa.Integer, nullable=True),
        sa.Column("recent_digest", sa.String(64), nullable=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("data_digest", sa.String(64), nullable=False),
        sa.Column("raw_digest", sa.String(64), nullable=False),
        sa.Column("profile_digest", sa.String(64), nullable=False),
        sa.Column("format", sa.String(20), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("schema", sa.Text, nullable=False),
        sa.Column("report", sa.Text, nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("declared_sha256", sa.String(64), nullable=True),
        sa.Column("parent_version", sa.Integer, nullable=True),
        sa.Column("contract_version", sa.Integer, nullable=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("reviewed_by", sa.String(200), nullable=True),
        sa.Column("reviewed_at", sa.String(40), nullable=True),
        sa.Column("review_reason", sa.String(1000), nullable=True),
        sa.UniqueConstraint("project", "dataset", "version", name="uq_dataset_version"),
    )
    op.create_table(
        "contracts",
        sa.Column("project", sa.String(100), primary_key=True),
        sa.Column("dataset", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "lineage_edges",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("src_kind", sa.String(40), nullable=False),
        sa.Column("src_id", sa.String(300), nullable=False),
        sa.Column("src_digest", sa.String(64), nullable=True),
        sa.Column("dst_kind", sa.String(40), nullable=False),
        sa.Column("dst_id", sa.String(300), nullable=False),
        sa.Column("dst_digest", sa.String(64), nullable=True),
        sa.Column("relation", sa.String(40), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    op.create_index("ix_lineage_src", "lineage_edges", ["src_kind", "src_id"])
    op.create_index("ix_lineage_dst", "lineage_edges", ["dst_kind", "dst_id"])


def downgrade() -> None:
    for name in (
        "lineage_edges",
        "contracts",
        "dataset_versions",
        "datasets",
        "dataset_sources",
        "sources",
    ):
        op.drop_table(name)
