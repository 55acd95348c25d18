"""instant checks in progress

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 08:40:00.000000

- photos.early_started_at: when the instant checks of the uploaded photo started (committed at
  once), so that a submission made meanwhile waits for them instead of measuring the photo again.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import fieldcheck.db

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("photos") as batch:
        batch.add_column(
            sa.Column("early_started_at", fieldcheck.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("photos") as batch:
        batch.drop_column("early_started_at")
