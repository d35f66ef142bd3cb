"""Gallery channels: every listed post is sent to each registered gallery through the outbox, and
taken down again while it is out of the public places (hidden, deleted, its author banned or private)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core import cards, outbox, visibility
from core.config import Settings, parse_clock
from core.feed.digest import WINDOW, trending
from core.feed.localtime import digest_due
from core.gen.media import MediaStore
from core.messenger import MessageRef
from core.models import Delivery, Post, utcnow
from core.outbox import Outgoing
from core.replies import Reply
from core.visibility import VISIBLE

REMOVED = "This post was removed."
CHUNK = 200  # posts whose gallery messages are looked up in one statement
LIVE = "sent"  # a publication whose message still shows the post; "withdrawn" once it is taken down
WITHDRAWN = "withdrawn"
SENDING = ("claimed", "sending")  # taken by a sender: rendered, or about to be, when the post was listed

# A post's gallery messages, round by round: every time it leaves the public places or comes back its
# `gallery_round` grows, and each round's publication has its own key, so a post brought back is
# published anew while a retried or doubled command (same round) still publishes once. Whatever the
# order in which the rows are then sent, at most one message shows the post in a gallery: a row is
# decided at send time from the post as it is then and from which earlier messages still show it.


def listed(post: Post | None) -> bool:
    """In the public places open to everyone (core.visibility.listed, for one loaded post)."""
    return post is not None and post.is_public and post.status == VISIBLE and not post.author_private


def publication_key(platform: str, chat_id: str, post_id: int, round_: int) -> str:
    base = f"gallery:{platform}:{chat_id}:{post_id}"  # round 0: the key publications always had
    return base if round_ == 0 else f"{base}:{round_}"


def _target(delivery: Delivery, payload: dict[str, Any]) -> int:
    """The publication an edit or a withdrawal is about (older rows name it in their key only)."""
    of = payload.get("of")
    return of if isinstance(of, int) else int(delivery.key.split(":")[1])


async def publish(session: AsyncSession, galleries: list[tuple[str, str]], post: Post) -> None:
    """A new post, to every gallery (if it is listed when its row is sent)."""
    await _publish(session, galleries, {post.id: post.gallery_round})


async def sync(session: AsyncSession, galleries: list[tuple[str, str]], post: Post, was_listed: bool) -> None:
    """After a change to one post: taken out of the galleries if it left the public places, published
    anew if it came back. The round is bumped on the loaded post, so it costs no statement of its own."""
    now = listed(post)
    if was_listed == now:
        return
    post.gallery_round += 1
    if now:
        await _publish(session, galleries, {post.id: post.gallery_round})
    else:
        await _withdraw(session, galleries, {post.id: post.gallery_round - 1})


async def unlisting(session: AsyncSession, galleries: list[tuple[str, str]], where: ColumnElement[bool]) -> None:
    """Before a change that takes the posts `where` picks out of the public places (a ban, a profile
    made private): those listed now start a new round and their gallery messages are withdrawn."""
    for rounds in await _next_round(session, where):
        await _withdraw(session, galleries, {post_id: round_ - 1 for post_id, round_ in rounds.items()})


async def relisting(session: AsyncSession, galleries: list[tuple[str, str]], where: ColumnElement[bool]) -> None:
    """After a change that brought the posts `where` picks back (a ban lifted, a profile made public):
    those listed now start a new round and are published anew. One that still shows in a gallery
    (its withdrawal not sent yet) keeps its message: the new round's row sees it and sends nothing."""
    for rounds in await _next_round(session, where):
        await _publish(session, galleries, rounds)


async def _next_round(session: AsyncSession, where: ColumnElement[bool]) -> list[dict[int, int]]:
    """One UPDATE for however many posts; their new rounds, in chunks for the lookups that follow."""
    rows = await session.execute(
        update(Post)
        .where(where, visibility.listed())
        .values(gallery_round=Post.gallery_round + 1)
        .returning(Post.id, Post.gallery_round)
        .execution_options(synchronize_session="fetch")
    )
    found = sorted((post_id, round_) for post_id, round_ in rows)
    return [dict(found[i : i + CHUNK]) for i in range(0, len(found), CHUNK)]


async def _publish(session: AsyncSession, galleries: list[tuple[str, str]], rounds: dict[int, int]) -> None:
    await outbox.add_many(
        session,
        [
            outbox.Message(
                key=publication_key(platform, chat_id, post_id, round_),
                platform=platform,
                chat_id=chat_id,
                kind="post",
                payload={"post": post_id, "round": round_} if round_ else {"post": post_id},
            )
            for post_id, round_ in rounds.items()
            for platform, chat_id in galleries
        ],
    )


async def _shown(
    session: AsyncSession, galleries: list[tuple[str, str]], upto: dict[int, int], statuses: tuple[str, ...]
) -> list[tuple[int, int, str, str, str | None]]:
    """(post id, delivery id, platform, chat id, message ref) of the posts' publications in `statuses`,
    over their rounds up to `upto[post]`: one statement for up to CHUNK posts."""
    keys = {
        publication_key(platform, chat_id, post_id, round_): post_id
        for post_id, last in upto.items()
        for round_ in range(last + 1)
        for platform, chat_id in galleries
    }
    if not keys:
        return []
    rows = await session.execute(
        select(Delivery.key, Delivery.id, Delivery.platform, Delivery.chat_id, Delivery.sent_ref).where(
            Delivery.key.in_(keys), Delivery.status.in_(statuses)
        )
    )
    return [(keys[key], delivery_id, platform, chat_id, ref) for key, delivery_id, platform, chat_id, ref in rows]


