"""discovery reads open tasks from one covering index

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 13:04:19.907735
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


OLD_INCLUDE = ["slots_taken", "slots_total", "starts_at", "ends_at"]
NEW_INCLUDE = ["id", "campaign_id", "store_id", "slots_taken", "slots_total", "starts_at", "ends_at"]


def _discovery_index(include: list[str]) -> None:
    # Autogenerate does not compare INCLUDE columns: the index is rebuilt by hand.
    op.drop_index(
        "ix_tasks_open_geo",
        table_name="tasks",
        sqlite_where=sa.text("is_open = 1"),
        postgresql_where=sa.text("is_open"),
    )
    op.create_index(
        "ix_tasks_open_geo",
        "tasks",
        ["lat_band", "lon", "lat"],
        unique=False,
        sqlite_where=sa.text("is_open = 1"),
        postgresql_where=sa.text("is_open"),
        postgresql_include=include,
    )


def upgrade() -> None:
    _discovery_index(NEW_INCLUDE)
    op.create_index(
        "ix_assignments_worker_task_live",
        "assignments",
        ["worker_id", "task_id"],
        unique=False,
        sqlite_where=sa.text("status NOT IN ('cancelled', 'expired')"),
        postgresql_where=sa.text("status NOT IN ('cancelled', 'expired')"),
    )


def downgrade() -> None:
    _discovery_index(OLD_INCLUDE)
    op.drop_index(
        "ix_assignments_worker_task_live",
        table_name="assignments",
        sqlite_where=sa.text("status NOT IN ('cancelled', 'expired')"),
        postgresql_where=sa.text("status NOT IN ('cancelled', 'expired')"),
    )
