"""exports, campaign completion

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 15:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import fieldcheck.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "exports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=False),
        sa.Column("format", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False, server_default="0"),
        sa.Column("stage", sa.String(length=200), nullable=True),
        sa.Column("storage_key", sa.String(length=300), nullable=True),
        sa.Column("filename", sa.String(length=200), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("row_count", sa.Integer(), nullable=True),
        sa.Column("photo_count", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", fieldcheck.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", fieldcheck.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", fieldcheck.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("expires_at", fieldcheck.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("format IN ('csv', 'zip', 'report')", name=op.f("ck_exports_format_known")),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed', 'expired')",
            name=op.f("ck_exports_status_known"),
        ),
        sa.CheckConstraint("progress >= 0 AND progress <= 1", name=op.f("ck_exports_progress_range")),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_exports_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_exports_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(["requested_by"], ["users.id"], name=op.f("fk_exports_requested_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exports")),
    )
    op.create_index(
        "ix_exports_campaign_created", "exports", ["campaign_id", "created_at", "id"], unique=False
    )
    op.create_index("ix_exports_status_expires", "exports", ["status", "expires_at"], unique=False)
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.add_column(
            sa.Column("completed_at", fieldcheck.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.drop_column("completed_at")
    op.drop_index("ix_exports_status_expires", table_name="exports")
    op.drop_index("ix_exports_campaign_created", table_name="exports")
    op.drop_table("exports")
