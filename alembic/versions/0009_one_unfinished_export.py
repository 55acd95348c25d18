"""one unfinished export per campaign and format; export heartbeats

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 17:05:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import fieldcheck.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNFINISHED = sa.text("status IN ('queued', 'running')")


def upgrade() -> None:
    with op.batch_alter_table("exports") as batch_op:
        batch_op.add_column(
            sa.Column("heartbeat_at", fieldcheck.db.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_index(
        "uq_exports_campaign_format_unfinished",
        "exports",
        ["campaign_id", "format"],
        unique=True,
        sqlite_where=UNFINISHED,
        postgresql_where=UNFINISHED,
    )


def downgrade() -> None:
    op.drop_index("uq_exports_campaign_format_unfinished", table_name="exports")
    with op.batch_alter_table("exports") as batch_op:
        batch_op.drop_column("heartbeat_at")
