"""A command's parameters, declared once, and the two ways values arrive: a typed text line
(`/imagine a fox --ar 16:9 --seed 42 --private`) or typed options (a Discord slash command).

Both end in the same checks, so a malformed value reads the same wherever it came from: one line
naming the parameter, then the command's usage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from core import people, posts
from core.errors import UserError

DESCRIPTION_MAX = 100  # the tightest limit of the platforms we serve (Discord option descriptions)
TRUE_WORDS = frozenset({"on", "yes", "true", "1"})
FALSE_WORDS = frozenset({"off", "no", "false", "0"})

Values = dict[str, object]  # parameter name -> typed value; None when not given and without default


class ParamType(Enum):
    TEXT = "text"  # free text; written last, it takes the rest of the line
    WORD = "word"  # one word of text
    INT = "int"  # a whole number within min..max
    BOOL = "bool"  # an option flag such as --private
    CHOICE = "choice"  # one of `choices`, in any case
    HANDLE = "handle"  # someone's handle, with or without @
    POST = "post"  # a post id, with or without #
    IMAGE = "image"  # a picture the person attached (an Upload): never written in the line


@dataclass(frozen=True, slots=True)
class Upload:
    """A file as an adapter received it, not yet checked (core.uploads checks it)."""

    data: bytes
    name: str = ""
    # The whole file's size when the adapter read only the start of a file too big to take.
    size: int | None = None
    # The platform's own id of this very file (Telegram's file_unique_id), when it has one.
    fingerprint: str | None = None
    # The platform re-encoded the picture on the way (a Telegram photo, as opposed to a file).
    recompressed: bool = False

    @property
    def total_size(self) -> int:
        return self.size if self.size is not None else len(self.data)


class UsageError(UserError):
    """Raised without a message, it answers the command's usage line."""


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: ParamType
    description: str  # one short line: /help and slash-command option descriptions
    required: bool = False
    choices: tuple[str, ...] = ()
    min: int | None = None
    max: int | None = None
    # Written as `--flag value` (or just `--flag` for a BOOL) anywhere in the line, rather than in
    # its place among the positional words; the first spelling is the one shown.
    flags: tuple[str, ...] = ()
    default: object = None
    example: str = ""  # a value as a person would write it, for hints
    label: str = ""  # how messages name it, when not by its name ("aspect ratio")
    missing: str = ""  # the line answered when a required value is absent, instead of the usage
    hidden: bool = False  # written by buttons only: left out of usage lines and slash commands

    @property
    def is_option(self) -> bool:
        return bool(self.flags)

    @property
    def suggests(self) -> bool:
        """Whether an adapter may offer completions as the person types (see core.suggest)."""
        return self.type in (ParamType.HANDLE, ParamType.POST)

    @property
    def noun(self) -> str:
        return self.label or self.name.replace("_", " ")

    def placeholder(self) -> str:
        if self.type is ParamType.HANDLE:
            return f"@{self.name}"
        if self.type is ParamType.CHOICE:
            return "|".join(self.choices)
        return f"<{self.name}>"

    def synopsis(self) -> str:
        if self.is_option:
            shown = self.flags[0] if self.type is ParamType.BOOL else f"{self.flags[0]} {self.placeholder()}"
        else:
            shown = self.placeholder()
            if not self.required and shown.startswith("<"):
                shown = self.name  # "[handle]" reads better than "[<handle>]"
        return shown if self.required else f"[{shown}]"

    def hint(self) -> str:
        """`--ar 16:9`: how to write it, for lists of options."""
        if self.type is ParamType.BOOL:
            return self.flags[0]
        return f"{self.flags[0]} {self.example}" if self.flags else f"{self.name} {self.example}"

    def validate(self) -> None:
        """A declaration every platform can show; checked when the command is registered."""
        if not self.description or len(self.description) > DESCRIPTION_MAX:
            raise ValueError(f"parameter {self.name}: a description of 1 to {DESCRIPTION_MAX} characters")
        if self.type is ParamType.CHOICE and not self.choices:
            raise ValueError(f"parameter {self.name}: a choice needs choices")
        if self.type is ParamType.BOOL and not self.is_option:
            raise ValueError(f"parameter {self.name}: a yes/no parameter is written as a flag")


