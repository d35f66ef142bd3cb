"""A local chat in the terminal over the core's command layer; reads standard input line by line,
so it can be scripted through a pipe."""

from __future__ import annotations

import asyncio
import getpass
import re
import sys
from pathlib import Path
from typing import TextIO

from bots.console.messenger import ConsoleMessenger
from bots.console.render import render
from core import commands
from core.actor import Actor
from core.app import Core, parse_line
from core.params import Upload
from core.people import normalize_handle
from core.replies import Ask, Reply
from core.text import platform_name

BOT = "bot"
_UNDECODED = re.compile(r"[\udc80-\udcff]")  # how surrogateescape keeps a byte that was not UTF-8


def read_line(stream: TextIO) -> str:
    """A line of input. A byte that is not UTF-8 is read as Windows-1252 (what a Latin-1 terminal
    sends for é), so it never crashes the chat nor reaches the core as a lone surrogate."""
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        return stream.readline()
    text = buffer.readline().decode("utf-8", errors="surrogateescape")
    return _UNDECODED.sub(lambda m: bytes([ord(m.group()) - 0xDC00]).decode("cp1252", errors="replace"), text)


def read_upload(where: str, limit_mb: float) -> Upload:
    """The file, or only its start when it is over the limit (the core refuses it by its size)."""
    path = Path(where).expanduser()
    if not path.is_file():
        raise FileNotFoundError(2, "no such file", str(path))
    size = path.stat().st_size
    with path.open("rb") as handle:
        data = handle.read(int(limit_mb * 1_000_000) + 1)
    return Upload(data, path.name, size)


def _login_name() -> str:
    try:
        return getpass.getuser() or "me"
    except (KeyError, OSError):  # no login name in the environment and no passwd entry (e.g. a container)
        return "me"


class ConsoleChat:
    def __init__(self, core: Core, out: TextIO = sys.stdout, name: str | None = None) -> None:
        self.core = core
        self.out = out
        self.actor = self._actor(name or _login_name())
        self.pending: Ask | None = None
        self.actions: set[str] = set()  # the buttons shown so far; typing one presses it
        self.messenger = ConsoleMessenger(self.write, self._remember_buttons, lambda: self.chat_id)
        core.register_messenger(self.messenger)

    @property
    def chat_id(self) -> str:
        return self.actor.chat_id or "console"

    @staticmethod
    def _actor(name: str) -> Actor:
        handle = normalize_handle(name) or "me"
        return Actor("console", handle, chat_id=f"console:{handle}", username=handle, display_name=name)

    async def line(self, raw: str) -> None:
        text = raw.strip()
        if not text:
            return
        if text == "/as" or text.startswith("/as "):  # not /assist or /asdf
            self._switch(platform_name(text[3:]))  # the name a person gives is cleaned like any platform's
            return
        typed = " ".join(text.split())  # `like\t1` or `like  1` is the button `like 1` all the same
        if typed in self.actions:
            replies = await self.core.press(self.actor, typed)
        elif self.pending is not None and not text.startswith("/"):
            ask, self.pending = self.pending, None
            replies = await self.core.answer(self.actor, ask, text)
        else:
            self.pending = None
            replies = await self._command(text)
        await self.show(replies)

    async def _command(self, text: str) -> list[Reply]:
        """A command that takes a picture is written with a file path in its place: `/edit <path> <prompt>`.
        Only the console reads local files; every check of the picture is the core's."""
        parsed = parse_line(text)
        found = commands.COMMANDS.get(parsed.name) if parsed else None
        if parsed is None or found is None or found.image_param is None or not parsed.args:
            return await self.core.handle(self.actor, text)
        where, _, rest = parsed.args.partition(" ")
        try:
            upload = await asyncio.to_thread(read_upload, where, self.core.settings.upload_max_mb)
        except OSError as exc:
            return [Reply(text=f"Cannot read {where}: {exc.strerror or 'not a readable file'}.", error=True)]
        return await self.core.handle(self.actor, f"/{parsed.name} {rest}", upload=upload)

    def _switch(self, name: str) -> None:
        if not name:
            self.write(f"{BOT}> Usage: /as <name>. You are {self.actor.user_id}.")
            return
        self.actor, self.pending = self._actor(name), None
        self.write(f"{BOT}> You are now {self.actor.user_id}.")
        held = self.messenger.release(self.chat_id)
        if held:
            self.write(f"{BOT}> While you were away ({len(held)} message{'s' if len(held) != 1 else ''}):")
        for reply in held:
            self._remember_buttons(reply)
            self.write(render(reply, BOT))

    def _remember_buttons(self, reply: Reply) -> None:
        self.actions.update(button.action for row in reply.buttons for button in row)

    async def show(self, replies: list[Reply]) -> None:
        for reply in replies:
            self._remember_buttons(reply)
            if reply.ask is not None:
                self.pending = reply.ask
            self.write(render(reply, BOT))
            if reply.job_id is not None:
                # From here on the core edits this message as the image is made. A terminal chat is
                # one conversation at a time, so wait for the image before reading the next line.
                await self.core.progress_shown(reply.job_id, self.messenger.new_ref(self.chat_id))
                await self.core.queue.wait_for(reply.job_id)
                await self.core.drain()

    def write(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    async def run(self, stream: TextIO = sys.stdin) -> None:
        interactive = stream.isatty()
        if interactive:
            self.write(f"{BOT}> Hello {self.actor.user_id}! Try /imagine a red fox in the snow, or /help.")
        while True:
            if interactive:
                print(f"{self.actor.user_id}: ", end="", file=self.out, flush=True)
            raw = await asyncio.to_thread(read_line, stream)
            if not raw:
                break
            await self.line(raw)
        # End of input: let the images in progress finish and their messages arrive, then exit.
        await self.core.drain()
