"""the platforms' ids of the post pictures we sent, for /verify of a re-encoded photo

Revision ID: 0013_verify
Revises: 0012_gallery
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0013_verify"
down_revision: str | None = "0012_gallery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sent_files",
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("fingerprint", sa.String(length=128), nullable=False),
        sa.Column("post_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_sent_files_post_id_posts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("platform", "fingerprint", name=op.f("pk_sent_files")),
    )
    op.create_index(op.f("ix_sent_files_post_id"), "sent_files", ["post_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_sent_files_post_id"), table_name="sent_files")
    op.drop_table("sent_files")
