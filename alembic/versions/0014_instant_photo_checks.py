"""instant per-photo checks before submission; check texts in the reader's language

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 02:00:00.000000

- photos: the state of the checks run when the phone says an upload finished (check_status), the
  object they read (early_etag), the per-photo checks as the worker reads them (early_checks), and
  what the submission's decision reuses of them (early_report).
- check_results.texts: value, threshold and explanation as message ids with their values, rendered
  in French or English when read (older rows keep their English text).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import fieldcheck.db

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("check_status", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("early_etag", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("early_checks", JSON_TYPE, nullable=True))
        batch_op.add_column(sa.Column("early_report", JSON_TYPE, nullable=True))
        batch_op.add_column(
            sa.Column("check_requested_at", fieldcheck.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("early_checked_at", fieldcheck.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_check_constraint(
            "check_status_known",
            sa.text("check_status IS NULL OR check_status IN ('pending', 'checked', 'failed_to_check')"),
        )
    with op.batch_alter_table("check_results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("texts", JSON_TYPE, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("check_results", schema=None) as batch_op:
        batch_op.drop_column("texts")
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_photos_check_status_known"), type_="check")
        batch_op.drop_column("early_checked_at")
        batch_op.drop_column("check_requested_at")
        batch_op.drop_column("early_report")
        batch_op.drop_column("early_checks")
        batch_op.drop_column("early_etag")
        batch_op.drop_column("check_status")
