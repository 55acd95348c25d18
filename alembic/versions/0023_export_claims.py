"""export claims

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 09:35:00.000000

- exports.claimed_by_job and worker_data_exports.claimed_by_job: the job whose delivery started the
  running build, so that a retry of that same job takes it over (its earlier attempt has ended;
  when the claim committed but its answer was lost in a network cut, the build was left "running"
  with no one building it).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("exports", "worker_data_exports"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("claimed_by_job", sa.Uuid(), nullable=True))


def downgrade() -> None:
    for table in ("exports", "worker_data_exports"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("claimed_by_job")
