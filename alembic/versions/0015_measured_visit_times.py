"""campaigns keep the real working time of their visits

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 03:40:00.000000

- campaigns.measured_minutes_median, measured_minutes_p75, measured_visits: reservation to
  submission of the campaign's last 500 submitted visits, updated at each submission.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("measured_minutes_median", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("measured_minutes_p75", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("measured_visits", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("measured_visits")
        batch_op.drop_column("measured_minutes_p75")
        batch_op.drop_column("measured_minutes_median")
