"""Admins cannot be impersonated: a handle alone is an admin only at the terminal, a platform id is
one anywhere, and no name a platform hands in takes a handle that ADMINS keeps."""

from __future__ import annotations

import io

import pytest
from pydantic import SecretStr

from bots.console.chat import ConsoleChat
from core.app import Core
from core.config import Settings
from tests.fakes.telegram_api import FakeTelegramAPI, RunningBot, User
from tests.support import actor
from tests.telegram.test_telegram_bot import imagine, reply_to

IMPOSTOR = User(301, "Boss")  # no username: the handle comes from the first name
WIDE_IMPOSTOR = User(302, "Ｂｏｓｓ")  # full-width letters fold to "boss" too
REAL_BOSS = User(444, "The Boss", "the_real_boss")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"admins": ("boss", "carol=telegram:444")})


async def test_a_telegram_user_named_boss_is_neither_at_boss_nor_an_admin(
    bot: RunningBot, api: FakeTelegramAPI
) -> None:
    for impostor in (IMPOSTOR, WIDE_IMPOSTOR):
        welcome = await reply_to(api, impostor, "/start")
        assert "Welcome, @boss" in welcome.params["text"] and "Welcome, @boss!" not in welcome.params["text"]
        refused = await reply_to(api, impostor, "/refusals")
        assert refused.params["text"] == "Only admins can see refused prompts."


async def test_an_admin_named_by_telegram_id_keeps_the_handle_and_the_rights(
    bot: RunningBot, api: FakeTelegramAPI
) -> None:
    carol = User(303, "Carol", "carol")  # came first and asked for @carol: it is kept for telegram:444
    assert "Welcome, @carol2!" in (await reply_to(api, carol, "/start")).params["text"]
    post = await imagine(api, carol, "a lighthouse")
    post_id = post.result["caption"].split()[0].lstrip("#")
    assert "Welcome, @carol!" in (await reply_to(api, REAL_BOSS, "/start")).params["text"]
    assert (await reply_to(api, REAL_BOSS, "/refusals")).params["text"] == "No refused prompts."
    assert f"Deleted #{post_id}" in (await reply_to(api, REAL_BOSS, f"/delete {post_id}")).params["text"]


async def test_an_impostor_cannot_delete_someone_elses_post_on_telegram(bot: RunningBot, api: FakeTelegramAPI) -> None:
    post = await imagine(api, REAL_BOSS, "a castle")
    post_id = post.result["caption"].split()[0].lstrip("#")
    denied = await reply_to(api, IMPOSTOR, f"/delete {post_id}")
    assert denied.params["text"] == f"#{post_id} is not yours to delete."


async def test_the_console_operator_named_in_admins_gets_the_handle_even_after_an_impostor(core: Core) -> None:
    [impostor] = await core.handle(actor("boss", "telegram"), "/start")  # a messenger account named boss
    assert "Welcome, @boss2!" in impostor.text
    [denied] = await core.handle(actor("boss", "telegram"), "/refusals")
    assert denied.text == "Only admins can see refused prompts."
    out = io.StringIO()
    console = ConsoleChat(core, out, name="boss")
    await console.line("/start")
    await console.line("/refusals")
    assert "Welcome, @boss!" in out.getvalue()
    assert "No refused prompts." in out.getvalue()


async def test_names_that_read_as_the_network_are_kept_from_messengers(core: Core) -> None:
    [reply] = await core.handle(actor("admin", "telegram"), "/start")
    assert "Welcome, @admin2!" in reply.text


def test_handle_only_admins_are_warned_about_loudly_when_a_messenger_runs(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from bots.__main__ import warn_about_admins

    warn_about_admins(settings)  # the console alone: a handle is the operator
    assert capsys.readouterr().err == ""
    warn_about_admins(settings.model_copy(update={"telegram_bot_token": SecretStr("1:x")}))
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("WARNING: ADMINS boss name handles only; on Telegram they are NOT admins")
    safe = settings.model_copy(update={"telegram_bot_token": SecretStr("1:x"), "admins": ("telegram:1",)})
    warn_about_admins(safe)
    assert capsys.readouterr().err == ""


async def test_the_console_operator_is_an_admin_even_when_a_messenger_account_had_the_handle_before(
    core: Core,
) -> None:
    core.settings = core.settings.model_copy(update={"admins": ()})
    await core.handle(actor("boss", "telegram"), "/start")  # @boss, taken before ADMINS named it
    core.settings = core.settings.model_copy(update={"admins": ("boss",)})
    out = io.StringIO()
    console = ConsoleChat(core, out, name="boss")
    await console.line("/refusals")
    assert "No refused prompts." in out.getvalue()
    [denied] = await core.handle(actor("boss", "telegram"), "/refusals")
    assert denied.text == "Only admins can see refused prompts."
