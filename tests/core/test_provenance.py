"""Provenance: every image made here is signed over (post, author, prompt, parent) and its pixels;
/verify tells a genuine picture from an altered one and a foreign one (console, Telegram file)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo
from pydantic import SecretStr

from bots.console.chat import ConsoleChat
from core.app import Core, bootstrap
from core.config import Settings
from core.models import Post
from core.provenance import Signer, load_key
from tests.conftest import empty_tables
from tests.fakes.openai_server import FakeOpenAI, image_ok
from tests.fakes.telegram_api import FakeTelegramAPI, RunningBot, User
from tests.support import Chat


async def image_of(core: Core, post_id: int) -> Path:
    async with core.sessions() as session:
        post = await session.get(Post, post_id)
    assert post is not None
    return core.media.path(post.image_path)


async def verify(core: Core, path: Path) -> str:
    out = io.StringIO()
    await ConsoleChat(core, out=out, name="dave").line(f"/verify {path}")
    return out.getvalue().removeprefix("bot> ").strip()


async def test_a_genuine_remix_says_who_made_it_from_what(chat: Chat, core: Core) -> None:
    parent = await chat.post("alice", "a red fox in the snow")
    job = await chat.finish(await chat.say("bob", f"/remix {parent} the fox at night"))
    assert await verify(core, await image_of(core, job.post_id or 0)) == (
        f"✅ Made here: #{job.post_id} by @bob, from the prompt “the fox at night”, a remix of #{parent}."
    )


async def test_altered_pixels_and_a_foreign_picture(chat: Chat, core: Core, tmp_path: Path) -> None:
    post = await chat.post("alice", "a lighthouse")
    genuine = await image_of(core, post)
    with Image.open(genuine) as opened:
        opened.load()
        text = dict(opened.text)  # type: ignore[attr-defined]
        opened.putpixel((10, 10), (255, 0, 255))
        info = PngInfo()
        for key, value in text.items():
            info.add_text(key, value)  # the signature chunk copied as it was
        altered = tmp_path / "altered.png"
        opened.save(altered, pnginfo=info)
    assert (await verify(core, altered)).startswith(
        f"⚠️ Altered: made here as #{post} by @alice, from the prompt “a lighthouse”, but its pixels were changed"
    )
    foreign = tmp_path / "foreign.png"
    Image.new("RGB", (64, 64), (1, 2, 3)).save(foreign)
    assert await verify(core, foreign) == "❌ Not made here: the picture carries no signature of this network."
    forged = tmp_path / "forged.png"
    forged.write_bytes(Signer(b"another network's key").sign(foreign.read_bytes(), post, "alice", "a lighthouse", None))
    assert await verify(core, forged) == (
        "❌ Not made here, or its signature was forged: it does not match this network's key."
    )
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    assert await verify(core, junk) == "That is not a picture I can read."


def test_the_key_is_generated_once_into_the_data_folder_and_kept(settings: Settings) -> None:
    first = load_key(settings)
    key_file = Path(settings.media_dir).parent / "provenance.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert load_key(settings) == first and len(first) == 64
    configured = settings.model_copy(update={"provenance_key": SecretStr("from-the-environment")})
    assert load_key(configured) == b"from-the-environment"


async def test_a_deleted_posts_picture_still_verifies_and_says_so(chat: Chat, core: Core, tmp_path: Path) -> None:
    post = await chat.post("alice", "a castle")
    kept = tmp_path / "kept.png"
    kept.write_bytes((await image_of(core, post)).read_bytes())
    await chat.say("alice", f"/delete {post}")
    assert (await verify(core, kept)).endswith("(the post has since been deleted).")


ALICE = User(111, "Alice", "alice")


async def test_verify_a_file_sent_to_the_telegram_bot(bot: RunningBot, api: FakeTelegramAPI, core: Core) -> None:
    mark = len(api.calls)
    api.say(ALICE, "/imagine a harbour at dawn")
    photo = await api.wait_for("sendPhoto", lambda c: c.chat_id == str(ALICE.id), after=mark)
    post_id = int(photo.result["caption"].split()[0].lstrip("#"))
    mark = len(api.calls)
    api.send_file(ALICE, (await image_of(core, post_id)).read_bytes(), "/verify", as_document=True)
    answer = await api.wait_for("sendMessage", lambda c: c.chat_id == str(ALICE.id), after=mark)
    assert answer.params["text"].startswith(f"✅ Made here: #{post_id} by @alice")


async def test_a_webp_from_the_image_service_is_signed_without_re_encoding(
    settings: Settings, database_url: str, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    configured = settings.model_copy(
        update={
            "image_backend": "openai",
            "openai_api_key": SecretStr("sk-test"),
            "openai_base_url": fake_openai.base_url,
            "openai_output_format": "webp",
        }
    )
    core = await bootstrap(configured)
    await core.start()
    try:
        fake_openai.script_images(image_ok(fmt="webp"))
        post = await Chat(core).post("alice", "a lighthouse in the fog")
        stored = await image_of(core, post)
        assert stored.suffix == ".webp" and fake_openai.image_requests[0]["output_format"] == "webp"
        with Image.open(stored) as opened:
            assert opened.format == "WEBP" and b"imagenet:record" in opened.info["xmp"]
        assert (
            await verify(core, stored) == f"✅ Made here: #{post} by @alice, from the prompt “a lighthouse in the fog”."
        )
        with Image.open(stored) as opened:  # re-saved by Pillow with the same XMP: new pixels, old signature
            opened.load()
            altered = tmp_path / "resaved.webp"
            opened.save(altered, format="WEBP", quality=30, xmp=opened.info["xmp"])
        assert (await verify(core, altered)).startswith(f"⚠️ Altered: made here as #{post} by @alice")
    finally:
        await core.aclose()
        await empty_tables(database_url)


def test_both_kinds_of_webp_are_signed_in_place() -> None:
    """A simple WebP (VP8, or VP8L with alpha) becomes an extended one; one already extended keeps its chunks."""
    signer = Signer(b"key")
    for mode, options in [("RGB", {"quality": 80}), ("RGBA", {"lossless": True}), ("RGB", {"exif": b"Exif\0\0MM"})]:
        out = io.BytesIO()
        Image.new(mode, (301, 171), (10, 200, 30, 128)[: len(mode)]).save(out, format="WEBP", **options)
        signed = signer.sign(out.getvalue(), 7, "alice", "a fox", 3)
        assert out.getvalue()[12:] in signed or out.getvalue()[30:] in signed  # the image chunks, untouched
        verdict = signer.verify(signed)
        assert verdict is not None and verdict.made_here and not verdict.altered, (mode, options)
        with Image.open(io.BytesIO(signed)) as opened:
            assert (opened.size, opened.mode) == ((301, 171), mode)