def synopsis(params: tuple[Param, ...]) -> str:
    """`<prompt> [--ar 1:1|16:9] [--private]`: positional parameters in order, then options."""
    shown = [p for p in params if not p.hidden]
    ordered = [p for p in shown if not p.is_option] + [p for p in shown if p.is_option]
    return " ".join(p.synopsis() for p in ordered)


def validate(params: tuple[Param, ...]) -> None:
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise ValueError(f"parameter names repeat: {names}")
    required = [p.required for p in params]
    if required != sorted(required, reverse=True):
        # Slash commands list required options first; the text syntax keeps the same order.
        raise ValueError(f"required parameters come before optional ones: {names}")
    positional = [p for p in params if not p.is_option and p.type is not ParamType.IMAGE]
    if any(p.type is ParamType.TEXT for p in positional[:-1]):
        raise ValueError("only the last positional parameter can be free text")
    for param in params:
        param.validate()


# --- one value -------------------------------------------------------------------------------


def _written(param: Param) -> str:
    return param.flags[0] if param.flags else f"<{param.name}>"


def _not_int(param: Param) -> UserError:
    low, high = param.min, param.max
    span = f" from {low} to {high}" if low is not None and high is not None else ""
    return UserError(f"{_written(param)} takes a whole number{span}.")


def _int(param: Param, raw: str) -> int:
    low, high = param.min, param.max
    digits = raw.removeprefix("-") if low is None or low < 0 else raw
    # isascii: str.isdigit() also accepts digits such as '²' that int() rejects. The length check
    # comes first: int() refuses thousands of digits with an error that is not the person's. Without
    # bounds, 19 digits (any 64-bit number) is plenty.
    longest = len(str(max(abs(low or 0), abs(high or 0), 10**18)))
    if not (digits.isascii() and digits.isdigit()) or len(digits) > longest:
        raise _not_int(param)
    return _in_range(param, int(raw))


def _in_range(param: Param, value: int) -> int:
    if (param.min is not None and value < param.min) or (param.max is not None and value > param.max):
        raise _not_int(param)
    return value


def _choice(param: Param, raw: str) -> str:
    for choice in param.choices:
        if raw.lower() == choice.lower():
            return choice
    raise UserError(f"Unknown {param.noun} {raw!r}. Use one of: {', '.join(param.choices)}.")


def _bool(param: Param, raw: str) -> bool:
    word = raw.lower()
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    raise UserError(f"{_written(param)} is on or off, not {raw!r}.")


def from_text(param: Param, raw: str) -> object:
    """One written value, typed; a UserError naming the parameter when it is malformed."""
    match param.type:
        case ParamType.TEXT | ParamType.WORD:
            return raw
        case ParamType.INT:
            return _int(param, raw)
        case ParamType.BOOL:
            return _bool(param, raw)
        case ParamType.CHOICE:
            return _choice(param, raw)
        case ParamType.HANDLE:
            return people.parse_handle(raw)
        case ParamType.POST:
            return posts.parse_post_id(raw)
        case ParamType.IMAGE:
            raise UserError(param.missing or f"Attach a picture as {param.noun}.")


def from_option(param: Param, value: object) -> object:
    """One value an adapter passed typed (a slash-command option); strings go through `from_text`."""
    if param.type is ParamType.IMAGE and isinstance(value, Upload):
        return value
    if isinstance(value, str):
        value = value.strip()
        return from_text(param, value) if value else None
    if param.type is ParamType.BOOL and isinstance(value, bool):
        return value
    if param.type in (ParamType.INT, ParamType.POST) and isinstance(value, int) and not isinstance(value, bool):
        if param.type is ParamType.POST:
            return posts.parse_post_id(str(value))
        return _in_range(param, value)
    raise ValueError(f"parameter {param.name} given a {type(value).__name__}")  # the adapter's mistake


