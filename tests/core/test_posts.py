"""Posts through the command layer: /imagine, /remix, variations, likes, /post and /delete."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select, update

from bench.commands import presses_apart  # the benchmark's: presses a moment apart, past a double tap
from core import people, posts, safety
from core.feed.ranking import hot_score
from core.models import GenerationJob, Like, Post, utcnow
from core.provenance import pixel_hash
from core.replies import MAX_ACTION_BYTES, Reply
from tests.support import Chat, actor


async def purged(chat: Chat) -> None:
    """Run the purge as if the retention period had passed."""
    days = chat.core.settings.deleted_retention_days
    await safety.purge(chat.core.sessions, chat.core.media, utcnow() + timedelta(days=days + 1), days)


def media_files(media_dir: Path) -> list[Path]:
    return [p for p in media_dir.rglob("*") if p.is_file()] if media_dir.exists() else []


def inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


async def card(chat: Chat, who: str, post_id: int) -> Reply:
    """The post's card as `who` sees it (through /post, so it works however /imagine answers)."""
    [reply] = await chat.say(who, f"/post {post_id}")
    assert reply.post_id == post_id, reply.text
    return reply


async def row(chat: Chat, post_id: int) -> Post | None:
    async with chat.core.sessions() as session:
        return await session.get(Post, post_id)


async def count(chat: Chat, model: type) -> int:
    async with chat.core.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def made(chat: Chat, replies: list[Reply]) -> int:
    """The post a queued generation (started by `replies`) ends up as."""
    job = await chat.finish(replies)
    assert job.status == "done" and job.post_id is not None, job.error
    return job.post_id


def actions(reply: Reply) -> list[str]:
    return [b.action for r in reply.buttons for b in r]


# /imagine


async def test_imagine_makes_a_post_with_its_image_caption_and_buttons(chat: Chat, media_dir: Path) -> None:
    post_id = await chat.post("alice", "a red fox in the snow")
    reply = await card(chat, "alice", post_id)
    assert reply.image is not None
    path = reply.image.path
    assert path.is_file() and inside(path, media_dir)
    assert media_files(media_dir) == [path]
    assert f"#{post_id}" in reply.text and "@alice" in reply.text and "a red fox in the snow" in reply.text
    assert reply.image.caption == reply.text
    theirs = await card(chat, "bob", post_id)
    assert actions(theirs) == [
        f"like {post_id}",
        f"remix {post_id}",
        f"vary {post_id}",
        "follow alice",
        f"comment {post_id}",
        f"report {post_id}",
    ]
    assert actions(reply) == [a for a in actions(theirs) if a != "follow alice"]  # not to herself
    assert all(len(a.encode()) <= MAX_ACTION_BYTES for a in actions(theirs))
    stored = await row(chat, post_id)
    assert stored is not None and stored.prompt == "a red fox in the snow"
    assert stored.visibility == "public" and stored.parent_id is None
    assert Image.open(path).size == (stored.width, stored.height) == (1024, 1024)


async def test_imagine_aspect_ratio_sets_the_image_size(chat: Chat) -> None:
    post_id = await chat.post("alice", "a wide city skyline --ar 16:9")
    stored = await row(chat, post_id)
    assert stored is not None and stored.prompt == "a wide city skyline"
    assert stored.width > stored.height
    reply = await card(chat, "alice", post_id)
    assert reply.image is not None and Image.open(reply.image.path).size == (stored.width, stored.height)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("", "Describe the image"),
        ("   --private", "Describe the image"),
        ("x" * 201, "the limit is 200"),
        ("a fox --sparkle", "Unknown option --sparkle"),
        ("a fox --ar 5:4", "Unknown aspect ratio"),
        ("a fox --ar", "--ar needs a value"),
        ("a fox --seed", "--seed needs a value"),
        ("a fox --seed -1", "--seed takes a whole number"),
        ("a fox --seed lots", "--seed takes a whole number"),
        ("a fox --seed 99999999999", "--seed takes a whole number"),
        ("a fox --seed ²", "--seed takes a whole number"),  # a unicode digit that int() rejects
    ],
)
async def test_bad_imagine_input_gets_one_clear_line_and_writes_nothing(
    chat: Chat, media_dir: Path, args: str, expected: str
) -> None:
    replies = await chat.say("alice", f"/imagine {args}")
    assert len(replies) == 1
    assert expected in replies[0].text
    assert "\n" not in replies[0].text and replies[0].post_id is None and replies[0].image is None
    assert await count(chat, Post) == 0
    assert await count(chat, GenerationJob) == 0  # nothing queued either
    assert media_files(media_dir) == []


async def test_a_prompt_of_exactly_the_limit_is_accepted(chat: Chat) -> None:
    post_id = await chat.post("alice", "y" * 200)
    stored = await row(chat, post_id)
    assert stored is not None and len(stored.prompt) == 200


