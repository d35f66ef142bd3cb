"""One visibility rule (core.visibility) for every public place, /hide and /restore by admins,
soft deletion with a retention period and its purge, and the audit trail that outlives it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from core import gallery, safety, scheduler
from core.app import Core
from core.models import utcnow
from tests.fakes.platform import FakeMessenger
from tests.safety_support import (
    audit_actions,
    audit_count,
    drained,
    in_digest,
    in_feed,
    in_top,
    on_profile,
    post_ids,
    post_row,
)
from tests.support import Chat


async def test_a_hidden_post_is_absent_from_every_public_place_and_back_after_restore(chat: Chat, core: Core) -> None:
    platform = FakeMessenger()
    core.register_gallery("console", "gallery")
    await chat.say("alice", "/start")
    await chat.say("reader", "/follow alice")
    kept = await chat.post("alice", "a kept fox")
    hidden = await chat.post("alice", "a fox to hide")
    assert "is hidden" in await chat.text("admin", f"/hide {hidden} spam")
    core.register_messenger(platform)  # the gallery's rows are sent now, after the hide
    await drained(core)

    assert hidden not in await in_feed(chat, "reader") and kept in await in_feed(chat, "reader")
    assert hidden not in await in_top(chat, "reader") and kept in await in_top(chat, "reader")
    assert f"#{hidden}" not in await on_profile(chat, "reader", "alice")
    assert f"#{kept}" in await on_profile(chat, "reader", "alice")
    digest = await in_digest(core, "reader")
    assert hidden not in digest and kept in digest
    assert [r.post_id for r in platform.to("gallery")] == [kept]
    assert "There is no post" in await chat.text("reader", f"/post {hidden}")
    assert "There is no post" in await chat.text("reader", f"/like {hidden}")
    # Its author still sees it, marked.
    assert "Hidden by an admin" in await chat.text("alice", f"/post {hidden}")
    assert f"#{hidden}" in await on_profile(chat, "alice", "alice")

    assert "is back" in await chat.text("admin", f"/restore {hidden}")
    assert hidden in await in_feed(chat, "reader")
    assert hidden in await in_top(chat, "reader")
    assert f"#{hidden}" in await on_profile(chat, "reader", "alice")
    assert hidden in await in_digest(core, "reader")
    assert post_ids(await chat.say("reader", f"/post {hidden}")) == [hidden]
    assert await audit_actions(core) == [("hide", hidden), ("restore", hidden)]


async def test_hide_and_restore_are_refused_to_non_admins_typed_or_pressed(chat: Chat) -> None:
    post_id = await chat.post("alice")
    for line in (f"/hide {post_id}", f"/restore {post_id}"):
        assert await chat.text("bob", line) == "Only admins can do that."
        [pressed] = await chat.press("bob", line.removeprefix("/"))
        assert pressed.text == "Only admins can do that." and pressed.error
    row = await post_row(chat.core, post_id)
    assert row is not None and row.status == "visible"
    await chat.say("admin", f"/hide {post_id}")
    assert await chat.text("alice", f"/restore {post_id}") == "Only admins can do that."  # not even its author
    row = await post_row(chat.core, post_id)
    assert row is not None and row.status == "hidden"


async def test_delete_is_soft_restorable_then_purged_after_the_retention_period(chat: Chat, media_dir: Path) -> None:
    core = chat.core
    await chat.say("alice", "/start")
    await chat.say("reader", "/follow alice")
    post_id = await chat.post("alice")
    assert f"Deleted #{post_id}" in await chat.text("alice", f"/delete {post_id}")
    row = await post_row(core, post_id)
    assert row is not None and row.status == "deleted"
    assert core.media.path(row.image_path).exists()  # kept for a restore
    assert post_id not in await in_feed(chat, "reader")
    assert post_id not in await in_top(chat, "reader")
    assert await chat.text("reader", f"/like {post_id}") == f"Post #{post_id} was deleted."
    assert await chat.text("alice", f"/post {post_id}") == f"Post #{post_id} was deleted."

    assert "is back (it had been deleted)" in await chat.text("admin", f"/restore {post_id}")
    assert post_id in await in_feed(chat, "reader")

    await chat.say("admin", f"/delete {post_id}")  # an admin removal
    days = core.settings.deleted_retention_days
    assert await safety.purge(core.sessions, core.media, utcnow() + timedelta(days=days - 1), days) == 0
    assert await post_row(core, post_id) is not None
    assert await safety.purge(core.sessions, core.media, utcnow() + timedelta(days=days + 1), days) == 1
    assert await post_row(core, post_id) is None
    assert not core.media.path(row.image_path).exists()
    assert await chat.text("reader", f"/post {post_id}") == f"There is no post #{post_id}."
    assert await audit_actions(core) == [("restore", post_id), ("delete", post_id), ("purge", post_id)]


async def test_the_audit_trail_survives_the_purges(chat: Chat) -> None:
    core = chat.core
    post_id = await chat.post("alice")
    await chat.say("admin", f"/hide {post_id}")
    await chat.say("admin", f"/delete {post_id}")
    before = await audit_count(core)
    await safety.purge(core.sessions, core.media, utcnow() + timedelta(days=365), 30)
    await scheduler.prune(core)  # the outbox and notification pruning
    assert await audit_count(core) == before + 1  # the purge added its own entry, removed none


async def test_a_gallery_message_of_a_post_taken_out_is_edited_where_it_cannot_be_deleted(
    chat: Chat, core: Core
) -> None:
    platform = FakeMessenger()  # has no delete: the message is edited into a line instead
    core.register_messenger(platform)
    core.register_gallery("console", "gallery")
    hidden = await chat.post("alice", "a fox to hide")
    removed = await chat.post("alice", "a fox to remove")
    await drained(core)
    assert [r.post_id for r in platform.to("gallery")] == [hidden, removed]
    await chat.say("admin", f"/hide {hidden}")
    await chat.say("alice", f"/delete {removed}")
    await drained(core)
    removals = [ref for ref, reply in platform.edits if reply.text == gallery.REMOVED]
    assert sorted(ref.chat_id for ref in removals) == ["gallery", "gallery"]
    assert len({ref.message_id for ref in removals}) == 2  # each post's own message
    assert len(platform.to("gallery")) == 2  # nothing sent anew
