"""Parsing `/imagine` arguments: the prompt and its options (--ar, --seed, --private)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from core.errors import UserError
from core.gen.sizes import parse_aspect_ratio

MAX_SEED = 2**31 - 1


@dataclass(frozen=True, slots=True)
class ImagineOptions:
    prompt: str
    aspect: str = "1:1"
    seed: int | None = None
    private: bool = False

    def seed_or_random(self) -> int:
        return self.seed if self.seed is not None else secrets.randbelow(MAX_SEED)


def parse_imagine(args: str, max_chars: int, usage: str = "/imagine <prompt>") -> ImagineOptions:
    words = args.split()
    prompt_words: list[str] = []
    aspect, seed, private = "1:1", None, False
    i = 0
    while i < len(words):
        word = words[i]
        if word in {"--ar", "--aspect"}:
            aspect = parse_aspect_ratio(_value(words, i, word))
            i += 2
        elif word == "--seed":
            seed = _seed(_value(words, i, word))
            i += 2
        elif word == "--private":
            private, i = True, i + 1
        elif word.startswith("--"):
            raise UserError(f"Unknown option {word}. Options: --ar 16:9, --seed 42, --private.")
        else:
            prompt_words.append(word)
            i += 1
    return ImagineOptions(check_prompt(" ".join(prompt_words), max_chars, usage), aspect, seed, private)


def check_prompt(prompt: str, max_chars: int, usage: str = "/imagine <prompt>") -> str:
    prompt = " ".join(prompt.split())
    if not prompt:
        raise UserError(
            f"Describe the image you want, for example: {usage.replace('<prompt>', 'a red fox in the snow')}"
        )
    if len(prompt) > max_chars:
        raise UserError(f"That prompt is {len(prompt)} characters; the limit is {max_chars}. Please shorten it.")
    return prompt


def _value(words: list[str], i: int, option: str) -> str:
    if i + 1 >= len(words):
        raise UserError(f"{option} needs a value, for example {option} {'16:9' if option != '--seed' else '42'}.")
    return words[i + 1]


def _seed(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_SEED:
        raise UserError(f"--seed takes a whole number from 0 to {MAX_SEED}.")
    return int(raw)