async def _withdraw(session: AsyncSession, galleries: list[tuple[str, str]], upto: dict[int, int]) -> None:
    """The posts left the public places: each message still showing one is deleted where the platform
    allows, and elsewhere edited into a line saying so. A publication the sender has in hand (already
    rendered, maybe on its way) gets its removal too, sent after it. Keyed by the round that ends, so
    a message kept by a restore that came first is withdrawn again the next time."""
    shown = await _shown(session, galleries, upto, (LIVE, *SENDING))
    await outbox.add_many(
        session,
        [
            outbox.Message(
                key=f"gallerygone:{delivery_id}:{upto[post_id] + 1}",
                platform=platform,
                chat_id=chat_id,
                kind="post",
                payload={"post": post_id, "gone": True, "of": delivery_id},
            )
            for post_id, delivery_id, platform, chat_id, _ in shown
        ],
    )


async def refresh_later(session: AsyncSession, galleries: list[tuple[str, str]], post: Post, every: float) -> None:
    """A like changed the post's count: bring its gallery messages up to date, at most once per
    `every` seconds each (likes within that window share one edit, which shows the count then)."""
    if not galleries:
        return
    live = await _shown(session, galleries, {post.id: post.gallery_round}, (LIVE,))
    window = int(utcnow().timestamp() // every)
    due = datetime.fromtimestamp((window + 1) * every, UTC)
    await outbox.add_many(
        session,
        [
            outbox.Message(
                key=f"galleryedit:{delivery_id}:{window}",
                platform=platform,
                chat_id=chat_id,
                kind="post",
                payload={"post": post.id, "ref": ref, "of": delivery_id},
                not_before=due,
            )
            for _, delivery_id, platform, chat_id, ref in live
            if ref is not None
        ],
    )


class PostRenderer:
    """Gallery rows, decided when they are sent: {"post": id, "round": n} publishes the post's card;
    with "ref", edits that message to the card as it is now; with "gone", takes that message down.
    Nothing is sent for a post no longer listed, nor for a message already taken down."""

    def __init__(self, media: MediaStore) -> None:
        self.media = media

    async def render(self, session: AsyncSession, delivery: Delivery, payload: dict[str, Any]) -> Outgoing | None:
        post = await session.get(Post, payload["post"])
        if payload.get("gone"):
            # Listed again: a restore came before the removal went out, and the message stays.
            ref = None if listed(post) else await self._showing(session, _target(delivery, payload))
            return None if ref is None else Outgoing(Reply(text=REMOVED), delete=MessageRef.decode(ref))
        if post is None or not listed(post):
            return None
        if "ref" in payload:
            # Only the message that shows the post now: never one taken down (edited back into a card).
            if await self._showing(session, _target(delivery, payload)) is None:
                return None
            [view] = await cards.views(session, [post])
            return Outgoing(cards.card(view, self.media, edit=True), edit=MessageRef.decode(payload["ref"]))
        round_ = payload.get("round", 0)
        if round_ != post.gallery_round or await self._shown_before(session, delivery, post.id, round_):
            return None  # a later round publishes it, or its message from an earlier round still shows
        [view] = await cards.views(session, [post])
        return Outgoing(cards.card(view, self.media))

    @staticmethod
    async def _showing(session: AsyncSession, publication_id: int) -> str | None:
        """The message of the publication, while it shows the post (the row before it in this chat,
        if any, has been sent by now: the outbox sends a chat's rows one after another)."""
        found = await session.execute(select(Delivery.status, Delivery.sent_ref).where(Delivery.id == publication_id))
        row = found.first()
        return row.sent_ref if row is not None and row.status == LIVE else None

    @staticmethod
    async def _shown_before(session: AsyncSession, delivery: Delivery, post_id: int, round_: int) -> bool:
        """Whether a publication of an earlier round still shows the post in this row's chat."""
        if round_ == 0:
            return False
        here = [(delivery.platform, delivery.chat_id)]
        return bool(await _shown(session, here, {post_id: round_ - 1}, (LIVE,)))

    async def sent(self, session: AsyncSession, delivery: Delivery, payload: dict[str, Any], ref: MessageRef) -> None:
        if payload.get("gone"):  # in the same transaction as the removal is marked sent
            await session.execute(
                update(Delivery)
                .where(Delivery.id == _target(delivery, payload), Delivery.status == LIVE)
                .values(status=WITHDRAWN)
            )


async def best_of_pass(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, galleries: list[tuple[str, str]], now: datetime
) -> int:
    """Once a day, at GALLERY_BEST_OF_TIME in the default time zone, each gallery gets the day's best."""
    due, day = digest_due(now, ZoneInfo(settings.default_timezone), parse_clock(settings.gallery_best_of_time))
    if not due or not galleries:
        return 0
    async with sessions() as session:
        best = [post_id for post_id, _ in await trending(session, now - WINDOW, settings.digest_size)]
        if not best:
            return 0
        for platform, chat_id in galleries:
            await outbox.add(
                session,
                key=f"bestof:{platform}:{chat_id}:{day.isoformat()}",
                platform=platform,
                chat_id=chat_id,
                kind="bestof",
                payload={"posts": best, "date": day.isoformat()},
            )
        await session.commit()
    return len(galleries)
