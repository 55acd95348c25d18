"""photos are frozen at submission: the copy the checks, reviewers and clients read

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 23:00:00.000000

Photos submitted before this revision have no frozen copy: their upload is what was checked.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("photos") as batch_op:
        batch_op.add_column(sa.Column("frozen_key", sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("photos") as batch_op:
        batch_op.drop_column("frozen_key")
