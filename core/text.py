"""One rule for text that people write, applied where it enters the core: every typed line, every
button action, every answer and every name a platform hands in."""

from __future__ import annotations

import re
import unicodedata

from core.errors import UserError

# Characters that reorder the text around them: a name with one can read as someone else's.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
ZWJ = "\u200d"  # joins emoji into one picture (👩‍🎨); invisible anywhere else
# Letters and marks that draw nothing (a grapheme joiner, Hangul fillers, Khmer inherent vowels):
# not format characters, so `clean` keeps them in prompts, but in a name they fake a blank or hide a
# difference ("Bo\u3164ss" looks like "Boss").
_BLANK_IN_NAMES = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u3164\uffa0")
ECHO_WORD_MAX = 60  # longer than any handle, command name or post reference a person means to type
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
# "(@boss)", "@ boss", "＠boss" (NFKC folds the full-width sign): a name must not carry a handle.
_HANDLE_IN_NAME = re.compile(r"@\s*[\w]", re.UNICODE)


def _after_emoji(previous: str) -> bool:
    return bool(previous) and (unicodedata.category(previous) == "So" or previous == "\ufe0f")


def clean(text: str, *, keep_newlines: bool = True) -> str:
    """NFC; control characters gone (tabs and other breaks become spaces, newlines kept when asked);
    invisible format characters gone, except a joiner inside an emoji; bytes that were not valid
    UTF-8 (lone surrogates) become U+FFFD. Bidi controls stay: `clean_name` refuses them."""
    out: list[str] = []
    for char in unicodedata.normalize("NFC", text.replace("\r\n", "\n")):
        category = unicodedata.category(char)
        if char in _LINE_BREAKS:
            out.append("\n" if keep_newlines else " ")
        elif char == "\t":
            out.append(" ")
        elif category == "Cs":
            out.append("\ufffd")
        elif category == "Cc":
            continue  # NUL, ESC (terminal escapes), DEL, C1 controls
        elif category == "Cf" and char not in BIDI_CONTROLS:
            if char == ZWJ and _after_emoji(out[-1] if out else ""):
                out.append(char)
        else:
            out.append(char)
    return "".join(out)


def _without_blanks(text: str) -> str:
    return "".join(char for char in text if char not in _BLANK_IN_NAMES)


def strip_bidi(text: str) -> str:
    return "".join(char for char in text if char not in BIDI_CONTROLS)


def has_bidi(text: str) -> bool:
    return any(char in BIDI_CONTROLS for char in text)


def clean_name(raw: str) -> str:
    """A display name a person sets: one line, no direction changes, no handle inside. UserError otherwise."""
    if has_bidi(raw):
        raise UserError("Names cannot contain characters that change the writing direction.")
    name = " ".join(_without_blanks(clean(raw, keep_newlines=False)).split())
    if looks_like_handle(name):
        raise UserError("Names cannot contain an @handle; your handle is shown next to your name.")
    return name


def looks_like_handle(name: str) -> bool:
    return bool(_HANDLE_IN_NAME.search(unicodedata.normalize("NFKC", name)))


def platform_name(raw: str) -> str:
    """A name a platform hands in (it cannot be refused): cleaned the same way, the offending parts dropped."""
    name = " ".join(_without_blanks(strip_bidi(clean(raw, keep_newlines=False))).split())
    folded = unicodedata.normalize("NFKC", name)
    if looks_like_handle(name):
        name = _HANDLE_IN_NAME.sub(lambda m: m.group(0)[-1], folded).replace("()", "").strip()
    return " ".join(name.split())


_LONG_WORD = re.compile(rf"\S{{{ECHO_WORD_MAX + 1},}}")


def clip_echo(line: str) -> str:
    """An error line that repeats what was typed: any word longer than ECHO_WORD_MAX is cut, so a
    100,000-character handle is not sent back whole (the platforms cut long messages; the console
    does not)."""
    return _LONG_WORD.sub(lambda m: m.group(0)[: ECHO_WORD_MAX - 1] + "…", line)
