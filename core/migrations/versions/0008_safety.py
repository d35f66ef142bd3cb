"""safety: post moderation state and soft deletion, bans, private profiles, promoted admins, the
audit trail, reports, blocks and follow requests

Revision ID: 0008_safety
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.models

revision: str = "0008_safety"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = core.models.UTCDateTime()
BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _people_fk(column: str, table: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["people.id"], name=op.f(f"fk_{table}_{column}_people"), ondelete=ondelete)


def upgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(sa.Column("promoted_admin", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("private", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("banned_until", UTC, nullable=True))
        batch_op.add_column(sa.Column("ban_reason", sa.String(length=255), nullable=True))
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=16), server_default="visible", nullable=False))
        batch_op.add_column(sa.Column("deleted_at", UTC, nullable=True))
        batch_op.add_column(sa.Column("author_private", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index(batch_op.f("ix_posts_deleted_at"), ["deleted_at"], unique=False)
    op.create_table(
        "audit_log",
        sa.Column("id", BIG, nullable=False),
        sa.Column("actor_id", BIG, nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target_person_id", BIG, nullable=True),
        sa.Column("target_post_id", BIG, nullable=True),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        _people_fk("actor_id", "audit_log", "SET NULL"),
        _people_fk("target_person_id", "audit_log", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_actor_id"), "audit_log", ["actor_id"], unique=False)
    op.create_index(op.f("ix_audit_log_target_person_id"), "audit_log", ["target_person_id"], unique=False)
    op.create_index(op.f("ix_audit_log_created_at"), "audit_log", ["created_at"], unique=False)
    op.create_table(
        "reports",
        sa.Column("post_id", BIG, nullable=False),
        sa.Column("reporter_id", BIG, nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("resolved_at", UTC, nullable=True),
        sa.ForeignKeyConstraint(["post_id"], ["posts.id"], name=op.f("fk_reports_post_id_posts"), ondelete="CASCADE"),
        _people_fk("reporter_id", "reports"),
        sa.PrimaryKeyConstraint("post_id", "reporter_id", name=op.f("pk_reports")),
    )
    op.create_index("ix_reports_resolved_post", "reports", ["resolved_at", "post_id"], unique=False)
    for table, index in (("blocks", ("blocked_id", "blocker_id")), ("follow_requests", ("followee_id", "follower_id"))):
        first, second = index[1], index[0]
        op.create_table(
            table,
            sa.Column(first, BIG, nullable=False),
            sa.Column(second, BIG, nullable=False),
            sa.Column("created_at", UTC, nullable=False),
            _people_fk(first, table),
            _people_fk(second, table),
            sa.PrimaryKeyConstraint(first, second, name=op.f(f"pk_{table}")),
        )
    op.create_index("ix_blocks_blocked_blocker", "blocks", ["blocked_id", "blocker_id"], unique=False)
    op.create_index("ix_follow_requests_followee", "follow_requests", ["followee_id", "follower_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_follow_requests_followee", table_name="follow_requests")
    op.drop_table("follow_requests")
    op.drop_index("ix_blocks_blocked_blocker", table_name="blocks")
    op.drop_table("blocks")
    op.drop_index("ix_reports_resolved_post", table_name="reports")
    op.drop_table("reports")
    op.drop_index(op.f("ix_audit_log_created_at"), table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_target_person_id"), table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_actor_id"), table_name="audit_log")
    op.drop_table("audit_log")
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_posts_deleted_at"))
        batch_op.drop_column("author_private")
        batch_op.drop_column("deleted_at")
        batch_op.drop_column("status")
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_column("ban_reason")
        batch_op.drop_column("banned_until")
        batch_op.drop_column("private")
        batch_op.drop_column("promoted_admin")
