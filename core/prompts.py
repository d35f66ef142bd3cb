"""What an image request takes: the prompt and its options (--ar, --seed, --private), declared once
for /imagine and /remix."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from core.errors import UserError
from core.gen.sizes import ASPECT_RATIOS
from core.params import Param, ParamType

MAX_SEED = 2**31 - 1
DEFAULT_ASPECT = "1:1"

IMAGE_OPTIONS = (
    Param(
        "aspect",
        ParamType.CHOICE,
        "the shape of the image, width:height",
        choices=tuple(ASPECT_RATIOS),
        flags=("--ar", "--aspect"),
        example="16:9",
        label="aspect ratio",
    ),
    Param(
        "seed",
        ParamType.INT,
        "the same prompt and seed make the same image",
        min=0,
        max=MAX_SEED,
        flags=("--seed",),
        example="42",
    ),
    Param("private", ParamType.BOOL, "only you can see the post", flags=("--private",), default=False),
)


@dataclass(frozen=True, slots=True)
class ImagineOptions:
    prompt: str
    aspect: str = "1:1"
    seed: int | None = None
    private: bool = False

    @classmethod
    def of(cls, prompt: str, aspect: str | None, seed: int | None, private: bool) -> ImagineOptions:
        return cls(prompt, aspect or DEFAULT_ASPECT, seed, private)

    def seed_or_random(self) -> int:
        return self.seed if self.seed is not None else secrets.randbelow(MAX_SEED)


def check_prompt(prompt: str, max_chars: int, usage: str = "/imagine <prompt>") -> str:
    prompt = " ".join(prompt.split())
    if not prompt:
        raise UserError(
            f"Describe the image you want, for example: {usage.replace('<prompt>', 'a red fox in the snow')}"
        )
    if len(prompt) > max_chars:
        raise UserError(f"That prompt is {len(prompt)} characters; the limit is {max_chars}. Please shorten it.")
    return prompt
