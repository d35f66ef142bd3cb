"""A post's gallery messages follow it out of the public places and back: /hide and /restore, a report
kept or removed, /delete, a ban and its end, /private on and off; whatever order the outbox rows are
sent in, a gallery shows a listed post exactly once and an unlisted one not at all."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select, update

from core import bans, gallery, scheduler
from core.app import Core
from core.messenger import MessageGone, MessageRef
from core.models import Delivery, Person, Post, utcnow
from core.outbox import Outbox
from core.replies import Reply
from tests.fakes.platform import FakeMessenger, add_post
from tests.safety_support import drained
from tests.support import Chat


@dataclass
class Wall(FakeMessenger):
    """A platform that deletes messages, as Telegram and Discord do: `showing` is what a gallery
    shows now (each message's latest content), and a deleted message can be neither edited nor
    deleted again."""

    shown: dict[MessageRef, Reply] = field(default_factory=dict)
    deleted: list[MessageRef] = field(default_factory=list)
    gate: asyncio.Event | None = None  # if given, a send to the gallery (rendered already) waits for it
    at_gate: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, chat_id: str, reply: Reply) -> MessageRef:
        if self.gate is not None and chat_id == "gallery":
            self.at_gate.set()
            await self.gate.wait()
        ref = await super().send(chat_id, reply)
        self.shown[ref] = reply
        return ref

    async def edit(self, ref: MessageRef, reply: Reply) -> MessageRef:
        if ref not in self.shown:
            raise MessageGone("message to edit not found")
        await super().edit(ref, reply)
        self.shown[ref] = reply
        return ref

    async def delete(self, ref: MessageRef) -> None:
        if self.shown.pop(ref, None) is None:
            raise MessageGone("message to delete not found")
        self.deleted.append(ref)

    def showing(self, chat_id: str = "gallery") -> list[int | None]:
        return sorted((r.post_id for ref, r in self.shown.items() if ref.chat_id == chat_id), key=lambda p: p or 0)


async def wall(core: Core, *, now: bool = True) -> Wall:
    """A gallery on a deleting platform; with `now` false its rows wait until `register_messenger`."""
    platform = Wall()
    core.register_gallery("console", "gallery")
    if now:
        core.register_messenger(platform)
    return platform


async def test_a_restored_post_is_published_again_once_however_often_it_is_restored(chat: Chat, core: Core) -> None:
    platform = await wall(core)
    post_id = await chat.post("alice", "a fox to hide")
    await drained(core)
    assert platform.showing() == [post_id]
    await chat.say("admin", f"/hide {post_id}")
    await drained(core)
    assert platform.showing() == [] and len(platform.deleted) == 1

    assert "is back" in await chat.text("admin", f"/restore {post_id}")
    assert "is not hidden" in await chat.text("admin", f"/restore {post_id}")
    await drained(core)
    assert platform.showing() == [post_id] and len(platform.to("gallery")) == 2  # a new message, one

    # A second round out and back works the same.
    await chat.say("admin", f"/hide {post_id}")
    await chat.say("admin", f"/restore {post_id}")  # before the removal went out: the message stays
    await drained(core)
    assert platform.showing() == [post_id] and len(platform.to("gallery")) == 2
    await chat.say("admin", f"/hide {post_id}")  # the kept message is taken down the next time
    await drained(core)
    assert platform.showing() == [] and len(platform.deleted) == 2


async def test_a_restore_before_anything_was_sent_leaves_one_message(chat: Chat, core: Core) -> None:
    platform = await wall(core, now=False)
    post_id = await chat.post("alice", "a fox")
    await chat.say("admin", f"/hide {post_id}")
    await chat.say("admin", f"/restore {post_id}")
    core.register_messenger(platform)
    await drained(core)
    assert platform.showing() == [post_id] and len(platform.to("gallery")) == 1


async def test_a_restore_that_comes_before_the_removal_is_sent_leaves_one_message(chat: Chat, core: Core) -> None:
    platform = await wall(core)
    post_id = await chat.post("alice", "a fox")
    await drained(core)
    await core.outbox.stop()  # the removal and the new publication wait, in that order
    await chat.say("admin", f"/hide {post_id}")
    await chat.say("admin", f"/restore {post_id}")
    async with core.sessions() as session:
        waiting = list(await session.scalars(select(Delivery.key).where(Delivery.status == "pending")))
    assert len(waiting) == 2  # the removal and the next round's publication
    await restart_outbox(core, platform)
    assert platform.showing() == [post_id] and platform.deleted == [] and len(platform.to("gallery")) == 1


async def test_a_post_taken_out_again_before_it_was_published_again_stays_out(chat: Chat, core: Core) -> None:
    platform = await wall(core)
    post_id = await chat.post("alice", "a fox")
    await drained(core)
    await chat.say("admin", f"/hide {post_id}")
    await drained(core)
    await core.outbox.stop()
    await chat.say("admin", f"/restore {post_id}")
    await chat.say("admin", f"/hide {post_id}")  # the new publication has not gone out yet
    await restart_outbox(core, platform)
    assert platform.showing() == [] and len(platform.to("gallery")) == 1
    await chat.say("admin", f"/restore {post_id}")
    await drained(core)
    assert platform.showing() == [post_id] and len(platform.to("gallery")) == 2


async def test_a_post_taken_out_while_its_publication_is_on_its_way_is_taken_down_after_it(
    chat: Chat, core: Core
) -> None:
    platform = await wall(core)
    platform.gate = asyncio.Event()
    post_id = await chat.post("alice", "a fox")
    async with asyncio.timeout(10):
        await platform.at_gate.wait()  # rendered while listed, the card on its way
    await chat.say("admin", f"/hide {post_id}")
    platform.gate.set()
    await drained(core)
    assert platform.showing() == [] and len(platform.deleted) == 1


async def restart_outbox(core: Core, platform: Wall) -> None:
    """A new sender (as after a restart) sends what the stopped one left, and goes on sending."""
    fresh = Outbox(core.sessions, poll_seconds=0.05)
    fresh.renderers = dict(core.outbox.renderers)
    fresh.register(platform)
    core.outbox = fresh
    await fresh.start()
    await drained(core)


async def test_a_ban_takes_the_authors_gallery_messages_down_and_its_end_brings_the_listed_ones_back(
    chat: Chat, core: Core
) -> None:
    platform = await wall(core)
    await chat.say("spammer", "/start")
    kept = await chat.post("bob", "bob's fox")
    theirs = [await chat.post("spammer", f"spam {i}") for i in range(4)]
    secret = await chat.post("spammer", "a secret --private")
    await drained(core)
    assert platform.showing() == sorted([kept, *theirs])
    await chat.say("admin", "/ban @spammer 7d flooding")
    await drained(core)
    assert platform.showing() == [kept]

    await chat.say("admin", f"/hide {theirs[0]}")  # hidden during the ban: it stays out after it
    await chat.say("admin", "/unban @spammer")
    assert "is not banned" in await chat.text("admin", "/unban @spammer")
    await drained(core)
    assert platform.showing() == sorted([kept, *theirs[1:]])
    assert secret not in platform.showing() and len(platform.to("gallery")) == 1 + 4 + 3

    # A ban that ends by itself: the scheduler's pass, run twice, publishes them once.
    await chat.say("admin", "/ban @spammer 7d again")
    await drained(core)
    assert platform.showing() == [kept]
    later = utcnow() + timedelta(days=8)
    assert await bans.lift_expired(core.sessions, later, core.galleries) == 1
    assert await bans.lift_expired(core.sessions, later, core.galleries) == 0
    await drained(core)
    assert platform.showing() == sorted([kept, *theirs[1:]]) and len(platform.to("gallery")) == 8 + 3


async def test_a_ban_that_ended_is_lifted_by_the_persons_next_command_with_their_posts_back(
    chat: Chat, core: Core
) -> None:
    platform = await wall(core)
    post_id = await chat.post("spammer", "spam")
    assert "is banned" in await chat.text("admin", "/ban @spammer 1d")
    await drained(core)
    assert platform.showing() == []
    async with core.sessions() as session:
        await session.execute(
            update(Person).where(Person.handle == "spammer").values(banned_until=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    await chat.say("spammer", "/profile")
    await drained(core)
    assert platform.showing() == [post_id]


async def test_private_on_takes_the_profiles_posts_out_of_the_gallery_and_off_brings_them_back(
    chat: Chat, core: Core
) -> None:
    platform = await wall(core)
    posts = [await chat.post("alice", f"fox {i}") for i in range(3)]
    await drained(core)
    await chat.say("alice", "/private on")
    await chat.say("alice", "/private on")
    await drained(core)
    assert platform.showing() == []
    fresh = await chat.post("alice", "made while private")
    await drained(core)
    assert platform.showing() == []
    await chat.say("alice", "/private off")
    await chat.say("alice", "/private off")
    await drained(core)
    assert platform.showing() == [*posts, fresh] and len(platform.to("gallery")) == 3 + 4


async def test_delete_remove_and_keep_take_the_post_out_or_bring_it_back(chat: Chat, core: Core) -> None:
    core.settings.report_hide_threshold = 1
    platform = await wall(core)
    deleted, removed, kept = [await chat.post("alice", f"fox {i}") for i in range(3)]
    await drained(core)
    assert f"Deleted #{deleted}" in await chat.text("alice", f"/delete {deleted}")
    for post_id in (removed, kept):
        await chat.say("bob", f"/report {post_id} spam")  # one report is enough here: under review
    await drained(core)
    assert platform.showing() == []
    await chat.press("admin", f"remove {removed}")
    await chat.press("admin", f"keep {kept}")
    await drained(core)
    assert platform.showing() == [kept] and len(platform.deleted) == 3


async def test_a_like_edit_due_after_the_post_was_taken_out_edits_nothing(chat: Chat, core: Core) -> None:
    """The like's edit waits for its window; by then the post was hidden (its message edited into a line
    on a platform that cannot delete) and restored (a new message): the old message stays a line."""
    window = 2.0
    core.settings.gallery_refresh_seconds = window
    core.outbox.poll_seconds = 0.05
    platform = FakeMessenger()  # no delete: a message taken down is edited into gallery.REMOVED
    core.register_messenger(platform)
    core.register_gallery("console", "gallery")
    post_id = await chat.post("alice", "a fox")
    await drained(core)
    await asyncio.sleep(window - time.time() % window + 0.01)  # at a window's start: its edit waits
    await chat.say("bob", f"/like {post_id}")
    await chat.say("admin", f"/hide {post_id}")
    await drained(core)
    await chat.say("admin", f"/restore {post_id}")
    await drained(core)
    await asyncio.sleep(window - time.time() % window + 0.2)  # the like's window is over: its edit is due
    await drained(core)
    [taken_down] = [ref for ref, reply in platform.edits if reply.text == gallery.REMOVED]
    assert [reply.text for ref, reply in platform.edits if ref == taken_down] == [gallery.REMOVED]
    assert len(platform.to("gallery")) == 2  # the original, then the restored post's new message
    async with core.sessions() as session:
        edit = await session.scalar(select(Delivery).where(Delivery.key.startswith("galleryedit:")))
    assert edit is not None and edit.status == "skipped"


async def test_a_gallery_message_older_than_the_outbox_retention_is_still_taken_down(chat: Chat, core: Core) -> None:
    platform = await wall(core)
    post_id = await chat.post("alice", "an old fox")
    await drained(core)
    async with core.sessions() as session:
        await session.execute(update(Delivery).values(created_at=utcnow() - scheduler.KEEP - timedelta(days=1)))
        await session.commit()
    await scheduler.prune(core)
    await chat.say("admin", f"/hide {post_id}")
    await drained(core)
    assert platform.showing() == []


async def test_banning_a_prolific_person_costs_the_same_statements_as_banning_a_quiet_one(
    chat: Chat, core: Core
) -> None:
    from tests.core.test_statement_counts import counting

    platform = await wall(core)
    await chat.say("admin", "/start")
    made = []
    for who, count in (("quiet", 2), ("prolific", 60)):
        await chat.say(who, "/start")
        made += [await add_post(core, who, utcnow()) for _ in range(count)]
    async with core.sessions() as session:
        for post_id in made:
            found = await session.get(Post, post_id)
            assert found is not None
            await gallery.publish(session, core.galleries, found)
        await session.commit()
    await drained(core)
    assert len(platform.showing()) == 62
    await core.queue.stop()  # its workers polling, and the checkpoints, would be counted too
    await core.checkpointer.stop()
    for line, showing in (("/ban @{}", 0), ("/unban @{}", 62)):
        await core.outbox.stop()  # its polling would be counted too
        spent = []
        for who in ("quiet", "prolific"):
            with counting(core) as seen:
                await chat.say("admin", line.format(who))
            spent.append(len(seen))
        assert spent[0] == spent[1], (line, spent)
        await restart_outbox(core, platform)
        assert len(platform.showing()) == showing
    assert len(platform.deleted) == 62 and len(platform.to("gallery")) == 2 * 62
