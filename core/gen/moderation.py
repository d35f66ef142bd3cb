"""Checking a prompt before any image is made.

Two layers, in order:
1. The blocklist from `settings.blocklist` (BLOCKLIST, comma-separated). A plain entry such as `gore` or
   `blood bath` matches as whole words, case-insensitively (so `gore` blocks "Gore!" but not "gorey" or
   "Algore"). An entry written `re:<pattern>` is a regular expression searched case-insensitively, e.g.
   `re:\\bnsfw\\w*`. Because the setting is split on commas, a pattern cannot contain a comma. An invalid
   pattern stops the program at start-up with one line (ConfigError).
2. When an OpenAI API key is set (and OPENAI_MODERATION is on), OpenAI's moderations endpoint.

If the moderations endpoint fails (unreachable, timeout, 5xx, 429, even a rejected key), the prompt is
judged by the blocklist alone and a warning is logged: a moderation outage must not stop everybody from
posting, and the image model applies its own content policy anyway (a refusal there comes back as a
`GenerationError` of kind `content_policy`).
"""

from __future__ import annotations

import base64
import logging
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

import openai
from openai.types import ModerationImageURLInputParam

from core.config import ConfigError, Settings

log = logging.getLogger(__name__)

Source = Literal["blocklist", "openai"]


@dataclass(frozen=True, slots=True)
class ModerationResult:
    allowed: bool
    reason: str  # for a refusal, one line to show the author; for an allowed prompt, "" or a note for logs
    source: Source  # which check decided


def _normalise(text: str) -> str:
    # NFKC folds look-alikes such as full-width letters (ｇｏｒｅ) into plain ones before matching.
    return unicodedata.normalize("NFKC", text)


def compile_blocklist(entries: tuple[str, ...] | list[str]) -> list[re.Pattern[str]]:
    patterns: list[re.Pattern[str]] = []
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        if entry.startswith("re:"):
            source = entry[3:]
            try:
                patterns.append(re.compile(source, re.IGNORECASE))
            except re.error as exc:
                raise ConfigError(
                    f"Invalid setting BLOCKLIST: {entry!r} is not a valid regular expression ({exc})"
                ) from None
        else:
            words = [re.escape(word) for word in _normalise(entry).split()]
            # Whole words: not preceded or followed by a letter, digit or underscore; any spacing between words.
            patterns.append(re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE))
    return patterns


class Moderator:
    def __init__(self, settings: Settings, *, client: openai.AsyncOpenAI | None = None) -> None:
        self.blocklist = compile_blocklist(settings.blocklist)
        self.model = settings.openai_moderation_model
        self._owns_client = False
        self._client = client
        if client is None and settings.openai_moderation and settings.openai_api_key is not None:
            self._client = openai.AsyncOpenAI(
                api_key=settings.openai_api_key.get_secret_value(),
                base_url=settings.openai_base_url or None,
                timeout=settings.moderation_timeout_seconds,
                max_retries=0,  # a failed check falls back to the blocklist; never hold a prompt up retrying
            )
            self._owns_client = True

    @property
    def uses_openai(self) -> bool:
        return self._client is not None

    def check_blocklist(self, prompt: str) -> ModerationResult:
        text = _normalise(prompt)
        for pattern in self.blocklist:
            found = pattern.search(text)
            if found:
                return ModerationResult(
                    False, f"Your prompt contains “{found.group(0).strip()}”, which is not allowed here.", "blocklist"
                )
        return ModerationResult(True, "", "blocklist")

    async def check(self, prompt: str) -> ModerationResult:
        local = self.check_blocklist(prompt)
        if not local.allowed or self._client is None:
            return local
        try:
            response = await self._client.moderations.create(model=self.model, input=prompt)
        except openai.OpenAIError as exc:
            # Fail open to the blocklist (see the module docstring). Log the kind of failure, never the key.
            status = getattr(exc, "status_code", None)
            log.warning(
                "moderation endpoint failed (%s%s); judged by the blocklist only",
                type(exc).__name__,
                f", HTTP {status}" if status else "",
            )
            return ModerationResult(True, "moderation service unavailable; blocklist only", "blocklist")
        flagged = [result for result in response.results if result.flagged]
        if not flagged:
            return ModerationResult(True, "", "openai")
        categories = sorted(
            {name for result in flagged for name, on in result.categories.model_dump(by_alias=True).items() if on}
        )
        because = f" ({', '.join(categories)})" if categories else ""
        return ModerationResult(
            False, f"Your prompt was flagged by the content filter{because}. Please rephrase it.", "openai"
        )

    async def check_image(self, data: bytes, mime: str) -> ModerationResult:
        """A picture through the moderations endpoint (it takes images), when a key is set. Fails open,
        as prompts do: the image model applies its own policy to what it is given."""
        if self._client is None:
            return ModerationResult(True, "", "blocklist")
        url = f"data:{mime};base64,{base64.b64encode(data).decode()}"
        item: ModerationImageURLInputParam = {"type": "image_url", "image_url": {"url": url}}
        try:
            response = await self._client.moderations.create(model=self.model, input=[item])
        except openai.OpenAIError as exc:
            log.warning("image moderation failed (%s); the picture is let through", type(exc).__name__)
            return ModerationResult(True, "moderation service unavailable", "blocklist")
        if not any(result.flagged for result in response.results):
            return ModerationResult(True, "", "openai")
        return ModerationResult(False, "That picture was flagged by the content filter, so it can't be used.", "openai")

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            await self._client.close()
