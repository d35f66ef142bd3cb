"""`python -m bots`: start the messenger bots whose tokens are set, or the console chat."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from core.admins import handle_only_warning
from core.app import Core, bootstrap
from core.config import ConfigError, Settings, load_settings
from core.health import Heartbeat, health, render
from core.roles import ALL, ROLES, ProcessLock, check_roles, claim_sqlite, describe, parse_roles
from core.startup import check_media_dir

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
    # APScheduler logs every run of every periodic job at INFO.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


async def run_console(core: Core) -> None:
    from bots.console.chat import ConsoleChat

    await ConsoleChat(core).run()


async def run_messengers(
    core: Core, settings: Settings, stop: asyncio.Event | None = None, *, receive: bool = True
) -> None:
    """Every messenger bot whose token is set, on this one event loop, until SIGINT or SIGTERM."""
    if stop is None:
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # not on Windows
                asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    running = []
    if settings.telegram_bot_token is not None:
        from bots.telegram import run_telegram

        running.append(run_telegram(core, settings, stop, receive=receive))
    if settings.discord_bot_token is not None:
        from bots.discord import run_discord

        running.append(run_discord(core, settings, stop, receive=receive))
    await asyncio.gather(*running)


def warn_about_admins(settings: Settings) -> None:
    """Loudly, on the terminal and in the log: handle-only ADMINS are nobody on a messenger."""
    messengers = [
        name
        for name, token in (("Telegram", settings.telegram_bot_token), ("Discord", settings.discord_bot_token))
        if token is not None
    ]
    warning = handle_only_warning(settings.admin_list, messengers)
    if warning is not None:
        print(warning, file=sys.stderr)
        log.warning(warning)


async def serve(settings: Settings, roles: frozenset[str] = ALL) -> None:
    warn_about_admins(settings)
    core = await bootstrap(settings)  # first: it makes the SQLite folder, or says why it cannot
    heartbeat = Heartbeat(core.sessions, describe(roles), core.leads, settings.heartbeat_seconds)
    process_lock = ProcessLock()
    try:
        process_lock = claim_sqlite(settings.database_url)
        await core.start(schedule="scheduler" in roles, workers="workers" in roles, senders="senders" in roles)
        await heartbeat.start()
        if settings.telegram_bot_token is None and settings.discord_bot_token is None:
            if "messengers" in roles:
                await run_console(core)
            else:
                await wait_for_signal()
        elif roles & {"messengers", "senders"}:
            # A senders-only process needs the bots to send with, but receives nothing.
            await run_messengers(core, settings, receive="messengers" in roles)
        else:
            await wait_for_signal()
    finally:
        if heartbeat.started:
            await heartbeat.stop()
        await core.aclose()
        process_lock.release()


async def wait_for_signal() -> None:
    """A process without messengers (workers, the scheduler) runs until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    log.info("running until SIGINT or SIGTERM")
    await stop.wait()


async def status_command(settings: Settings) -> int:
    """`python -m bots status`: the deployment's processes, leaders and backlogs."""
    from core.db import create_sessionmaker
    from core.migrate import upgrade
    from core.startup import open_database

    engine = await open_database(settings.database_url)
    try:
        await upgrade(engine)  # as any start does: the tables it reads may be new
        print(render(await health(create_sessionmaker(engine))))
    finally:
        await engine.dispose()
    return 0


async def digest_command(settings: Settings, args: argparse.Namespace) -> int:
    """`python -m bots digest --now [--handle H]` and `python -m bots digest --preview H [--out F]`."""
    from core.errors import UserError
    from core.feed.operators import digest_now, digest_preview

    core = await bootstrap(settings)
    try:
        if args.preview:
            print(f"Wrote {await digest_preview(core, args.preview, Path(args.out) if args.out else None)}")
        else:
            stats = await digest_now(core, args.handle)
            print(
                f"Digests queued: {stats.queued} ({stats.considered} people considered, "
                f"{stats.empty} with nothing new, {stats.unreachable} unreachable). "
                "The running bot sends them within seconds; people who had today's digest were left alone."
            )
        return 0
    except UserError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        await core.aclose()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bots", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    serve_parser = commands.add_parser("serve", help="run this process with some roles of a larger deployment")
    serve_parser.add_argument(
        "--roles",
        default=",".join(ROLES),
        help=f"comma-separated, any of {', '.join(ROLES)} (default: all; SQLite allows only all)",
    )
    commands.add_parser("status", help="show the deployment's processes, leaders, queue and outbox backlog")
    digest = commands.add_parser("digest", help="run a digest pass now, or preview one person's digest")
    action = digest.add_mutually_exclusive_group(required=True)
    action.add_argument("--now", action="store_true", help="queue today's digest for everyone who has not had it")
    action.add_argument("--preview", metavar="HANDLE", help="write HANDLE's digest picture to a file, send nothing")
    digest.add_argument("--handle", help="with --now: only this person")
    digest.add_argument(
        "--out",
        help="with --preview: the file to write, .jpg, .png or .webp (default MEDIA_DIR/previews/digest-HANDLE.jpg)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        roles = parse_roles(args.roles if args.command == "serve" else None)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    no_bots = settings.telegram_bot_token is None and settings.discord_bot_token is None
    chat = no_bots and args.command in (None, "serve") and "messengers" in roles  # the console chat
    with contextlib.suppress(KeyboardInterrupt):
        try:
            check_media_dir(settings.media_dir)  # first: the console's log file lives beside it
            configure_logging(settings, console=chat or args.command in ("digest", "status"))
            if args.command == "digest":
                return asyncio.run(digest_command(settings, args))
            if args.command == "status":
                return asyncio.run(status_command(settings))
            check_roles(settings.database_url, roles)
            asyncio.run(serve(settings, roles))
        except ConfigError as exc:  # found while building the core, e.g. a backend that needs a key
            print(exc, file=sys.stderr)
            return 2
        except OSError as exc:  # e.g. MEDIA_DIR or the database folder cannot be created
            log.debug("could not start", exc_info=True)  # the log may be what failed
            print(f"Could not start: {exc.strerror or exc} ({exc.filename or 'see the log'})", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