async def test_the_same_seed_and_prompt_give_the_same_image(chat: Chat, media_dir: Path) -> None:
    first = await chat.post("alice", "a calm lake at dawn --seed 42")
    second = await chat.post("alice", "a calm lake at dawn --seed 42")
    other = await chat.post("alice", "a calm lake at dawn --seed 43")
    a, b, c = [await row(chat, i) for i in (first, second, other)]
    assert a and b and c
    assert a.seed == b.seed == 42 and c.seed == 43
    # The same pixels; each file carries its own post's provenance signature (core.provenance).
    assert pixel_hash((media_dir / a.image_path).read_bytes()) == pixel_hash((media_dir / b.image_path).read_bytes())
    assert a.image_path != b.image_path
    assert pixel_hash((media_dir / a.image_path).read_bytes()) != pixel_hash((media_dir / c.image_path).read_bytes())


async def test_a_private_post_is_seen_only_by_its_author(chat: Chat) -> None:
    await chat.say("alice", "/start")
    await chat.say("bob", "/follow alice")
    private = await chat.post("alice", "my secret garden --private")
    own = await card(chat, "alice", private)
    assert "Private" in own.text
    assert "There is no post" in await chat.text("bob", f"/post {private}")
    assert "Your feed is empty" in await chat.text("bob", "/feed")
    assert "Nothing posted in the last 24 hours" in await chat.text("bob", "/top")
    assert "Nothing posted in the last 24 hours" in await chat.text("alice", "/top")  # /top is public only
    profile = await chat.text("bob", "/profile alice")
    assert "secret" not in profile and "0 posts" in profile
    assert "secret" in await chat.text("alice", "/profile")


# /remix and variations


async def test_remix_links_to_the_parent_credits_its_author_and_counts(chat: Chat) -> None:
    parent = await chat.post("alice", "a red fox in the snow")
    remix_id = await made(chat, await chat.say("bob", f"/remix #{parent} a blue fox in the rain"))
    assert remix_id != parent
    remix = await card(chat, "carol", remix_id)
    assert f"Remix of #{parent} by @alice" in remix.text and "@bob" in remix.text
    stored = await row(chat, remix_id)
    assert stored is not None and stored.parent_id == parent and stored.prompt == "a blue fox in the rain"
    original = await row(chat, parent)
    assert original is not None and original.remix_count == 1
    await made(chat, await chat.say("carol", f"/remix {parent} a green fox"))
    original = await row(chat, parent)
    assert original is not None and original.remix_count == 2


async def test_remix_without_a_prompt_asks_for_one_and_the_answer_makes_it(chat: Chat) -> None:
    parent = await chat.post("alice", "a red fox in the snow")
    for replies in (await chat.say("bob", f"/remix {parent}"), await chat.press("bob", f"remix {parent}")):
        [question] = replies
        assert question.ask is not None and question.post_id is None
        assert f"#{parent}" in question.text
    assert await count(chat, Post) == 1  # asking wrote nothing
    remix_id = await made(chat, await chat.core.answer(actor("bob"), question.ask, "a fox made of glass --seed 5"))
    stored = await row(chat, remix_id)
    assert stored is not None and stored.parent_id == parent and stored.prompt == "a fox made of glass"
    assert stored.seed == 5


async def test_remix_of_a_missing_or_someone_elses_private_post_is_refused(chat: Chat) -> None:
    private = await chat.post("alice", "hidden fox --private")
    for line in (f"/remix {private} my take", f"/remix {private}", "/remix 9999 my take"):
        [reply] = await chat.say("bob", line)
        assert "There is no post" in reply.text and reply.ask is None
    assert "not a post number" in await chat.text("bob", "/remix abc my take")
    assert "Usage: /remix" in await chat.text("bob", "/remix")
    assert await count(chat, Post) == 1
    # The author may remix her own private post.
    mine = await made(chat, await chat.say("alice", f"/remix {private} hidden fox at night"))
    assert (await card(chat, "alice", mine)).post_id == mine


async def test_variation_button_makes_a_linked_post_with_the_same_prompt(chat: Chat) -> None:
    parent = await chat.post("alice", "a lighthouse in a storm --seed 3")
    vary_id = await made(chat, await chat.press("bob", f"vary {parent}"))
    assert vary_id != parent
    stored = await row(chat, vary_id)
    original = await row(chat, parent)
    assert stored is not None and original is not None
    assert stored.prompt == original.prompt and stored.parent_id == parent
    assert stored.image_path != original.image_path  # a new seed, a new picture
    assert original.remix_count == 1
    assert f"Remix of #{parent} by @alice" in (await card(chat, "bob", vary_id)).text


