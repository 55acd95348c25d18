"""scheduled ledger verifications

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 06:20:00.000000

- ledger_verifications: the result of each hourly check of the platform's money (money.verify):
  when, whether it held, how many problems and the first of them; a month is kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import fieldcheck.db

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ledger_verifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("at", fieldcheck.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("problem_count", sa.Integer(), nullable=False),
        sa.Column(
            "checked",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "problems",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_verifications")),
    )
    op.create_index("ix_ledger_verifications_at", "ledger_verifications", ["at"])


def downgrade() -> None:
    op.drop_index("ix_ledger_verifications_at", table_name="ledger_verifications")
    op.drop_table("ledger_verifications")
