"""originals and phone positions removed after the retention period

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 04:40:00.000000

- photos.originals_removed_at: when the photo as uploaded and submitted (and its GPS position) was
  deleted, FIELDCHECK_ORIGINAL_RETENTION_DAYS after the decision became final; its client-safe copy
  and thumbnail stay.
- assignments.positions_removed_at: when the phone's position, accuracy and identifier were erased
  (the distance from the store stays); the partial index holds the decided assignments that still
  keep theirs, the hourly job's worklist.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import fieldcheck.db

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POSITIONS_KEPT = sa.text("positions_removed_at IS NULL AND decided_at IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("originals_removed_at", fieldcheck.db.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("positions_removed_at", fieldcheck.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            "ix_assignments_positions_kept",
            ["decided_at"],
            unique=False,
            sqlite_where=POSITIONS_KEPT,
            postgresql_where=POSITIONS_KEPT,
        )


def downgrade() -> None:
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_assignments_positions_kept")
        batch_op.drop_column("positions_removed_at")
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.drop_column("originals_removed_at")