async def test_variation_of_a_private_post_stays_private(chat: Chat) -> None:
    parent = await chat.post("alice", "secret lake --private")
    stored = await row(chat, await made(chat, await chat.press("alice", f"vary {parent}")))
    assert stored is not None and stored.visibility == "private"
    [refused] = await chat.press("bob", f"vary {parent}")
    assert "There is no post" in refused.text and refused.notice


# /like


async def test_like_toggles_and_the_count_shows_on_the_button(chat: Chat) -> None:
    post_id = await chat.post("alice")
    [liked] = await chat.say("bob", f"/like {post_id}")
    assert "You liked" in liked.text and "(1 ❤️)" in liked.text
    assert "❤️ 1" in [b.label for b in (await card(chat, "carol", post_id)).buttons[0]]
    [unliked] = await chat.say("bob", f"/like #{post_id}")
    assert "took back" in unliked.text and "(0 ❤️)" in unliked.text
    stored = await row(chat, post_id)
    assert stored is not None and stored.like_count == 0
    assert await count(chat, Like) == 0


async def test_like_button_answers_with_a_notice_and_an_updated_card(chat: Chat) -> None:
    presses_apart(chat.core)
    post_id = await chat.post("alice")
    notice, updated = await chat.press("bob", f"like {post_id}")
    assert notice.notice and "You liked" in notice.text
    assert updated.edit and updated.post_id == post_id and updated.image is not None
    assert updated.buttons[0][0].label == "❤️ 1" and updated.buttons[0][0].action == f"like {post_id}"
    _, again = await chat.press("bob", f"like {post_id}")
    assert again.buttons[0][0].label == "❤️ 0"


async def test_likes_from_many_people_are_all_counted(chat: Chat) -> None:
    post_id = await chat.post("alice")
    likers = [f"fan{i}" for i in range(8)]
    for who in likers:
        await chat.say(who, "/start")
    # Pressed at the same moment: the count must not lose an update.
    await asyncio.gather(*(chat.press(who, f"like {post_id}") for who in likers))
    stored = await row(chat, post_id)
    assert stored is not None and stored.like_count == len(likers)
    assert stored.hot == pytest.approx(hot_score(len(likers), stored.created_at))
    assert await count(chat, Like) == len(likers)
    await chat.say("fan0", f"/like {post_id}")
    stored = await row(chat, post_id)
    assert stored is not None and stored.like_count == len(likers) - 1


async def test_a_double_press_leaves_the_count_equal_to_the_likes(chat: Chat) -> None:
    presses_apart(chat.core)
    post_id = await chat.post("alice")
    await chat.say("bob", "/start")
    # Presses that reach the core at once from several processes, which no in-process coalescing sees.
    pressed = await asyncio.gather(*(chat.press("bob", f"like {post_id}") for _ in range(4)))
    assert all("like" in replies[0].text for replies in pressed), pressed  # no failures
    stored = await row(chat, post_id)
    # Which way it ends is a race; that the count matches the likes is not.
    assert stored is not None and stored.like_count == await count(chat, Like) in (0, 1)
    assert stored.hot == pytest.approx(hot_score(stored.like_count, stored.created_at))


async def test_a_like_after_another_press_moved_the_count_scores_the_count_as_it_stands(chat: Chat) -> None:
    """The like's one UPDATE writes the score for the count it expects (the one read, plus one); when
    another press moved the count between that read and this write, the score follows the real count."""
    post_id = await chat.post("alice")
    await chat.say("bob", "/start")
    async with chat.core.sessions() as session:
        bob = await people.by_handle(session, "bob")
        seen = await session.get(Post, post_id)
        assert seen is not None and seen.like_count == 0
        async with chat.core.sessions() as other:  # two other likes land after bob's read
            await other.execute(update(Post).where(Post.id == post_id).values(like_count=2))
            await other.commit()
        assert await posts.toggle_like(session, bob, seen)
        await session.commit()
    stored = await row(chat, post_id)
    assert stored is not None and stored.like_count == 3
    assert stored.hot == pytest.approx(hot_score(3, stored.created_at))


async def test_likes_on_someone_elses_private_post_are_refused(chat: Chat) -> None:
    post_id = await chat.post("alice", "hidden --private")
    assert "There is no post" in await chat.text("bob", f"/like {post_id}")
    [pressed] = await chat.press("bob", f"like {post_id}")
    assert pressed.notice and "There is no post" in pressed.text
    assert await count(chat, Like) == 0
    assert "You liked" in await chat.text("alice", f"/like {post_id}")


async def test_a_like_raises_the_hot_score(chat: Chat) -> None:
    post_id = await chat.post("alice")
    before = await row(chat, post_id)
    await chat.say("bob", f"/like {post_id}")
    after = await row(chat, post_id)
    assert before is not None and after is not None and after.hot > before.hot


