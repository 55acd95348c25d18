"""approved slots counted on tasks; ledger accounts know their holder; unused photo hash columns go

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 22:00:00.000000

- tasks.slots_approved: approved assignments per task, counted by the approving transition, so
  campaign completion and escrow are read from tasks instead of scans of assignments.
- ledger_accounts.holder_id: whose money an account is in the end (an organization holds its
  campaigns' escrow), so the ledger sums an organization's money without knowing campaigns.
- photos.phash, dhash, fingerprint, hash_seq: written but never read (photo_hashes holds them).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.add_column(sa.Column("slots_approved", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE tasks SET slots_approved = (SELECT count(*) FROM assignments "
        "WHERE assignments.task_id = tasks.id AND assignments.status = 'approved')"
    )
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.alter_column("slots_approved", server_default=None)
        batch_op.create_check_constraint(op.f("ck_tasks_approved_not_negative"), "slots_approved >= 0")

    with op.batch_alter_table("ledger_accounts") as batch_op:
        batch_op.add_column(sa.Column("holder_id", sa.Uuid(), nullable=True))
    op.execute("UPDATE ledger_accounts SET holder_id = owner_id WHERE kind = 'client_available'")
    op.execute(
        "UPDATE ledger_accounts SET holder_id = (SELECT organization_id FROM campaigns "
        "WHERE campaigns.id = ledger_accounts.owner_id) WHERE kind = 'client_escrow'"
    )
    op.create_index("ix_ledger_accounts_holder", "ledger_accounts", ["holder_id", "kind"])

    op.drop_index(
        "ix_photos_hash_seq",
        table_name="photos",
        postgresql_where=sa.text("hash_seq IS NOT NULL"),
        sqlite_where=sa.text("hash_seq IS NOT NULL"),
    )
    with op.batch_alter_table("photos") as batch_op:
        batch_op.drop_constraint(op.f("uq_photos_hash_seq"), type_="unique")
        batch_op.drop_column("hash_seq")
        batch_op.drop_column("fingerprint")
        batch_op.drop_column("dhash")
        batch_op.drop_column("phash")


def downgrade() -> None:
    with op.batch_alter_table("photos") as batch_op:
        batch_op.add_column(sa.Column("phash", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("dhash", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("fingerprint", sa.String(length=600), nullable=True))
        batch_op.add_column(sa.Column("hash_seq", sa.BigInteger(), nullable=True))
        batch_op.create_unique_constraint(op.f("uq_photos_hash_seq"), ["hash_seq"])
    op.create_index(
        "ix_photos_hash_seq",
        "photos",
        ["hash_seq"],
        postgresql_where=sa.text("hash_seq IS NOT NULL"),
        sqlite_where=sa.text("hash_seq IS NOT NULL"),
    )
    op.drop_index("ix_ledger_accounts_holder", table_name="ledger_accounts")
    with op.batch_alter_table("ledger_accounts") as batch_op:
        batch_op.drop_column("holder_id")
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.drop_constraint(op.f("ck_tasks_approved_not_negative"), type_="check")
        batch_op.drop_column("slots_approved")
