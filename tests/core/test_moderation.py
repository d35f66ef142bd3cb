"""Prompt moderation: the configurable blocklist, and OpenAI's moderations endpoint through the real SDK."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from core.config import ConfigError, Settings
from core.gen.moderation import ModerationResult, Moderator, compile_blocklist
from tests.fakes.openai_server import (
    FakeOpenAI,
    error,
    fake_openai,  # noqa: F401  (the fixture)
    flagged,
    not_flagged,
    server_error,
    slow,
)

KEY = "sk-test-moderation-0123456789"
BLOCKLIST = ("gore", "blood bath", r"re:nsfw\w*", "re:(?:^|\\s)kill\\s+(?:him|her)")


def moderation_settings(server: FakeOpenAI | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "_env_file": None,
        "openai_api_key": KEY if server else None,
        "openai_base_url": server.base_url if server else None,
        "blocklist": BLOCKLIST,
        "moderation_timeout_seconds": 0.5,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def moderator(fake_openai: FakeOpenAI) -> AsyncIterator[Moderator]:  # noqa: F811
    made = Moderator(moderation_settings(fake_openai))
    yield made
    await made.aclose()


# --- blocklist ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prompt",
    [
        "so much gore",
        "GORE everywhere",
        "Gore!",
        "a blood bath at dawn",
        "a Blood   Bath",
        "NSFWish art",
        "ｇｏｒｅ in full-width letters",
        "kill him now",
    ],
)
async def test_the_blocklist_refuses(prompt: str) -> None:
    result = await Moderator(moderation_settings()).check(prompt)
    assert (result.allowed, result.source) == (False, "blocklist")
    assert "not allowed" in result.reason


@pytest.mark.parametrize("prompt", ["a gorey tale", "Algore's speech", "a bloody bath", "skill him", "a red fox"])
async def test_the_blocklist_matches_whole_words_only(prompt: str) -> None:
    result = await Moderator(moderation_settings()).check(prompt)
    assert (result.allowed, result.source, result.reason) == (True, "blocklist", "")


async def test_the_reason_names_what_matched() -> None:
    result = await Moderator(moderation_settings()).check("a scene of GORE")
    assert result.reason == "Your prompt contains “GORE”, which is not allowed here."


async def test_the_blocklist_comes_from_a_comma_separated_setting() -> None:
    settings = Settings(_env_file=None, openai_api_key=None, blocklist="  gore , , spiders ")
    assert settings.blocklist == ("gore", "spiders")
    assert not (await Moderator(settings).check("Spiders!")).allowed


def test_an_invalid_pattern_stops_start_up_in_one_line() -> None:
    with pytest.raises(ConfigError) as caught:
        compile_blocklist(["gore", "re:(unclosed"])
    message = str(caught.value)
    assert message.startswith("Invalid setting BLOCKLIST: 're:(unclosed' is not a valid regular expression")
    assert "\n" not in message


async def test_without_a_key_no_request_is_made() -> None:
    moderator = Moderator(moderation_settings())
    assert not moderator.uses_openai
    assert (await moderator.check("a red fox")).source == "blocklist"


# --- the moderations endpoint -------------------------------------------------------------------------


async def test_a_flagged_prompt_is_refused_with_the_categories(
    moderator: Moderator,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    fake_openai.script_moderation(flagged("violence", "violence/graphic"))
    result = await moderator.check("something nasty")
    assert (result.allowed, result.source) == (False, "openai")
    assert result.reason == (
        "Your prompt was flagged by the content filter (violence, violence/graphic). Please rephrase it."
    )
    assert fake_openai.moderation_requests == [{"model": "omni-moderation-latest", "input": "something nasty"}]
    assert fake_openai.requests[0].headers["Authorization"] == f"Bearer {KEY}"


async def test_a_clean_prompt_is_allowed_by_the_endpoint(
    moderator: Moderator,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    fake_openai.script_moderation(not_flagged())
    assert await moderator.check("a red fox") == ModerationResult(True, "", "openai")
    assert len(fake_openai.moderation_requests) == 1


async def test_the_blocklist_answers_first_and_saves_a_request(
    moderator: Moderator,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    result = await moderator.check("gore")
    assert (result.allowed, result.source) == (False, "blocklist")
    assert fake_openai.requests == []


async def test_the_moderation_model_is_configurable(fake_openai: FakeOpenAI) -> None:  # noqa: F811
    moderator = Moderator(moderation_settings(fake_openai, openai_moderation_model="omni-moderation-2024-09-26"))
    try:
        await moderator.check("a red fox")
    finally:
        await moderator.aclose()
    assert fake_openai.moderation_requests[0]["model"] == "omni-moderation-2024-09-26"


async def test_moderation_can_be_switched_off(fake_openai: FakeOpenAI) -> None:  # noqa: F811
    moderator = Moderator(moderation_settings(fake_openai, openai_moderation=False))
    assert not moderator.uses_openai
    assert (await moderator.check("a red fox")).allowed
    assert fake_openai.requests == []


@pytest.mark.parametrize(
    "answer",
    [server_error(500), server_error(503), error(429, code="rate_limit_exceeded", type="requests"), slow(5)],
    ids=["500", "503", "429", "timeout"],
)
async def test_an_endpoint_failure_falls_back_to_the_blocklist(
    moderator: Moderator,
    fake_openai: FakeOpenAI,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
    answer: Any,
) -> None:
    fake_openai.script_moderation(answer)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="core.gen.moderation"):
        result = await moderator.check("a red fox")
    assert (result.allowed, result.source) == (True, "blocklist")
    assert "blocklist only" in caplog.text
    assert KEY not in caplog.text
    assert time.monotonic() - started < 2  # the moderation timeout (0.5 s) holds
    assert len(fake_openai.moderation_requests) == 1  # no SDK retries


async def test_the_blocklist_still_applies_when_the_endpoint_is_down() -> None:
    server = await FakeOpenAI().start()
    settings = moderation_settings(server)
    await server.stop()
    moderator = Moderator(settings)
    try:
        assert (await moderator.check("a red fox")).allowed
        refused = await moderator.check("more gore")
    finally:
        await moderator.aclose()
    assert (refused.allowed, refused.source) == (False, "blocklist")
