"""accounts their owners closed

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 04:20:00.000000

- users.closed_at: when a worker closed the account (DELETE /api/v1/me); its sign-in, name and
  e-mail are gone, and it is never reactivated.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import fieldcheck.db

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("closed_at", fieldcheck.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("closed_at")
