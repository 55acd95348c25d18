"""reference photos of a campaign; checked photos' local features; references in the duplicate index

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 04:00:00.000000

- reference_photos: what a client attaches to a campaign (uploaded like workers' photos), with its
  stored local features once processed; deleted ones keep their row (their hashes stay indexed).
- photo_features: each checked photo's local features, so an approved photo serves as a reference
  for its store without being decoded again.
- photo_hashes: a row belongs to a photo or to a reference photo (exactly one).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import fieldcheck.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reference_photos",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("storage_key", sa.String(length=300), nullable=False),
        sa.Column("declared_type", sa.String(length=50), nullable=False),
        sa.Column("declared_bytes", sa.BigInteger(), nullable=False),
        sa.Column("detected_type", sa.String(length=20), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("features", sa.LargeBinary(), nullable=True),
        sa.Column("thumbnail_key", sa.String(length=300), nullable=True),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column("created_at", fieldcheck.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("checked_at", fieldcheck.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", fieldcheck.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('awaiting_upload', 'processing', 'ready', 'failed')",
            name=op.f("ck_reference_photos_reference_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_reference_photos_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_reference_photos_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reference_photos")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_reference_photos_storage_key")),
    )
    with op.batch_alter_table("reference_photos", schema=None) as batch_op:
        batch_op.create_index("ix_reference_photos_campaign", ["campaign_id", "created_at"], unique=False)
        batch_op.create_index(
            "ix_reference_photos_sha256",
            ["sha256"],
            unique=False,
            postgresql_where=sa.text("sha256 IS NOT NULL"),
            sqlite_where=sa.text("sha256 IS NOT NULL"),
        )
    op.create_table(
        "photo_features",
        sa.Column("photo_id", sa.Uuid(), nullable=False),
        sa.Column("features", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["photo_id"], ["photos.id"], name=op.f("fk_photo_features_photo_id_photos")),
        sa.PrimaryKeyConstraint("photo_id", name=op.f("pk_photo_features")),
    )
    with op.batch_alter_table("photo_hashes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reference_id", sa.Uuid(), nullable=True))
        batch_op.alter_column("photo_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.create_unique_constraint(batch_op.f("uq_photo_hashes_reference_id"), ["reference_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_photo_hashes_reference_id_reference_photos"),
            "reference_photos",
            ["reference_id"],
            ["id"],
        )
        batch_op.create_check_constraint("one_owner", sa.text("(photo_id IS NULL) <> (reference_id IS NULL)"))


def downgrade() -> None:
    op.execute("DELETE FROM photo_hashes WHERE photo_id IS NULL")
    with op.batch_alter_table("photo_hashes", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_photo_hashes_one_owner"), type_="check")
        batch_op.drop_constraint(
            batch_op.f("fk_photo_hashes_reference_id_reference_photos"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("uq_photo_hashes_reference_id"), type_="unique")
        batch_op.alter_column("photo_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.drop_column("reference_id")
    op.drop_table("photo_features")
    with op.batch_alter_table("reference_photos", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_reference_photos_sha256",
            postgresql_where=sa.text("sha256 IS NOT NULL"),
            sqlite_where=sa.text("sha256 IS NOT NULL"),
        )
        batch_op.drop_index("ix_reference_photos_campaign")
    op.drop_table("reference_photos")
