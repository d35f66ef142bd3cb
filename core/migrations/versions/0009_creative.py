"""comments, comment threads, what a post started from and its lineage, a job's source picture

Revision ID: 0009_creative
Revises: 0008_safety
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_creative"
down_revision: str | None = "0008_safety"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("comment_count", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("origin", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("lineage", sa.Text(), nullable=True))
    with op.batch_alter_table("generation_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_path", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("source_kind", sa.String(length=16), nullable=True))
    op.create_table(
        "comments",
        sa.Column("id", BigId, nullable=False),
        sa.Column("post_id", BigId, nullable=False),
        sa.Column("author_id", BigId, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(["post_id"], ["posts.id"], name="fk_comments_post_id_posts", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["author_id"], ["people.id"], name="fk_comments_author_id_people", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_comments"),
    )
    op.create_index("ix_comments_post_id_id", "comments", ["post_id", "id"])
    op.create_index("ix_comments_author_id", "comments", ["author_id"])
    op.create_table(
        "comment_threads",
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("thread_id", sa.String(length=64), nullable=False),
        sa.Column("post_id", BigId, nullable=False),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name="fk_comment_threads_post_id_posts", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("platform", "chat_id", "thread_id", name="pk_comment_threads"),
    )
    op.create_index("ix_comment_threads_post_id", "comment_threads", ["post_id"])


def downgrade() -> None:
    op.drop_index("ix_comment_threads_post_id", table_name="comment_threads")
    op.drop_table("comment_threads")
    op.drop_index("ix_comments_author_id", table_name="comments")
    op.drop_index("ix_comments_post_id_id", table_name="comments")
    op.drop_table("comments")
    with op.batch_alter_table("generation_jobs", schema=None) as batch_op:
        batch_op.drop_column("source_kind")
        batch_op.drop_column("source_path")
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_column("lineage")
        batch_op.drop_column("origin")
        batch_op.drop_column("comment_count")
