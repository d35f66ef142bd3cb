"""Webhook mode: a small aiohttp server that takes Telegram's POSTs and queues the updates.

Telegram sends the secret given to setWebhook in a header with every request; anything without it
is refused with 403, so nobody else can inject updates."""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from aiohttp import web
from telegram import Update
from telegram.ext import Application

from bots.telegram.bot import parse_update

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class WebhookServer:
    def __init__(self, application: Application[Any, Any, Any, Any, Any, Any], path: str, secret: str) -> None:
        self.application = application
        self.secret = secret
        self.web_app = web.Application()
        self.web_app.router.add_post(path or "/", self.receive)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def receive(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            return web.Response(status=403, text="forbidden")
        try:
            data = json.loads(await request.read())
        except (ValueError, RecursionError):  # deep nesting exhausts the parser's stack, a RecursionError
            log.warning("ignoring a webhook request that is not JSON")
            return web.Response(status=400, text="not JSON")
        update: Update | None = parse_update(data, self.application.bot)
        if update is not None:
            await self.application.update_queue.put(update)
        # A malformed update is still acknowledged: Telegram would otherwise send it again and again.
        return web.Response(text="ok")

    async def start(self, host: str, port: int) -> None:
        self._runner = web.AppRunner(self.web_app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        log.info("Telegram webhook listening on %s:%s", host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
