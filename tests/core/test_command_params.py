"""Parameters declared once in the registry: the text parser, the typed entry point, /help, Telegram's
menu and completions all follow the declaration."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import func, select

from bots.telegram.app import command_list
from core import commands
from core.commands.registry import command, parse_args
from core.errors import UserError
from core.models import GenerationJob, Person
from core.params import Param, ParamType, Upload, Values
from core.prompts import MAX_SEED
from tests.support import Chat, actor

SAMPLES: dict[ParamType, object] = {
    ParamType.TEXT: "a red fox in the snow",
    ParamType.WORD: "08:30",
    ParamType.INT: 42,
    ParamType.BOOL: True,
    ParamType.HANDLE: "alice",
    ParamType.POST: 12,
    ParamType.IMAGE: Upload(b"a picture", "photo.jpg"),
}


def _sample(param: Param) -> object:
    return param.choices[-1] if param.type is ParamType.CHOICE else SAMPLES[param.type]


def _line(params: tuple[Param, ...], values: Values) -> str:
    """Write values the way a person types them: positional words in order, then `--flag value`."""
    words = [str(values[p.name]) for p in params if not p.is_option and p.type is not ParamType.IMAGE]
    for p in params:
        if p.is_option:
            words.append(p.flags[0] if p.type is ParamType.BOOL else f"{p.flags[0]} {values[p.name]}")
    return " ".join(words)


@pytest.mark.parametrize("name", sorted(commands.COMMANDS))
def test_every_commands_text_syntax_round_trips(name: str) -> None:
    params = commands.COMMANDS[name].params
    values = {p.name: _sample(p) for p in params}
    attached = {p.name: values[p.name] for p in params if p.type is ParamType.IMAGE}  # never written
    assert commands.COMMANDS[name].parse(_line(params, values), attached) == values


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        ("imagine", "a fox --ar 16:9 --seed 42 --private", {"prompt": "a fox", "aspect": "16:9", "seed": 42}),
        ("imagine", "--private a   fox --aspect 9:16", {"prompt": "a fox", "aspect": "9:16", "private": True}),
        ("imagine", "a fox", {"prompt": "a fox", "aspect": None, "seed": None, "private": False}),
        ("remix", "12 a prompt", {"post": 12, "prompt": "a prompt"}),
        ("remix", "#12", {"post": 12, "prompt": None}),
        ("like", "12", {"post": 12}),
        ("vary", "#7", {"post": 7}),
        ("follow", "@Alice", {"handle": "alice"}),
        ("profile", "", {"handle": None}),
        ("feed", "before 12", {"direction": "before", "post": 12}),
        ("feed", "", {"direction": None, "post": None}),
        ("digest", "08:30 Europe/Berlin", {"when": "08:30", "zone": "Europe/Berlin"}),
        ("notify", "OFF", {"setting": "off"}),
        ("bio", "line one\nline two", {"text": "line one\nline two"}),  # free text keeps its lines
        ("name", "Ada  Lovelace", {"text": "Ada  Lovelace"}),
        ("start", "deep-link-payload", {}),  # Telegram's /start <payload> is not a mistake
        ("help", "imagine", {"command": "imagine"}),
    ],
)
def test_todays_text_syntax_parses_to_typed_values(name: str, args: str, expected: Values) -> None:
    parsed = parse_args(name, args)
    assert {key: parsed[key] for key in expected} == expected


@pytest.mark.parametrize(
    ("name", "args", "names"),
    [
        ("imagine", "a fox --seed " + "9" * 5000, "--seed takes a whole number from 0 to 2147483647."),
        ("imagine", f"a fox --seed {MAX_SEED + 1}", "--seed takes a whole number from 0 to 2147483647."),
        ("imagine", "a fox --seed -1", "--seed takes a whole number"),
        ("imagine", "a fox --ar 7:3", "Unknown aspect ratio '7:3'. Use one of: 1:1, 16:9, 9:16, 3:2, 2:3."),
        ("imagine", "a fox --ar", "--ar needs a value, for example --ar 16:9."),
        ("imagine", "a fox --sparkle", "Unknown option --sparkle. Options: --ar 16:9, --seed 42, --private."),
        ("remix", "twelve my take", "twelve is not a post number."),
        ("notify", "sometimes", "Unknown setting 'sometimes'. Use one of: on, off."),
        ("follow", "@a!", "@a! is not a handle."),
        ("follow", "alice bob", ""),
        ("like", "12 13", ""),
    ],
)
def test_a_malformed_value_gets_one_line_naming_the_parameter_then_the_usage(name: str, args: str, names: str) -> None:
    with pytest.raises(UserError) as raised:
        parse_args(name, args)
    message = str(raised.value)
    assert message.startswith(names)
    assert message.endswith(commands.COMMANDS[name].usage_line)
    assert "\n" not in message


async def test_a_5000_digit_seed_gets_a_clear_line_not_the_apology(chat: Chat) -> None:
    [reply] = await chat.say("ann", "/imagine a fox --seed " + "7" * 5000)
    assert reply.text.startswith("--seed takes a whole number from 0 to 2147483647.")
    assert reply.error
    async with chat.core.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(GenerationJob)) == 0


async def test_error_replies_are_marked_and_answers_are_not(chat: Chat) -> None:
    [ok] = await chat.say("ann", "/quota")
    [refused] = await chat.say("ann", "/follow @nobody")
    [pressed] = await chat.press("ann", "like 999")
    [unknown] = await chat.say("ann", "/frobnicate")
    assert not ok.error
    assert refused.error and "Nobody is called @nobody" in refused.text
    assert pressed.error and pressed.notice
    assert unknown.error


async def test_an_adapters_own_mistake_is_the_apology_marked_as_an_error(chat: Chat) -> None:
    [reply] = await chat.core.invoke(actor("ann"), "follow", {"handle": "bob", "colour": "red"})
    assert reply.error and reply.text.startswith("Sorry, something went wrong")


async def test_typed_options_give_what_the_same_line_gives(chat: Chat) -> None:
    typed = await chat.core.invoke(
        actor("ann"), "imagine", {"prompt": "a fox", "aspect": "16:9", "seed": 42, "private": True}
    )
    written = await chat.say("bea", "/imagine a fox --ar 16:9 --seed 42 --private")
    jobs = [await chat.finish(replies) for replies in (typed, written)]
    made = [(j.prompt, j.seed, j.aspect, j.visibility) for j in jobs]
    assert made == [("a fox", 42, "16:9", "private")] * 2

    await chat.say("bob", "/start")
    followed = await chat.core.invoke(actor("ann"), "follow", {"handle": "@Bob"})
    assert [r.text for r in followed] == [r.text for r in await chat.say("bea", "/follow @Bob")]


@pytest.mark.parametrize(
    ("name", "options", "line"),
    [
        ("imagine", {"prompt": "a fox", "seed": -1}, "/imagine a fox --seed -1"),
        ("imagine", {"prompt": "a fox", "seed": MAX_SEED + 1}, f"/imagine a fox --seed {MAX_SEED + 1}"),
        ("imagine", {"prompt": "a fox", "aspect": "7:3"}, "/imagine a fox --ar 7:3"),
        ("imagine", {"prompt": "   "}, "/imagine"),
        ("notify", {"setting": "sometimes"}, "/notify sometimes"),
        ("follow", {}, "/follow"),
        ("like", {"post": "twelve"}, "/like twelve"),
        ("like", {"post": 999}, "/like 999"),
        ("digest", {"when": "25:00"}, "/digest 25:00"),
    ],
)
async def test_typed_options_are_refused_in_the_same_words_as_the_line(
    chat: Chat, name: str, options: Values, line: str
) -> None:
    [typed] = await chat.core.invoke(actor("ann"), name, options)
    [written] = await chat.say("ann", line)
    assert typed.text == written.text
    assert typed.error and written.error


def _with_param(monkeypatch: pytest.MonkeyPatch, name: str, param: Param) -> None:
    declared = commands.COMMANDS[name]
    monkeypatch.setitem(commands.COMMANDS, name, dataclasses.replace(declared, params=(*declared.params, param)))


async def test_help_and_the_telegram_menu_follow_the_declarations(chat: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    help_text = await chat.text("ann", "/help")
    menu = {c.command: c.description for c in command_list()}
    for listed in commands.listed():
        assert f"{listed.usage} — {listed.summary}" in help_text
        assert menu[listed.name].startswith(listed.summary)
    assert "/imagine <prompt> [--ar 1:1|16:9|9:16|3:2|2:3] [--seed <seed>] [--private]" in help_text
    assert menu["follow"].endswith("@handle")

    _with_param(monkeypatch, "follow", Param("note", ParamType.TEXT, "a word for them"))
    assert "/follow @handle [note] — " in await chat.text("ann", "/help")
    assert {c.command: c.description for c in command_list()}["follow"].endswith("@handle [note]")
    assert "note: a word for them" in await chat.text("ann", "/help follow")


async def test_help_explains_one_command_from_its_declaration(chat: Chat) -> None:
    text = await chat.text("ann", "/help /imagine")
    assert text.splitlines()[0].startswith("/imagine <prompt>")
    assert "--seed: the same prompt and seed make the same image" in text
    assert "--ar: the shape of the image, width:height (1:1, 16:9, 9:16, 3:2, 2:3)" in text
    assert "There is no command /nope" in await chat.text("ann", "/help nope")


def test_a_declaration_that_drifts_from_its_handler_is_refused_at_import() -> None:
    async def handler(ctx: object, other: str) -> list:  # type: ignore[type-arg]
        return []

    with pytest.raises(TypeError, match="the handler takes"):
        command("drift", "a test", params=(Param("handle", ParamType.HANDLE, "who"),))(handler)
    with pytest.raises(ValueError, match="required parameters come before"):
        command("order", "a test", params=(Param("a", ParamType.WORD, "a"), Param("b", ParamType.WORD, "b", True)))
    assert "drift" not in commands.COMMANDS


async def test_handles_are_suggested_by_prefix(chat: Chat) -> None:
    for name in ("alice", "alfred", "al_x", "bob", "albert_two"):
        await chat.say(name, "/start")
    suggest = chat.core.suggest
    found = await suggest(actor("bob"), "follow", "handle", "@AL")
    assert [(s.label, s.value) for s in found] == [
        ("@al_x", "al_x"),
        ("@albert_two", "albert_two"),
        ("@alfred", "alfred"),
        ("@alice", "alice"),
    ]
    assert [s.value for s in await suggest(actor("bob"), "profile", "handle", "ali")] == ["alice"]
    assert await suggest(actor("bob"), "follow", "handle", "zz") == []
    assert await suggest(actor("bob"), "follow", "handle", "a!") == []
    assert await suggest(actor("bob"), "follow", "nothing", "a") == []
    assert [s.value for s in await suggest(actor("bob"), "imagine", "aspect", "16")] == ["16:9"]


async def test_at_most_25_handles_are_suggested(chat: Chat) -> None:
    for i in range(30):
        await chat.say(f"user{i:02}", "/start")
    found = await chat.core.suggest(actor("user00"), "follow", "handle", "")
    assert len(found) == 25 and found[0].value == "user00"


async def test_post_numbers_are_suggested_from_ones_own_recent_posts(chat: Chat) -> None:
    first = await chat.post("ann", "a lighthouse at night")
    second = await chat.post("ann", "a fox")
    await chat.post("bea", "someone else's")
    found = await chat.core.suggest(actor("ann"), "like", "post", "")
    assert [(s.label, s.value) for s in found] == [
        (f"#{second} a fox", str(second)),
        (f"#{first} a lighthouse at night", str(first)),
    ]
    narrowed = await chat.core.suggest(actor("ann"), "remix", "post", f"#{first}")
    assert str(first) in [s.value for s in narrowed]
    assert await chat.core.suggest(actor("ann"), "like", "post", "x") == []


async def test_suggestions_for_a_stranger_create_nobody(chat: Chat) -> None:
    assert await chat.core.suggest(actor("stranger"), "like", "post", "") == []
    async with chat.core.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Person)) == 0