# /post and /delete


async def test_post_shows_one_post_and_refuses_bad_numbers(chat: Chat) -> None:
    post_id = await chat.post("alice")
    reply = await card(chat, "bob", post_id)
    assert reply.image is not None
    assert "There is no post #424242" in await chat.text("bob", "/post 424242")
    assert "not a post number" in await chat.text("bob", "/post twelve")
    assert "not a post number" in await chat.text("bob", "/post #²")
    assert "not a post number" in await chat.text("bob", "/post 99999999999999999999")
    assert "Usage: /post" in await chat.text("bob", "/post")


async def test_author_deletes_a_post_and_its_image_goes(chat: Chat, media_dir: Path) -> None:
    post_id = await chat.post("alice")
    path = (await card(chat, "alice", post_id)).image.path  # type: ignore[union-attr]
    assert f"Deleted #{post_id}" in await chat.text("alice", f"/delete #{post_id}")
    assert "was deleted" in await chat.text("alice", f"/post {post_id}")
    await purged(chat)
    assert await row(chat, post_id) is None
    assert not path.exists()
    assert media_files(media_dir) == []
    assert "There is no post" in await chat.text("alice", f"/post {post_id}")


async def test_others_cannot_delete_but_an_admin_can(chat: Chat) -> None:
    post_id = await chat.post("alice")
    assert "not yours" in await chat.text("bob", f"/delete {post_id}")
    assert await row(chat, post_id) is not None
    assert f"Deleted #{post_id}" in await chat.text("admin", f"/delete {post_id}")
    deleted = await row(chat, post_id)
    assert deleted is not None and deleted.status == "deleted"


async def test_a_shared_image_file_stays_until_its_last_post_is_deleted(chat: Chat) -> None:
    first = await chat.post("alice", "twin foxes --seed 9")
    second = await chat.post("alice", "twin foxes --seed 9")
    async with chat.core.sessions() as session:  # signed files differ per post; make them share one
        shared = await session.get(Post, first)
        assert shared is not None
        await session.execute(update(Post).where(Post.id == second).values(image_path=shared.image_path))
        await session.commit()
    path = (await card(chat, "alice", first)).image.path  # type: ignore[union-attr]
    assert path == (await card(chat, "alice", second)).image.path  # type: ignore[union-attr]
    await chat.say("alice", f"/delete {first}")
    await purged(chat)
    assert path.exists()
    await chat.say("alice", f"/delete {second}")
    await purged(chat)
    assert not path.exists()


async def test_deleting_a_parent_keeps_its_remix_and_drops_its_likes(chat: Chat) -> None:
    parent = await chat.post("alice", "a red fox")
    remix = await made(chat, await chat.say("bob", f"/remix {parent} a blue fox"))
    await chat.say("carol", f"/like {parent}")
    await chat.say("carol", f"/like {remix}")
    await chat.say("alice", f"/delete {parent}")
    await purged(chat)
    kept = await row(chat, remix)
    assert kept is not None and kept.parent_id is None
    async with chat.core.sessions() as session:
        assert list(await session.scalars(select(Like.post_id))) == [remix]
    shown = await card(chat, "carol", remix)
    assert "🔁 Remix of a deleted post" in shown.text and f"#{parent}" not in shown.text  # a gap, no dead link


async def test_deleting_a_remix_lowers_its_parents_remix_count(chat: Chat) -> None:
    parent = await chat.post("alice", "a red fox")
    remix = await made(chat, await chat.say("bob", f"/remix {parent} a blue fox"))
    original = await row(chat, parent)
    assert original is not None and original.remix_count == 1
    await chat.say("bob", f"/delete {remix}")
    original = await row(chat, parent)
    assert original is not None and original.remix_count == 0
    await purged(chat)  # counted once, not again when the row goes
    original = await row(chat, parent)
    assert original is not None and original.remix_count == 0


async def test_generated_png_records_the_prompt_and_author(chat: Chat, media_dir: Path) -> None:
    post_id = await chat.post("alice", "a violet moon --seed 11")
    stored = await row(chat, post_id)
    assert stored is not None
    info = Image.open(io.BytesIO((media_dir / stored.image_path).read_bytes())).text  # type: ignore[attr-defined]
    assert info["prompt"] == "a violet moon" and info["seed"] == "11" and info["author"] == "alice"


async def test_a_deleted_posts_number_is_never_given_to_another_post(chat: Chat) -> None:
    first = await chat.post("alice", "a fox")
    newest = await chat.post("alice", "a newer fox")
    assert "Deleted" in await chat.text("alice", f"/delete {newest}")
    again = await chat.post("alice", "yet another fox")
    assert again > newest > first
