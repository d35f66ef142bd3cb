"""ORM models: people, their platform identities, follows, posts and likes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite has no BIGINT autoincrement; the variant keeps ids 64-bit on PostgreSQL.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC and always hands back an aware datetime, on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def table(model: type[Base]) -> Table:
    """A model's table, for the few hot statements written on the table rather than the ORM entity (no
    objects to load or keep in step). SQLAlchemy types `__table__` as any FromClause; a declarative
    model's is always a Table."""
    return cast(Table, model.__table__)


class Person(Base):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    handle: Mapped[str] = mapped_column(String(32), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    bio: Mapped[str] = mapped_column(String(280), default="")
    # Taken with a conditional UPDATE before each generation request: the cooldown, and a per-person lock.
    last_generation_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Digest and notification preferences; None means the configured default.
    timezone: Mapped[str | None] = mapped_column(String(64))
    digest_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    digest_time: Mapped[str | None] = mapped_column(String(5))  # "HH:MM" in the person's time zone
    notify_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    last_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Safety (core.safety): promoted by a configured admin with /admin add; a private profile; a ban.
    promoted_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    private: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    banned_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ban_reason: Mapped[str | None] = mapped_column(String(255))


class Identity(Base):
    """One account of a person on one platform (telegram, discord, console)."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("platform", "platform_user_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(BigId, ForeignKey("people.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(16))
    platform_user_id: Mapped[str] = mapped_column(String(64))
    chat_id: Mapped[str | None] = mapped_column(String(64))
    username: Mapped[str | None] = mapped_column(String(64))
    unreachable: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Follow(Base):
    __tablename__ = "follows"
    # The primary key serves "whom do I follow"; the index serves "who follows me".
    __table_args__ = (Index("ix_follows_followee_follower", "followee_id", "follower_id"),)

    follower_id: Mapped[int] = mapped_column(BigId, ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    followee_id: Mapped[int] = mapped_column(BigId, ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Post(Base):
    __tablename__ = "posts"
    __table_args__ = (
        # Profile pages and the feed walk one author's posts newest first.
        Index("ix_posts_author_id_id", "author_id", "id"),
        # The feed's walk over followed people's shown posts, and the digest's ranking of their last day by hot,
        # from the index alone (migrations 0010_speed, 0014_digest_walk).
        Index("ix_posts_author_shown_id_hot", "author_id", "visibility", "status", "id", "hot", "created_at"),
        # /top walks the hot score downwards and stops after a page.
        Index("ix_posts_hot", "hot"),
        Index("ix_posts_parent_id", "parent_id"),
        # The first post of the last day, so digests read only that day of each followed author's posts
        # (through ix_posts_author_id_id), however long their history.
        Index("ix_posts_created_at", "created_at"),
        # A deleted post's number is never given to another post: "#12" in a chat stays #12.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    author_id: Mapped[int] = mapped_column(BigId, ForeignKey("people.id", ondelete="CASCADE"))
    prompt: Mapped[str] = mapped_column(Text)
    revised_prompt: Mapped[str | None] = mapped_column(Text)
    image_path: Mapped[str] = mapped_column(String(255))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(BigInteger)
    backend: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(64))
    parent_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("posts.id", ondelete="SET NULL"))
    visibility: Mapped[str] = mapped_column(String(16), default="public")
    like_count: Mapped[int] = mapped_column(Integer, default=0)
    remix_count: Mapped[int] = mapped_column(Integer, default=0)
    comment_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # What the image started from: None (the prompt alone), "image" (the parent's picture), "prompt-only"
    # (a remix whose backend could not start from a picture), "upload" (the author's own photo).
    origin: Mapped[str | None] = mapped_column(String(16))
    # The ids of every ancestor, nearest first ("12,7,3"), written once at creation: parent_id is cleared
    # when the parent is deleted, and this keeps the chain past the gap.
    lineage: Mapped[str | None] = mapped_column(Text)
    # Time-decayed popularity that does not depend on "now" (see core.feed.ranking), so it can be indexed.
    hot: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Moderation state (core.visibility): visible, review (reported), hidden (by an admin), banned
    # (its author is), deleted (kept until the purge). Public listings read only `visible` rows.
    status: Mapped[str] = mapped_column(String(16), default="visible", server_default="visible")
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # A copy of the author's private-profile flag, so that /top and galleries filter on the post alone.
    author_private: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Counts the times the post left or came back to the public places; its gallery messages of each
    # round have their own outbox keys, so a post brought back is published anew (core.gallery).
    gallery_round: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    @property
    def is_public(self) -> bool:
        return self.visibility == "public"


class Like(Base):
    __tablename__ = "likes"

    post_id: Mapped[int] = mapped_column(BigId, ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True)
    person_id: Mapped[int] = mapped_column(BigId, ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GenerationJob(Base):
    """One request for an image, persisted before any backend call; see core.gen.queue."""

    __tablename__ = "generation_jobs"
    __table_args__ = (
        # The workers pick the oldest runnable job.
        Index("ix_generation_jobs_status_id", "status", "id"),
        # Quota and in-flight counts per person.
        Index("ix_generation_jobs_person_status", "person_id", "status", "finished_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    person_id: Mapped[int] = mapped_column(BigId, ForeignKey("people.id", ondelete="CASCADE"))
    prompt: Mapped[str] = mapped_column(Text)
    seed: Mapped[int] = mapped_column(BigInteger)
    aspect: Mapped[str] = mapped_column(String(8), default="1:1")
    visibility: Mapped[str] = mapped_column(String(16), default="public")
    parent_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("posts.id", ondelete="SET NULL"))
    # The picture to start from, relative to the media store, and whose it is ("parent" or "upload").
    source_path: Mapped[str | None] = mapped_column(String(255))
    source_kind: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued, running, done, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    worker: Mapped[str | None] = mapped_column(String(64))
    # A running job belongs to its worker until then; the worker renews it while it runs, and any
    # worker may take the job over once it has passed (its process died). See core.gen.queue.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    post_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("posts.id", ondelete="SET NULL"))
    # Where the person sees this job's progress (a core.messenger.MessageRef, encoded), and what it shows.
    progress_ref: Mapped[str | None] = mapped_column(String(200))
    shown_status: Mapped[str | None] = mapped_column(String(16))
    # The chat the request came from: where the result goes when no progress message was ever shown.
    platform: Mapped[str | None] = mapped_column(String(16))
    chat_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Delivery(Base):
    """The outbox: one message the core sends on its own, written before it is attempted."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_platform_status_id", "platform", "status", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)  # idempotency: one row per logical message
    platform: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # job, gallery, text, ...
    payload: Mapped[str] = mapped_column(Text)  # JSON, rendered into a Reply at send time
    person_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("people.id", ondelete="CASCADE"))
    # pending, claimed (taken by a sender, not attempted yet), sending, sent, skipped (nothing to send /
    # unreachable), uncertain (outcome unknown), failed; withdrawn: a gallery message since deleted
    # (or edited into a line) because its post left the public places
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_ref: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    # The claim holding the row (claimed, sending), and when its process last said it is alive: a claim
    # not renewed for core.outbox.LEASE belongs to a dead process.
    claim: Mapped[str | None] = mapped_column(String(32))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ModerationRefusal(Base):
    """A prompt that moderation refused, kept for admins."""

    __tablename__ = "moderation_refusals"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(BigId, ForeignKey("people.id", ondelete="CASCADE"), index=True)
    prompt: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Notification(Base):
    """Something that happened to a person (a follow, a like, a remix), waiting to be told in a batch."""

    __tablename__ = "notifications"
    # The batcher looks for people with events not yet batched.
    __table_args__ = (Index("ix_notifications_batched_recipient", "batched_at", "recipient_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    recipient_id: Mapped[int] = mapped_column(BigId, ForeignKey("people.id", ondelete="CASCADE"))
    actor_id: Mapped[int] = mapped_column(BigId, ForeignKey("people.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # follow, like, remix, comment, remix2 (a remix of a remix)
    post_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("posts.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    batched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LinkCode(Base):
    """A one-time code that joins another platform's identity to this one's person (core.linking).

    It names the identity that asked for it, not the person: a person row may be merged away, an
    identity moves along, so a repeated redeem still finds who the code belonged to."""

    __tablename__ = "link_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex; the code itself is never stored
    identity_id: Mapped[int] = mapped_column(BigId, ForeignKey("identities.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LinkGuess(Base):
    """A redeem that failed (wrong, expired or used code): a few per person per window, no more."""

    __tablename__ = "link_guesses"
    __table_args__ = (Index("ix_link_guesses_identity_created", "identity_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    identity_id: Mapped[int] = mapped_column(BigId, ForeignKey("identities.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEntry(Base):
    """An admin action, a report decision, a ban or a moderation refusal: who, what, when, why.
    Never purged."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("people.id", ondelete="SET NULL"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    target_person_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    # No foreign key: the entry outlives the post's purge.
    target_post_id: Mapped[int | None] = mapped_column(BigId)
    reason: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Report(Base):
    """One person's report of one post (one per person per post)."""

    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_resolved_post", "resolved_at", "post_id"),)

    post_id: Mapped[int] = mapped_column(BigId, ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True)
    reporter_id: Mapped[int] = mapped_column(BigId, ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    reason: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Block(Base):
    __tablename__ = "blocks"
    __table_args__ = (Index("ix_blocks_blocked_blocker", "blocked_id", "blocker_id"),)

    blocker_id: Mapped[int] = mapped_column(BigId, ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    blocked_id: Mapped[int] = mapped_column(BigId, ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FollowRequest(Base):
    """A request to follow a private profile, waiting for its owner's approval."""

    __tablename__ = "follow_requests"
    __table_args__ = (Index("ix_follow_requests_followee", "followee_id", "follower_id"),)

    follower_id: Mapped[int] = mapped_column(BigId, ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    followee_id: Mapped[int] = mapped_column(BigId, ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProcessBeat(Base):
    """One running process of the deployment, written at start and renewed every few seconds
    (core.health): what roles it has and what it leads."""

    __tablename__ = "processes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    roles: Mapped[str] = mapped_column(String(128))  # comma-separated, see core.roles
    version: Mapped[str] = mapped_column(String(32))
    # What it holds right now: "scheduler", "outbox:telegram", ... comma-separated.
    leads: Mapped[str] = mapped_column(String(255), default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class SeenUpdate(Base):
    """A platform update (a Telegram update id) some process has taken: one handling across processes."""

    __tablename__ = "seen_updates"

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    update_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Comment(Base):
    """A comment under a post; pages are read newest first by id (keyset)."""

    __tablename__ = "comments"
    __table_args__ = (Index("ix_comments_post_id_id", "post_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    post_id: Mapped[int] = mapped_column(BigId, ForeignKey("posts.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(BigId, ForeignKey("people.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CommentThread(Base):
    """A platform's own comment thread under a gallery post (a Telegram discussion group's thread)."""

    __tablename__ = "comment_threads"

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    thread_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    post_id: Mapped[int] = mapped_column(BigId, ForeignKey("posts.id", ondelete="CASCADE"), index=True)


class SentFile(Base):
    """A post's picture as a platform stored it when we sent it: the platform's own id for that very
    file (Telegram's file_unique_id, one per photo size). Telegram re-encodes photos, dropping the
    signature; a photo forwarded back for /verify is still recognised by this id."""

    __tablename__ = "sent_files"

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(128), primary_key=True)
    post_id: Mapped[int] = mapped_column(BigId, ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
