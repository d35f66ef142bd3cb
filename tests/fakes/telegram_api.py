"""A fake Telegram Bot API server: real HTTP on 127.0.0.1, for the real python-telegram-bot.

    async with FakeTelegramAPI() as api:
        bot = ApplicationBuilder().token(api.token).base_url(f"{api.url}/bot").base_file_url(f"{api.url}/file/bot")
        api.say(ALICE, "/start")                    # an update, fetched by the bot's getUpdates
        call = await api.wait_for("sendMessage")    # what the bot sent
        api.fail("sendMessage", "429")              # the next sendMessage answers 429 retry_after 1

Methods: getMe, getUpdates (long polling; updates pushed by the test), setMyCommands, deleteWebhook,
setWebhook, getWebhookInfo, sendMessage, sendPhoto (multipart upload; the bytes are recorded, and
the photo is stored as Telegram does: re-encoded as JPEG in two sizes, each with its own file_id and
file_unique_id, fetchable with getFile; a photo a person sends is re-encoded the same way),
editMessageText, editMessageCaption, editMessageReplyMarkup, deleteMessage, answerCallbackQuery.
Other methods answer 404 as Telegram does. Limits are checked as Telegram does: text 4,096 and
caption 1,024 UTF-16 units; editing with the same content answers "message is not modified".

Failures (`fail(method, kind, times=1, chat_id=None)`): "429" (retry_after 1, or `retry_after=`),
"403" (bot was blocked by the user), "500", "hang" (no answer until the server stops: a read timeout),
"slow" (the request takes effect at once, its answer comes `delay` seconds later: a request in flight).

Flood control (`flood_limit`, off by default): a send (sendMessage, sendPhoto, edits) beyond that many
in the last second answers 429 retry_after 1, as Telegram does for a bot over its overall limit.

What it received: `calls` (every request as `Call`, in order, with the time it arrived), `messages`
(the chats' current state, edits applied), `calls_of(method)`, `await wait_for(method, where)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from PIL import Image

TOKEN = "123456:TEST-token-for-the-fake-bot-api-server"
Json = dict[str, Any]


@dataclass(frozen=True)
class User:
    id: int
    first_name: str
    username: str | None = None

    def json(self) -> Json:
        data: Json = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.username:
            data["username"] = self.username
        return data


@dataclass(frozen=True)
class ChatInfo:
    id: int
    type: str  # private, group, supergroup, channel
    title: str | None = None

    def json(self) -> Json:
        data: Json = {"id": self.id, "type": self.type}
        if self.title:
            data["title"] = self.title
        return data


SENDS = ("sendMessage", "sendPhoto", "editMessageText", "editMessageCaption", "editMessageReplyMarkup")


@dataclass
class Call:
    method: str
    params: Json
    files: dict[str, bytes]
    at: float  # time.monotonic() when it arrived
    status: int = 200
    result: Any = None  # what the fake answered with, when it succeeded

    @property
    def chat_id(self) -> str | None:
        value = self.params.get("chat_id")
        return None if value is None else str(value)

    @property
    def buttons(self) -> list[list[Json]]:
        markup = self.params.get("reply_markup") or {}
        return markup.get("inline_keyboard", [])

    @property
    def button_labels(self) -> list[str]:
        return [b["text"] for row in self.buttons for b in row]

    @property
    def button_actions(self) -> list[str]:
        return [b["callback_data"] for row in self.buttons for b in row]


@dataclass
class Failure:
    kind: str
    chat_id: str | None
    retry_after: int
    delay: float = 0.0


@dataclass
class FakeTelegramAPI:
    token: str = TOKEN
    bot_user: Json = field(
        default_factory=lambda: {
            "id": 123456,
            "is_bot": True,
            "first_name": "Imagenet",
            "username": "imagenet_test_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
    )
    calls: list[Call] = field(default_factory=list)
    messages: dict[tuple[str, int], Json] = field(default_factory=dict)
    updates: list[Json] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # files by file_id: people's and the bot's photos
    chats: dict[int, ChatInfo] = field(default_factory=dict)
    flood_limit: int | None = None  # sends allowed in any one second; None: no flood control

    def __post_init__(self) -> None:
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._unique_ids: dict[str, str] = {}  # file_id -> file_unique_id
        self._failures: dict[str, deque[Failure]] = {}
        self._new_update = asyncio.Event()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- life cycle

    async def start(self) -> FakeTelegramAPI:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        self._closing.set()
        self._new_update.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeTelegramAPI:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- driving: updates the bot will fetch

    def push(self, update: Json) -> Json:
        """Queue a raw update (an update_id is added when missing)."""
        update.setdefault("update_id", next(self._update_ids))
        self.updates.append(update)
        self._new_update.set()
        return update

    def say(self, user: User, text: str, chat: ChatInfo | None = None, reply_to: Json | None = None) -> Json:
        """A message from `user`, in their private chat unless `chat` is given."""
        return self.push(self.message_update(user, text, chat, reply_to))

    def send_file(
        self,
        user: User,
        data: bytes,
        caption: str = "",
        *,
        as_document: bool = False,
        chat: ChatInfo | None = None,
        reply_to: Json | None = None,
    ) -> Json:
        """`user` sends a picture: a photo (Telegram's compressed kind) or a document (the file as it is),
        with a caption; the bot downloads it through getFile and the file URL."""
        update = self.message_update(user, "", chat, reply_to)
        message = update["message"]
        del message["text"]
        if as_document:
            file_id = f"file-{next(self._file_ids)}"
            self.files[file_id] = data
            meta = {"file_id": file_id, "file_unique_id": f"u-{file_id}", "file_size": len(data)}
            message["document"] = {**meta, "file_name": "picture.png", "mime_type": "image/png"}
        else:
            message["photo"] = self.photo_sizes(data)
        if caption:
            message["caption"] = caption
            if caption.startswith("/"):
                length = len(caption.split()[0])
                message["caption_entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return self.push(update)

    def photo_sizes(self, data: bytes) -> list[Json]:
        """A photo as Telegram keeps it: re-encoded as JPEG (metadata, text chunks and signatures gone)
        in a small and a large size, smallest first. Bytes that are no picture are kept as they are
        (a client cannot send those as a photo; the file path is for tests of what the bot does then)."""
        try:
            with Image.open(io.BytesIO(data)) as opened:
                picture = opened.convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError):
            encoded = [(data, 64, 64)]
        else:
            encoded = []
            for side in (320, 1280):
                copy = picture.copy()
                copy.thumbnail((side, side))
                out = io.BytesIO()
                copy.save(out, format="JPEG", quality=87)
                encoded.append((out.getvalue(), copy.width, copy.height))
        sizes = []
        for content, width, height in encoded:
            number = next(self._file_ids)
            file_id = f"file-{number}"
            self.files[file_id] = content
            unique = self._unique_ids[file_id] = f"AQAD{number:06d}"
            sizes.append({"file_id": file_id, "file_unique_id": unique, "file_size": len(content), "width": width})
            sizes[-1]["height"] = height
        return sizes

    def forward_to_discussion(self, channel_post: Json, group: ChatInfo) -> Json:
        """What Telegram does with a channel post when the channel has a linked discussion group: the
        same message, automatically forwarded into the group, where it opens the post's comment thread."""
        self.chats[group.id] = group
        channel = channel_post["chat"]
        message: Json = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": group.json(),
            "sender_chat": channel,
            "is_automatic_forward": True,
            "forward_origin": {
                "type": "channel",
                "chat": channel,
                "message_id": channel_post["message_id"],
                "date": channel_post["date"],
            },
            **{k: v for k, v in channel_post.items() if k in ("photo", "caption", "caption_entities")},
        }
        return self.push({"update_id": next(self._update_ids), "message": message})["message"]

    def comment_in_thread(self, user: User, group: ChatInfo, root: Json, text: str) -> Json:
        """`user` comments under the channel post that `root` (its automatic forward) shows in the group."""
        update = self.message_update(user, text, group, reply_to=root)
        update["message"]["message_thread_id"] = root["message_id"]
        return self.push(update)

    def press(self, user: User, message: Json, data: str) -> Json:
        """`user` presses the button with callback data `data` under `message` (one the bot sent)."""
        return self.push(self.press_update(user, message, data))

    def message_update(self, user: User, text: str, chat: ChatInfo | None = None, reply_to: Json | None = None) -> Json:
        """An update with a new message, with an update_id, not queued (for webhook tests)."""
        chat = chat or ChatInfo(user.id, "private")
        self.chats[chat.id] = chat
        message: Json = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat.json(),
            "from": user.json(),
            "text": text,
        }
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        return {"update_id": next(self._update_ids), "message": message}

    def press_update(self, user: User, message: Json, data: str) -> Json:
        query = {
            "id": str(next(self._query_ids)),
            "from": user.json(),
            "chat_instance": "fake-instance",
            "data": data,
            "message": message,
        }
        return {"update_id": next(self._update_ids), "callback_query": query}

    def fail(
        self,
        method: str,
        kind: str,
        *,
        times: int = 1,
        chat_id: object = None,
        retry_after: int = 1,
        delay: float = 30.0,
    ) -> None:
        failure = Failure(kind, None if chat_id is None else str(chat_id), retry_after, delay)
        self._failures.setdefault(method, deque()).extend([failure] * times)

    # -- inspecting

    def calls_of(self, method: str, chat_id: object = None) -> list[Call]:
        return [c for c in self.calls if c.method == method and (chat_id is None or c.chat_id == str(chat_id))]

    def delivered(self, chat_id: object = None) -> list[Call]:
        """Messages that reached a chat (sendMessage and sendPhoto answered 200)."""
        sends = ("sendMessage", "sendPhoto")
        return [
            c
            for c in self.calls
            if c.method in sends and c.status == 200 and (chat_id is None or c.chat_id == str(chat_id))
        ]

    async def wait_for(
        self,
        method: str,
        where: Callable[[Call], bool] = lambda c: True,
        *,
        within: float = 5.0,
        after: int = 0,
        any_status: bool = False,
    ) -> Call:
        """The first successful call of `method` (from index `after` of `calls` on) that satisfies
        `where`; with `any_status`, failed ones count too."""
        deadline = time.monotonic() + within
        while True:
            for call in self.calls[after:]:
                if call.method == method and (any_status or call.status == 200) and where(call):
                    return call
            if time.monotonic() > deadline:
                seen = [
                    (c.method, c.status, c.params.get("text") or c.params.get("caption")) for c in self.calls[after:]
                ]
                raise AssertionError(f"no {method} call came; calls: {seen}")
            await asyncio.sleep(0.01)

    def message(self, call: Call) -> Json:
        """The message a send call created, as it is now (edits applied)."""
        return self.messages[(str(call.chat_id), call.result["message_id"])]

    # -- the server

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        params, files = await self._read(request)
        call = Call(request.match_info["method"], params, files, time.monotonic())
        self.calls.append(call)
        if request.match_info["token"] != self.token:
            return self._error(call, 401, "Unauthorized")
        failure = self._take_failure(call) or self._flooded(call)
        if failure is not None and failure.kind != "slow":
            return await self._failed(call, failure)
        method = getattr(self, f"_api_{call.method}", None)
        if method is None:
            return self._error(call, 404, "Not Found: method not found")
        try:
            result = await method(call)
        except ApiError as exc:
            return self._error(call, 400, f"Bad Request: {exc}")
        call.result = result
        if failure is not None:  # "slow": done, but the answer is late
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), failure.delay)
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    async def _read(request: web.Request) -> tuple[Json, dict[str, bytes]]:
        params: Json = {}
        files: dict[str, bytes] = {}
        if request.content_type == "application/json":
            return await request.json(), files
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                files[key] = value.file.read()
            elif isinstance(value, str) and value[:1] in "{[":
                params[key] = json.loads(value)
            else:
                params[key] = value
        return params, files

    def _flooded(self, call: Call) -> Failure | None:
        if self.flood_limit is None or call.method not in SENDS:
            return None
        recent = [c for c in self.calls[-4 * self.flood_limit - 1 : -1] if c.method in SENDS and c.status == 200]
        if sum(1 for c in recent if c.at > call.at - 1.0) >= self.flood_limit:
            return Failure("429", None, 1)
        return None

    async def _api_getFile(self, call: Call) -> Json:
        file_id = str(call.params.get("file_id"))
        if file_id not in self.files:
            raise ApiError("wrong file_id or the file is temporarily unavailable")
        return {
            "file_id": file_id,
            "file_unique_id": self._unique_ids.get(file_id, f"u-{file_id}"),
            "file_size": len(self.files[file_id]),
            "file_path": f"files/{file_id}",
        }

    async def _download(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["path"].removeprefix("files/")
        if request.match_info["token"] != self.token or file_id not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[file_id], content_type="application/octet-stream")

    def _take_failure(self, call: Call) -> Failure | None:
        queue = self._failures.get(call.method)
        if not queue:
            return None
        for failure in list(queue):
            if failure.chat_id is None or failure.chat_id == call.chat_id:
                queue.remove(failure)
                return failure
        return None

    async def _failed(self, call: Call, failure: Failure) -> web.StreamResponse:
        if failure.kind == "429":
            body = {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {failure.retry_after}",
                "parameters": {"retry_after": failure.retry_after},
            }
            call.status = 429
            return web.json_response(body, status=429)
        if failure.kind == "403":
            return self._error(call, 403, "Forbidden: bot was blocked by the user")
        if failure.kind == "500":
            return self._error(call, 500, "Internal Server Error")
        if failure.kind == "hang":
            call.status = 0
            await self._closing.wait()
            return web.json_response({"ok": False, "error_code": 500, "description": "stopped"}, status=500)
        raise ValueError(f"unknown failure kind {failure.kind!r}")

    @staticmethod
    def _error(call: Call, status: int, description: str) -> web.Response:
        call.status = status
        return web.json_response({"ok": False, "error_code": status, "description": description}, status=status)

    # -- Bot API methods

    async def _api_getMe(self, call: Call) -> Json:
        return self.bot_user

    async def _api_getUpdates(self, call: Call) -> list[Json]:
        offset = int(call.params.get("offset") or 0)
        self.updates = [u for u in self.updates if u["update_id"] >= offset]  # below the offset: confirmed
        deadline = time.monotonic() + float(call.params.get("timeout") or 0)
        while not self.updates and not self._closing.is_set():
            self._new_update.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(self._new_update.wait(), remaining)
            except TimeoutError:
                break
        return self.updates[: int(call.params.get("limit") or 100)]

    async def _api_setMyCommands(self, call: Call) -> bool:
        return True

    async def _api_deleteWebhook(self, call: Call) -> bool:
        return True

    async def _api_setWebhook(self, call: Call) -> bool:
        return True

    async def _api_getWebhookInfo(self, call: Call) -> Json:
        return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}

    async def _api_answerCallbackQuery(self, call: Call) -> bool:
        if len(call.params.get("text", "")) > 200:
            raise ApiError("MESSAGE_TOO_LONG")
        return True

    async def _api_sendMessage(self, call: Call) -> Json:
        text = str(call.params.get("text", ""))
        if not text.strip():
            raise ApiError("message text is empty")
        if utf16_length(text) > 4096:
            raise ApiError("message is too long")
        return self._new_message(call, text=text)

    async def _api_sendPhoto(self, call: Call) -> Json:
        photo = call.files.get("photo")
        if not photo:
            raise ApiError("there is no photo in the request")
        caption = str(call.params.get("caption", ""))
        if utf16_length(caption) > 1024:
            raise ApiError("message caption is too long")
        content: Json = {"photo": self.photo_sizes(photo)}
        if caption:
            content["caption"] = caption
        return self._new_message(call, **content)

    async def _api_editMessageText(self, call: Call) -> Json:
        message = self._existing(call, "message to edit not found")
        if "text" not in message:
            raise ApiError("there is no text in the message to edit")
        return self._edit(message, call, text=str(call.params["text"]))

    async def _api_editMessageCaption(self, call: Call) -> Json:
        message = self._existing(call, "message to edit not found")
        if "photo" not in message:
            raise ApiError("there is no caption in the message to edit")
        caption = str(call.params.get("caption", ""))
        if utf16_length(caption) > 1024:
            raise ApiError("message caption is too long")
        return self._edit(message, call, caption=caption)

    async def _api_editMessageReplyMarkup(self, call: Call) -> Json:
        return self._edit(self._existing(call, "message to edit not found"), call)

    async def _api_deleteMessage(self, call: Call) -> bool:
        message = self._existing(call, "message to delete not found")
        del self.messages[(str(call.chat_id), message["message_id"])]
        return True

    def _new_message(self, call: Call, **content: Any) -> Json:
        chat = self._chat(str(call.chat_id))
        message: Json = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat.json(),
            "from": {k: v for k, v in self.bot_user.items() if k in ("id", "is_bot", "first_name", "username")},
            **content,
        }
        markup = call.params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self.messages[(str(call.chat_id), message["message_id"])] = message
        return message

    def _existing(self, call: Call, missing: str) -> Json:
        message = self.messages.get((str(call.chat_id), int(call.params.get("message_id", 0))))
        if message is None:
            raise ApiError(missing)
        return message

    @staticmethod
    def _edit(message: Json, call: Call, **content: Any) -> Json:
        markup = call.params.get("reply_markup")
        updated = {**message, **content}
        if markup is not None:
            updated["reply_markup"] = markup
        else:
            updated.pop("reply_markup", None)
        if updated == message:
            raise ApiError(
                "message is not modified: specified new message content and reply markup are exactly the same "
                "as a current content and reply markup of the message"
            )
        message.clear()
        message.update(updated)
        return message

    def _chat(self, chat_id: str) -> ChatInfo:
        number = int(chat_id)
        if number in self.chats:
            return self.chats[number]
        return ChatInfo(number, "private" if number > 0 else "supergroup", None if number > 0 else "A group")


