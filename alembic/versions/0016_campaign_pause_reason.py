"""campaigns paused by the platform say why

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 04:00:00.000000

- campaigns.pause_reason (pay_below_floor) and pause_details (the figures, as a stored text):
  a campaign whose measured pay fell below the floor stops taking reservations until its client
  raises the reward or the estimate.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pause_reason", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column(
                "pause_details", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("pause_details")
        batch_op.drop_column("pause_reason")
