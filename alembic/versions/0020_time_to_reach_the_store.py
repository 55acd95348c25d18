"""the time to reach the store, when the phone reports it

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 05:20:00.000000

- assignments.arrived_at: when the worker reached the store, as the phone said at submission
  (kept between the reservation and the submission).
- campaigns.measured_travel_minutes_median, measured_travel_visits: reservation to arrival over
  the campaign's last 500 visits that reported it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import fieldcheck.db

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("arrived_at", fieldcheck.db.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("measured_travel_minutes_median", sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column("measured_travel_visits", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("measured_travel_visits")
        batch_op.drop_column("measured_travel_minutes_median")
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_column("arrived_at")
