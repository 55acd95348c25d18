"""tokens can be revoked; sign-ups and other attempts are counted in shared rate limits

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 00:00:00.000000

- users.token_version: written into each token; a new password or a deactivation raises it, and
  every older token of the account stops working. console_sessions.token_version does the same
  for console sign-ins.
- revoked_tokens: tokens signed out before they expire.
- rate_counters: fixed-window counters every API process shares (sign-ups per address).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import fieldcheck.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("users", "console_sessions"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("token_version", sa.Integer(), nullable=False, server_default="0"))
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column("token_version", server_default=None)

    op.create_table(
        "revoked_tokens",
        sa.Column("token_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", fieldcheck.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_revoked_tokens_user_id_users")),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_revoked_tokens")),
    )
    op.create_index("ix_revoked_tokens_expires_at", "revoked_tokens", ["expires_at"])
    op.create_index(op.f("ix_revoked_tokens_user_id"), "revoked_tokens", ["user_id"])

    op.create_table(
        "rate_counters",
        sa.Column("bucket", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("window", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("expires_at", fieldcheck.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "key", "window", name=op.f("pk_rate_counters")),
    )
    op.create_index("ix_rate_counters_expires_at", "rate_counters", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_rate_counters_expires_at", table_name="rate_counters")
    op.drop_table("rate_counters")
    op.drop_index(op.f("ix_revoked_tokens_user_id"), table_name="revoked_tokens")
    op.drop_index("ix_revoked_tokens_expires_at", table_name="revoked_tokens")
    op.drop_table("revoked_tokens")
    for table in ("console_sessions", "users"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("token_version")
