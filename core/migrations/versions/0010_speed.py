"""shown posts by author, index only, for the home feed

Revision ID: 0010_speed
Revises: 0009_creative
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010_speed"
down_revision: str | None = "0009_creative"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The feed walks every followed person's shown posts (public, status visible) by id; with both in the index
    # the walk reads the index alone, not each post's row (core/feed/timeline.py).
    op.create_index("ix_posts_author_shown_id", "posts", ["author_id", "visibility", "status", "id"])


def downgrade() -> None:
    op.drop_index("ix_posts_author_shown_id", table_name="posts")