class ApiError(Exception):
    """A 400 Bad Request with this description."""


def utf16_length(value: str) -> int:
    return len(value.encode("utf-16-le")) // 2


# -- running the real bot against it


@dataclass
class RunningBot:
    """The real Telegram bot (`run_telegram`) running against a fake API, for one test."""

    api: FakeTelegramAPI
    task: asyncio.Task[None]
    stop: asyncio.Event
    application: Any = None

    @property
    def messenger(self) -> Any:
        return self.application.bot_data["messenger"]

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 10)


async def start_bot(core: Any, settings: Any, api: FakeTelegramAPI, **overrides: Any) -> RunningBot:
    """Start the bot with short timings (Tuning fields and Settings fields may be overridden);
    returns once it is receiving updates."""
    from pydantic import SecretStr

    from bots.telegram import app as telegram_app

    fields = telegram_app.Tuning.__dataclass_fields__
    timings = {"poll_timeout": 1.0, "read_timeout": 2.0, "chat_interval": 0.0, "start_retry_seconds": 0.1}
    tuning = telegram_app.Tuning(**(timings | {k: v for k, v in overrides.items() if k in fields}))
    changes = {"telegram_bot_token": SecretStr(api.token), "telegram_api_base_url": api.url}
    changes |= {k: v for k, v in overrides.items() if k not in fields}
    bot_settings = settings.model_copy(update=changes)
    application = telegram_app.build_application(core, bot_settings, tuning)
    stop = asyncio.Event()
    task = asyncio.create_task(telegram_app.serve(application, bot_settings, stop, tuning))
    receiving = "setWebhook" if bot_settings.telegram_webhook_url else "getUpdates"
    await api.wait_for(receiving, within=10)
    return RunningBot(api, task, stop, application)


@pytest.fixture
async def api() -> AsyncIterator[FakeTelegramAPI]:
    """A fake Bot API server for one test."""
    async with FakeTelegramAPI() as server:
        yield server


@pytest.fixture
async def bot(core: Any, settings: Any, api: FakeTelegramAPI) -> AsyncIterator[RunningBot]:
    """The real Application polling `api`, on the test's core."""
    running = await start_bot(core, settings, api)
    yield running
    await running.close()
