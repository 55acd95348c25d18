"""a worker's own data exports

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 05:00:00.000000

- worker_data_exports: the ZIP of everything about one worker (POST /api/v1/me/export), built by a
  job; one unfinished per worker (a partial unique index), its file removed after the retention.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import fieldcheck.db

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNFINISHED = sa.text("status IN ('queued', 'running')")


def upgrade() -> None:
    op.create_table(
        "worker_data_exports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False, server_default="0"),
        sa.Column("stage", sa.String(length=200), nullable=True),
        sa.Column("storage_key", sa.String(length=300), nullable=True),
        sa.Column("filename", sa.String(length=200), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("photo_count", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", fieldcheck.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", fieldcheck.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", fieldcheck.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", fieldcheck.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("expires_at", fieldcheck.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed', 'expired')",
            name=op.f("ck_worker_data_exports_status_known"),
        ),
        sa.CheckConstraint(
            "progress >= 0 AND progress <= 1", name=op.f("ck_worker_data_exports_progress_range")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_worker_data_exports_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_data_exports")),
    )
    op.create_index(
        "ix_worker_data_exports_user_created", "worker_data_exports", ["user_id", "created_at", "id"]
    )
    op.create_index("ix_worker_data_exports_status_expires", "worker_data_exports", ["status", "expires_at"])
    op.create_index(
        "uq_worker_data_exports_user_unfinished",
        "worker_data_exports",
        ["user_id"],
        unique=True,
        sqlite_where=UNFINISHED,
        postgresql_where=UNFINISHED,
    )


def downgrade() -> None:
    op.drop_index("uq_worker_data_exports_user_unfinished", table_name="worker_data_exports")
    op.drop_index("ix_worker_data_exports_status_expires", table_name="worker_data_exports")
    op.drop_index("ix_worker_data_exports_user_created", table_name="worker_data_exports")
    op.drop_table("worker_data_exports")