# --- a whole line ----------------------------------------------------------------------------


class _Parse:
    def __init__(self, params: tuple[Param, ...], usage: str) -> None:
        self.params = params
        self.usage = usage

    def fail(self, problem: str = "", param: Param | None = None) -> UserError:
        if param is not None and param.hidden:
            problem = ""  # a button's parameter: the person never wrote it, so don't name it
        return UsageError(f"{problem} {self.usage}".strip())

    def typed(self, param: Param, raw: str) -> object:
        try:
            return from_text(param, raw)
        except UserError as exc:
            raise self.fail(str(exc), param) from None

    def options(self, text: str) -> tuple[Values, str]:
        """Pull `--flag value` options out of the line; the other words, in order, are returned."""
        by_flag = {flag: p for p in self.params for flag in p.flags}
        values: Values = {}
        words, rest = text.split(), []
        i = 0
        while i < len(words):
            word, param = words[i], by_flag.get(words[i])
            if param is None:
                if word.startswith("--"):
                    known = ", ".join(p.hint() for p in self.params if p.is_option and not p.hidden)
                    raise self.fail(f"Unknown option {word}. Options: {known}.")
                rest.append(word)
                i += 1
            elif param.type is ParamType.BOOL:
                values[param.name] = True
                i += 1
            elif i + 1 >= len(words):
                raise self.fail(f"{word} needs a value, for example {word} {param.example}.", param)
            else:
                values[param.name] = self.typed(param, words[i + 1])
                i += 2
        return values, " ".join(rest)

    def positional(self, text: str) -> Values:
        values: Values = {}
        params = [p for p in self.params if not p.is_option and p.type is not ParamType.IMAGE]  # attached
        for index, param in enumerate(params):
            if param.type is ParamType.TEXT and index == len(params) - 1:
                raw, text = text.strip(), ""
            else:
                parts = text.split(maxsplit=1)
                raw, text = (parts[0], parts[1]) if len(parts) == 2 else (parts[0] if parts else "", "")
            values[param.name] = self.typed(param, raw) if raw else None
        if text.strip():
            raise self.fail()  # more words than the command takes
        return values

    def parse(self, text: str, attached: Values | None = None) -> Values:
        if not self.params:
            return {}  # nothing to take: anything written is ignored (Telegram's /start <payload>)
        options, text = self.options(text) if any(p.is_option for p in self.params) else ({}, text)
        return self.complete({**self.positional(text), **options, **(attached or {})})

    def complete(self, values: Values) -> Values:
        for param in self.params:
            if values.get(param.name) is None:
                if param.required:
                    raise UsageError(param.missing) if param.missing else self.fail(param=param)
                values[param.name] = param.default
        return values


def parse_text(params: tuple[Param, ...], text: str, usage: str, attached: Values | None = None) -> Values:
    """The values written after a command's name, with the `attached` ones (pictures, by parameter
    name); `usage` ends every complaint."""
    return _Parse(params, usage).parse(text, attached)


def check_options(params: tuple[Param, ...], given: Mapping[str, object], usage: str) -> Values:
    """Values an adapter passed typed; the same checks and defaults as `parse_text`."""
    parse = _Parse(params, usage)
    by_name = {p.name: p for p in params}
    unknown = set(given) - set(by_name)
    if unknown:
        raise ValueError(f"no such parameters: {sorted(unknown)}")  # the adapter's mistake, not the person's
    values: Values = {}
    for name, value in given.items():
        if value is None:
            continue
        try:
            values[name] = from_option(by_name[name], value)
        except UserError as exc:
            raise parse.fail(str(exc), by_name[name]) from None
    return parse.complete(values)
