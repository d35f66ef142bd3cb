"""posts never reuse ids on SQLite

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

SQLite hands out max(rowid)+1, so deleting the newest post gave its number to the next one; with
AUTOINCREMENT it never does. PostgreSQL sequences never reuse numbers, so nothing changes there.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild_posts(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("posts", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
        pass


def upgrade() -> None:
    _rebuild_posts(True)


def downgrade() -> None:
    _rebuild_posts(False)
