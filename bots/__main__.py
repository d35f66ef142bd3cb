"""`python -m bots`: start the messenger bots whose tokens are set, or the console chat."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from core.app import Core, bootstrap
from core.config import ConfigError, Settings, load_settings

log = logging.getLogger("bots")


def configure_logging(settings: Settings, *, console: bool) -> None:
    # The console chat owns the terminal, so its log goes to a file beside the database.
    if console:
        path = Path(settings.media_dir).parent / "bots.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=settings.log_level, handlers=[handler], force=True)
    # httpx logs every request URL at INFO, and Telegram's URLs contain the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)


async def run_console(core: Core) -> None:
    from bots.console.chat import ConsoleChat

    await ConsoleChat(core).run()


async def run_messengers(core: Core, settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Every messenger bot whose token is set, on this one event loop, until SIGINT or SIGTERM."""
    if stop is None:
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # not on Windows
                asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    running = []
    if settings.telegram_bot_token is not None:
        from bots.telegram import run_telegram

        running.append(run_telegram(core, settings, stop))
    await asyncio.gather(*running)


async def serve(settings: Settings) -> None:
    core = await bootstrap(settings)
    try:
        await core.start()
        if settings.telegram_bot_token is None and settings.discord_bot_token is None:
            await run_console(core)
        else:
            await run_messengers(core, settings)
    finally:
        await core.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bots", description=__doc__)
    parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings, console=settings.telegram_bot_token is None and settings.discord_bot_token is None)
    with contextlib.suppress(KeyboardInterrupt):
        try:
            asyncio.run(serve(settings))
        except ConfigError as exc:  # found while building the core, e.g. a backend that needs a key
            print(exc, file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
