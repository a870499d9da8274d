"""A local fake of the Telegram Bot API, so the real python-telegram-bot client does the talking.

It speaks the documented JSON shapes (``{"ok": true, "result": ...}`` and
``{"ok": false, "error_code": ..., "description": ..., "parameters": {"retry_after": ...}}``),
accepts form-encoded, JSON and multipart requests, records every request, and checks the
limits Telegram enforces (text length after HTML parsing, caption length, callback_data
bytes, button count, HTML entities).

Usage from async code (pytest-asyncio)::

    async with FakeBotApi() as api:
        bot = Bot(api.token, base_url=api.base_url, base_file_url=api.base_file_url)
        api.inject_message(chat_id=42, text="xin chao", language_code="vi")
        ...                                    # run the bot (polling calls getUpdates)
        sent = await api.wait_for_requests("sendMessage", count=1)
        assert sent[0].params["chat_id"] == 42

Usage from sync code (a benchmark, a scheduler test running its own loop)::

    with FakeBotApi.serve_in_thread(rate_limit_per_second=30) as api:
        ...                                    # every public method is thread-safe

Failures on demand:

- ``api.fail_next("sendMessage", count=2, retry_after=3)``: the next 2 calls answer 429.
- ``api.fail_next("sendMessage", error_code=403, chat_id=7)``: the next call for chat 7
  answers 403 "Forbidden: bot was blocked by the user".
- ``api.block_chat(7)``: every send to chat 7 answers 403 until ``unblock_chat(7)``.
- ``FakeBotApi(rate_limit_per_second=30)``: sends above 30 per sliding second answer 429.
- ``api.fail_next("sendMessage", error_code=400, description="Bad Request: can't parse
  entities: ...")``: any other error, once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import itertools
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
DEFAULT_TOKEN = "123456789:TEST-fake-bot-api-token_abcdefghijkl"
BOT_USER_ID = 123456789
BOT_USERNAME = "spin_test_bot"

#: Telegram Bot API limits the fake enforces (https://core.telegram.org/bots/api).
MAX_TEXT_UTF16_UNITS = 4096
MAX_CAPTION_UTF16_UNITS = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_INLINE_BUTTONS = 100
MAX_GETUPDATES_LIMIT = 100
MAX_SECRET_TOKEN_LENGTH = 256
SECRET_TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")

#: Seconds ``stop()`` lets requests in flight (a delayed response, see ``latency_seconds``)
#: finish before aiohttp cancels them; aiohttp's own default is 60 s.
SHUTDOWN_TIMEOUT_SECONDS = 1.0
#: Seconds ``serve_in_thread`` waits for its thread to start, and later to stop, the server.
THREAD_START_TIMEOUT_SECONDS = 10.0
THREAD_STOP_TIMEOUT_SECONDS = 10.0

#: Methods that send a message to a chat; they count against the global rate limit.
SEND_METHODS = frozenset(
    {"sendMessage", "sendPhoto", "sendDocument", "forwardMessage", "copyMessage", "sendChatAction", "editMessageText"}
)

#: Parameters that are strings even when they look like JSON (a text "123" stays a string).
STRING_PARAMETERS = frozenset(
    {"text", "caption", "parse_mode", "callback_query_id", "url", "secret_token", "language_code", "action", "ip_address"}
)

#: Tags that Telegram's HTML parse mode accepts.
HTML_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
    }
)
_HTML_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^<>]*)?)>")
_HTML_ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);")
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


class ApiError(Exception):
    """A Bot API error answer: HTTP status, description and optional parameters."""

    def __init__(self, error_code: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters


@dataclasses.dataclass
class RecordedRequest:
    """One call the fake received; ``params`` are decoded, ``files`` map a field to its upload."""

    method: str
    params: dict[str, Any]
    files: dict[str, UploadedFile]
    received_at: float
    status: int = 200
    response: Any = None

    @property
    def chat_id(self) -> Any:
        return self.params.get("chat_id")


@dataclasses.dataclass(frozen=True)
class UploadedFile:
    """A multipart upload: file name, content type and bytes."""

    filename: str | None
    content_type: str | None
    data: bytes


@dataclasses.dataclass
class _Failure:
    method: str
    error_code: int
    description: str
    retry_after: int | None
    chat_id: Any
    remaining: int


@dataclasses.dataclass
class _PendingUpdate:
    update: dict[str, Any]
    injected_at: float
    delivered_at: float | None = None


def utf16_length(text: str) -> int:
    """Return the length of ``text`` in UTF-16 code units, as Telegram counts it."""
    return len(text.encode("utf-16-le")) // 2


def parse_html(text: str) -> str:
    """Return the plain text of Telegram-HTML ``text``; raise ApiError 400 like Telegram does."""
    plain: list[str] = []
    stack: list[str] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char == "<":
            match = _HTML_TAG.match(text, position)
            if match is None:
                raise ApiError(400, f"Bad Request: can't parse entities: Unexpected character '<' at byte offset {position}")
            closing, name, _attributes = match.group(1), match.group(2).lower(), match.group(3)
            if name not in HTML_TAGS:
                raise ApiError(
                    400, f'Bad Request: can\'t parse entities: Unsupported start tag "{name}" at byte offset {position}'
                )
            if closing:
                if not stack or stack[-1] != name:
                    expected = stack[-1] if stack else ""
                    description = f'Unmatched end tag at byte offset {position}, expected "</{expected}>"'
                    raise ApiError(400, f"Bad Request: can't parse entities: {description}")
                stack.pop()
            else:
                stack.append(name)
            position = match.end()
            continue
        if char == "&":
            match = _HTML_ENTITY.match(text, position)
            if match is None:
                raise ApiError(
                    400, f"Bad Request: can't parse entities: Can't find end of the entity starting at byte offset {position}"
                )
            entity = match.group(1)
            if entity.startswith("#x"):
                plain.append(chr(int(entity[2:], 16)))
            elif entity.startswith("#"):
                plain.append(chr(int(entity[1:])))
            else:
                plain.append(_NAMED_ENTITIES[entity])
            position = match.end()
            continue
        if char == ">":
            raise ApiError(400, f"Bad Request: can't parse entities: Unexpected character '>' at byte offset {position}")
        plain.append(char)
        position += 1
    if stack:
        raise ApiError(400, f"Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"{stack[-1]}\"")
    return "".join(plain)


class FakeBotApi:
    """An aiohttp server on 127.0.0.1 that answers like the Telegram Bot API.

    ``rate_limit_per_second`` (None: no limit) answers 429 with ``retry_after`` 1 to any
    send method above that many calls in the last second, like Telegram's ~30 messages/s.
    ``latency_seconds`` delays every answer. Message ids in each chat count up from
    ``first_message_id``; give fakes sharing one database different starts, because
    Telegram never reuses a message id within a chat.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        rate_limit_per_second: float | None = None,
        bot_username: str = BOT_USERNAME,
        latency_seconds: float = 0.0,
        first_message_id: int = 1,
    ) -> None:
        self.token = token
        self.rate_limit_per_second = rate_limit_per_second
        self.bot_user = {"id": BOT_USER_ID, "is_bot": True, "first_name": "SPIN Assistant", "username": bot_username}
        self.latency_seconds = latency_seconds

        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._updates: list[_PendingUpdate] = []
        self._delivered_updates: list[_PendingUpdate] = []
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = collections.defaultdict(lambda: itertools.count(first_message_id))
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._chats: dict[int, dict[str, Any]] = {}
        self._failures: list[_Failure] = []
        self._blocked_chats: set[int] = set()
        self._send_times: collections.deque[float] = collections.deque()
        self._commands: dict[str, list[dict[str, Any]]] = {}
        self._callback_ids = itertools.count(1)
        self.webhook: dict[str, Any] = {}
        self.webhook_deliveries: list[tuple[int, int]] = []

        self._loop: asyncio.AbstractEventLoop | None = None
        # Set and replaced on every change; waiters wait on the event current when they start.
        self._changed: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._stopping = False
        self.port: int | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """Return the value for python-telegram-bot's ``base_url`` (the token is appended)."""
        return f"http://{LOOPBACK}:{self._require_port()}/bot"

    @property
    def base_file_url(self) -> str:
        """Return the value for python-telegram-bot's ``base_file_url``."""
        return f"http://{LOOPBACK}:{self._require_port()}/file/bot"

    def _require_port(self) -> int:
        if self.port is None:
            raise RuntimeError("FakeBotApi is not started: call `await api.start()` or use `async with FakeBotApi()`")
        return self.port

    async def start(self, port: int = 0) -> None:
        """Listen on 127.0.0.1 (``port`` 0 picks a free port, readable as ``self.port``)."""
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
        self._webhook_task = asyncio.create_task(self._deliver_webhooks())
        logger.info("fake Bot API listening on %s:%s", LOOPBACK, self.port)

    async def stop(self) -> None:
        """Stop listening and cancel webhook delivery; open long polls return at once."""
        self._stopping = True
        self._wake()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        logger.info("fake Bot API on port %s stopped", self.port)

    async def __aenter__(self) -> FakeBotApi:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    @classmethod
    @contextlib.contextmanager
    def serve_in_thread(cls, **kwargs: Any) -> Iterator[FakeBotApi]:
        """Run a fake in its own event loop on a background thread, for sync callers.

        The thread owns the loop: it starts the server, runs until the ``with`` block ends,
        then stops the server, cancels what still runs and closes the loop. An error in
        ``start()`` is raised here; a stop that does not finish within
        THREAD_STOP_TIMEOUT_SECONDS raises RuntimeError rather than hanging the caller.
        """
        api = cls(**kwargs)
        loop = asyncio.new_event_loop()
        started = threading.Event()
        start_errors: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                try:
                    loop.run_until_complete(api.start())
                except BaseException as error:  # re-raised in the caller's thread
                    start_errors.append(error)
                started.set()
                if not start_errors:
                    loop.run_forever()
                loop.run_until_complete(api.stop())
            finally:
                _close_loop(loop)

        thread = threading.Thread(target=run, name="fake-bot-api", daemon=True)
        thread.start()
        if not started.wait(timeout=THREAD_START_TIMEOUT_SECONDS):
            raise RuntimeError(f"fake Bot API did not start within {THREAD_START_TIMEOUT_SECONDS} s")
        if start_errors:
            thread.join(timeout=THREAD_STOP_TIMEOUT_SECONDS)
            raise start_errors[0]
        try:
            yield api
        finally:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=THREAD_STOP_TIMEOUT_SECONDS)
            if thread.is_alive():
                raise RuntimeError(
                    f"fake Bot API on port {api.port} did not stop within {THREAD_STOP_TIMEOUT_SECONDS} s; "
                    "its thread is left running"
                )

    def _notify(self) -> None:
        """Wake long-polling getUpdates calls and webhook delivery (safe from any thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake()
        else:
            loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    async def _wait_for_change(self, timeout: float) -> None:
        assert self._changed is not None
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, timeout)):
                await changed.wait()

    # ------------------------------------------------------------------ chats and updates

    def _user(self, user_id: int, first_name: str, language_code: str | None, username: str | None = None) -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if language_code:
            user["language_code"] = language_code
        if username:
            user["username"] = username
        return user

    def _chat(
        self, chat_id: int, first_name: str = "Owner", chat_type: str | None = None, title: str | None = None
    ) -> dict[str, Any]:
        with self._lock:
            chat = self._chats.get(chat_id)
            if chat is None:
                kind = chat_type or ("private" if chat_id > 0 else "supergroup")
                chat = {"id": chat_id, "type": kind}
                if kind == "private":
                    chat["first_name"] = first_name
                else:
                    chat["title"] = title or f"Group {chat_id}"
                self._chats[chat_id] = chat
            return dict(chat)

    def add_private_chat(self, chat_id: int, first_name: str = "Owner") -> None:
        """Declare a private chat the bot may write to, without the user sending an update."""
        if chat_id <= 0:
            raise ValueError(f"private chat ids are positive, got {chat_id}")
        self._chat(chat_id, first_name=first_name, chat_type="private")

    def add_group(self, chat_id: int, title: str = "SPIN staff") -> None:
        """Declare a group chat (negative id), e.g. the staff group for human handoff."""
        if chat_id >= 0:
            raise ValueError(f"group chat ids are negative, got {chat_id}")
        self._chat(chat_id, chat_type="supergroup", title=title)

    def _new_message_id(self, chat_id: int) -> int:
        with self._lock:
            return next(self._message_ids[chat_id])

    def _store_message(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._messages[(message["chat"]["id"], message["message_id"])] = message

    def message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """Return a stored message (injected or sent by the bot), or None."""
        with self._lock:
            return self._messages.get((chat_id, message_id))

    def inject_update(self, update: dict[str, Any]) -> int:
        """Queue a raw Update object (``update_id`` is added when missing); return its id."""
        with self._lock:
            if "update_id" not in update:
                update = {"update_id": next(self._update_ids), **update}
            self._updates.append(_PendingUpdate(update=update, injected_at=time.monotonic()))
        self._notify()
        return int(update["update_id"])

    def build_message(
        self,
        chat_id: int,
        *,
        text: str | None = None,
        user_id: int | None = None,
        first_name: str = "Owner",
        language_code: str | None = "en",
        reply_to_message_id: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Build and store a user's Message object without queueing an update."""
        chat = self._chat(chat_id, first_name=first_name)
        sender = self._user(user_id if user_id is not None else chat_id, first_name, language_code)
        message: dict[str, Any] = {
            "message_id": self._new_message_id(chat_id),
            "from": sender,
            "chat": chat,
            "date": int(time.time()),
        }
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                command = text.split()[0]
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_length(command)}]
        if reply_to_message_id is not None:
            replied = self.message(chat_id, reply_to_message_id)
            if replied is None:
                raise ValueError(f"chat {chat_id} has no message {reply_to_message_id} to reply to")
            message["reply_to_message"] = replied
        if extra:
            message.update(extra)
        self._store_message(message)
        return message

    def inject_message(self, chat_id: int, text: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Queue a text message from a user (``chat_id`` doubles as user id in private chats).

        Keyword arguments are those of :meth:`build_message`; a text starting with ``/``
        carries a ``bot_command`` entity like Telegram's. Returns the Message object.
        """
        message = self.build_message(chat_id, text=text, **kwargs)
        self.inject_update({"message": message})
        return message

    def inject_sticker(self, chat_id: int, **kwargs: Any) -> dict[str, Any]:
        """Queue a sticker message."""
        sticker = {
            "file_id": f"sticker-{chat_id}",
            "file_unique_id": f"s{chat_id}",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "👍",
        }
        return self.inject_message(chat_id, extra={"sticker": sticker}, **kwargs)

    def inject_photo(self, chat_id: int, caption: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Queue a photo message, optionally with a caption."""
        extra: dict[str, Any] = {
            "photo": [{"file_id": f"photo-{chat_id}", "file_unique_id": f"p{chat_id}", "width": 640, "height": 480}]
        }
        if caption is not None:
            extra["caption"] = caption
        return self.inject_message(chat_id, extra=extra, **kwargs)

    def inject_voice(self, chat_id: int, **kwargs: Any) -> dict[str, Any]:
        """Queue a voice message."""
        voice = {"file_id": f"voice-{chat_id}", "file_unique_id": f"v{chat_id}", "duration": 3, "mime_type": "audio/ogg"}
        return self.inject_message(chat_id, extra={"voice": voice}, **kwargs)

    def inject_document(self, chat_id: int, file_name: str = "price-list.pdf", **kwargs: Any) -> dict[str, Any]:
        """Queue a document message."""
        document = {
            "file_id": f"doc-{chat_id}",
            "file_unique_id": f"d{chat_id}",
            "file_name": file_name,
            "mime_type": "application/pdf",
        }
        return self.inject_message(chat_id, extra={"document": document}, **kwargs)

    def inject_location(
        self, chat_id: int, latitude: float = 21.0278, longitude: float = 105.8342, **kwargs: Any
    ) -> dict[str, Any]:
        """Queue a location message (default: Hanoi)."""
        return self.inject_message(chat_id, extra={"location": {"latitude": latitude, "longitude": longitude}}, **kwargs)

    def inject_edited_message(self, chat_id: int, message_id: int, text: str) -> dict[str, Any]:
        """Queue an ``edited_message`` update for a message the user sent before."""
        original = self.message(chat_id, message_id)
        if original is None:
            raise ValueError(f"chat {chat_id} has no message {message_id} to edit")
        edited = {**original, "text": text, "edit_date": int(time.time())}
        self._store_message(edited)
        self.inject_update({"edited_message": edited})
        return edited

    def inject_callback_query(
        self,
        chat_id: int,
        data: str,
        *,
        message_id: int | None = None,
        user_id: int | None = None,
        first_name: str = "Owner",
        language_code: str | None = "en",
    ) -> str:
        """Queue a button press on a bot message (default: the bot's latest in the chat).

        Returns the callback query id, to find the matching answerCallbackQuery.
        """
        if message_id is None:
            bot_messages = [m for m in self.sent_messages(chat_id) if m.get("from", {}).get("id") == BOT_USER_ID]
            if not bot_messages:
                raise ValueError(f"the bot has sent nothing to chat {chat_id} to press a button on")
            message = bot_messages[-1]
        else:
            found = self.message(chat_id, message_id)
            if found is None:
                raise ValueError(f"chat {chat_id} has no message {message_id}")
            message = found
        query_id = f"cbq-{next(self._callback_ids)}"
        sender = self._user(user_id if user_id is not None else chat_id, first_name, language_code)
        self.inject_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": sender,
                    "message": message,
                    "chat_instance": f"ci-{chat_id}",
                    "data": data,
                }
            }
        )
        return query_id

    def press_button(self, chat_id: int, title: str, *, language_code: str | None = "en") -> str:
        """Press the inline button titled ``title`` on the bot's latest message that has it."""
        for message in reversed(self.sent_messages(chat_id)):
            for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
                for button in row:
                    if button.get("text") == title and "callback_data" in button:
                        return self.inject_callback_query(
                            chat_id, button["callback_data"], message_id=message["message_id"], language_code=language_code
                        )
        raise ValueError(f"no button titled {title!r} in chat {chat_id}")

    # ------------------------------------------------------------------ failures

    def fail_next(
        self,
        method: str,
        count: int = 1,
        *,
        error_code: int = 429,
        retry_after: int | None = None,
        description: str | None = None,
        chat_id: int | None = None,
    ) -> None:
        """Make the next ``count`` calls of ``method`` (for ``chat_id`` only, when given) fail.

        429 answers carry ``parameters.retry_after`` (default 1 s); 403 defaults to
        "Forbidden: bot was blocked by the user".
        """
        if error_code == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            description = {
                429: f"Too Many Requests: retry after {retry_after}",
                403: "Forbidden: bot was blocked by the user",
                400: "Bad Request: can't parse entities: Unsupported start tag",
            }.get(error_code, f"Error {error_code}")
        with self._lock:
            self._failures.append(_Failure(method, error_code, description, retry_after, chat_id, count))

    def block_chat(self, chat_id: int) -> None:
        """Answer 403 "bot was blocked by the user" to every send to ``chat_id``."""
        with self._lock:
            self._blocked_chats.add(chat_id)

    def unblock_chat(self, chat_id: int) -> None:
        """Undo :meth:`block_chat`."""
        with self._lock:
            self._blocked_chats.discard(chat_id)

    def _take_failure(self, method: str, params: dict[str, Any]) -> ApiError | None:
        chat_id = params.get("chat_id")
        with self._lock:
            if method in SEND_METHODS and chat_id in self._blocked_chats:
                return ApiError(403, "Forbidden: bot was blocked by the user")
            for failure in self._failures:
                if failure.method == method and failure.remaining > 0 and failure.chat_id in (None, chat_id):
                    failure.remaining -= 1
                    parameters = {"retry_after": failure.retry_after} if failure.retry_after is not None else None
                    return ApiError(failure.error_code, failure.description, parameters)
        return None

    def _check_rate_limit(self, method: str) -> ApiError | None:
        if self.rate_limit_per_second is None or method not in SEND_METHODS:
            return None
        now = time.monotonic()
        with self._lock:
            while self._send_times and now - self._send_times[0] >= 1.0:
                self._send_times.popleft()
            if len(self._send_times) >= self.rate_limit_per_second:
                return ApiError(429, "Too Many Requests: retry after 1", {"retry_after": 1})
            self._send_times.append(now)
        return None

    # ------------------------------------------------------------------ inspection

    def requests(self, method: str | None = None, *, chat_id: int | None = None) -> list[RecordedRequest]:
        """Return recorded calls, oldest first, optionally of one method and one chat."""
        with self._lock:
            return [
                request
                for request in self._requests
                if (method is None or request.method == method) and (chat_id is None or request.chat_id == chat_id)
            ]

    def successful(self, method: str | None = None, *, chat_id: int | None = None) -> list[RecordedRequest]:
        """Return recorded calls that got a 200 answer."""
        return [request for request in self.requests(method, chat_id=chat_id) if request.status == 200]

    def sent_messages(self, chat_id: int) -> list[dict[str, Any]]:
        """Return every stored message of one chat (the user's and the bot's), in id order."""
        with self._lock:
            messages = [message for (chat, _id), message in self._messages.items() if chat == chat_id]
        return sorted(messages, key=lambda message: message["message_id"])

    def bot_messages(self, chat_id: int) -> list[dict[str, Any]]:
        """Return the messages the bot sent to one chat, in order."""
        return [message for message in self.sent_messages(chat_id) if message.get("from", {}).get("id") == BOT_USER_ID]

    def delivered_updates(self) -> list[tuple[dict[str, Any], float, float]]:
        """Return (update, injected_at, delivered_at) for updates the bot has fetched.

        Times are ``time.monotonic()`` seconds, comparable with ``RecordedRequest.received_at``.
        """
        with self._lock:
            return [(pending.update, pending.injected_at, pending.delivered_at or 0.0) for pending in self._delivered_updates]

    def pending_update_count(self) -> int:
        """Return how many injected updates the bot has not fetched yet."""
        with self._lock:
            return sum(1 for pending in self._updates if pending.delivered_at is None)

    def commands(self, language_code: str = "") -> list[dict[str, Any]]:
        """Return the commands set with setMyCommands for ``language_code`` ("" is the default)."""
        with self._lock:
            return list(self._commands.get(language_code, []))

    async def wait_for_requests(
        self,
        method: str,
        count: int = 1,
        *,
        chat_id: int | None = None,
        timeout: float = 10.0,
        predicate: Callable[[RecordedRequest], bool] | None = None,
        successful_only: bool = True,
    ) -> list[RecordedRequest]:
        """Wait until at least ``count`` matching calls arrived; raise TimeoutError naming them."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.successful(method, chat_id=chat_id) if successful_only else self.requests(method, chat_id=chat_id)
            if predicate is not None:
                found = [request for request in found if predicate(request)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"expected {count} {method} call(s) for chat {chat_id}, got {len(found)} within {timeout} s")
            await asyncio.sleep(0.02)

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        received_at = time.monotonic()
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        try:
            params, files = await self._read_parameters(request)
        except ValueError as decode_error:
            return web.json_response({"ok": False, "error_code": 400, "description": f"Bad Request: {decode_error}"}, status=400)

        recorded = RecordedRequest(method=method, params=params, files=files, received_at=received_at)
        with self._lock:
            self._requests.append(recorded)

        if self.latency_seconds:
            await asyncio.sleep(self.latency_seconds)
        try:
            forced = self._take_failure(method, params) or self._check_rate_limit(method)
            if forced is not None:
                raise forced
            handler = getattr(self, f"_api_{method}", None)
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            result = await handler(params, files)
        except ApiError as api_error:
            body: dict[str, Any] = {"ok": False, "error_code": api_error.error_code, "description": api_error.description}
            if api_error.parameters:
                body["parameters"] = api_error.parameters
            recorded.status = api_error.error_code
            recorded.response = body
            return web.json_response(body, status=api_error.error_code)
        recorded.response = result
        return web.json_response({"ok": True, "result": result})

    async def _read_parameters(self, request: web.Request) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
        raw: dict[str, str] = dict(request.query)
        files: dict[str, UploadedFile] = {}
        if request.method == "POST" and request.can_read_body:
            content_type = request.content_type
            if content_type == "application/json":
                body = await request.json()
                if not isinstance(body, dict):
                    raise ValueError("JSON body must be an object")
                return body, files
            if content_type.startswith("multipart/"):
                reader = await request.multipart()
                async for part in reader:
                    if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
                        continue
                    if part.filename is not None:
                        data = await part.read(decode=False)
                        files[part.name] = UploadedFile(part.filename, part.headers.get("Content-Type"), bytes(data))
                    else:
                        raw[part.name] = await part.text()
            else:
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, str):
                        raw[key] = value
        return {key: _decode_parameter(key, value) for key, value in raw.items()}, files

    # ------------------------------------------------------------------ methods

    async def _api_getMe(self, _params: dict[str, Any], _files: dict[str, UploadedFile]) -> dict[str, Any]:
        return {**self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}

    async def _api_logOut(self, _params: dict[str, Any], _files: dict[str, UploadedFile]) -> bool:
        return True

    async def _api_close(self, _params: dict[str, Any], _files: dict[str, UploadedFile]) -> bool:
        return True

    async def _api_getUpdates(self, params: dict[str, Any], _files: dict[str, UploadedFile]) -> list[dict[str, Any]]:
        if self.webhook.get("url"):
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        limit = min(int(params.get("limit") or MAX_GETUPDATES_LIMIT), MAX_GETUPDATES_LIMIT)
        timeout = float(params.get("timeout") or 0)
        deadline = time.monotonic() + timeout
        assert self._changed is not None
        while True:
            batch = self._take_updates(offset, limit)
            if batch or self._stopping or time.monotonic() >= deadline:
                return batch
            await self._wait_for_change(deadline - time.monotonic())

    def _take_updates(self, offset: int, limit: int) -> list[dict[str, Any]]:
        now = time.monotonic()
        with self._lock:
            if offset:
                # Like Telegram: an offset confirms (and forgets) every earlier update.
                self._updates = [pending for pending in self._updates if pending.update["update_id"] >= offset]
            batch = self._updates[:limit]
            for pending in batch:
                if pending.delivered_at is None:
                    pending.delivered_at = now
                    self._delivered_updates.append(pending)
            return [pending.update for pending in batch]

    async def _api_setWebhook(self, params: dict[str, Any], _files: dict[str, UploadedFile]) -> bool:
        url = str(params.get("url") or "")
        secret = params.get("secret_token")
        if secret is not None and not SECRET_TOKEN_PATTERN.match(str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if url:
            host = urlsplit(url).hostname
            if host != LOOPBACK:
                # The fake delivers updates itself, and only to loopback addresses.
                raise ApiError(400, f"Bad Request: bad webhook: the fake Bot API delivers only to {LOOPBACK}, got {host}")
        with self._lock:
            self.webhook = {"url": url, "secret_token": secret}
            if params.get("drop_pending_updates"):
                self._updates.clear()
        self._notify()
        return True

    async def _api_deleteWebhook(self, params: dict[str, Any], _files: dict[str, UploadedFile]) -> bool:
        with self._lock:
            self.webhook = {}
            if params.get("drop_pending_updates"):
                self._updates.clear()
        return True

    async def _api_getWebhookInfo(self, _params: dict[str, Any], _files: dict[str, UploadedFile]) -> dict[str, Any]:
        return {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": self.pending_update_count(),
        }

    async def _deliver_webhooks(self) -> None:
        """POST queued updates to the webhook URL in order, like Telegram, while one is set."""
        assert self._changed is not None
        async with aiohttp.ClientSession() as session:
            while not self._stopping:
                url = self.webhook.get("url")
                pending = None
                if url:
                    with self._lock:
                        pending = self._updates[0] if self._updates else None
                if pending is None:
                    await self._wait_for_change(0.5)
                    continue
                headers = {"Content-Type": "application/json"}
                secret = self.webhook.get("secret_token")
                if secret:
                    headers["X-Telegram-Bot-Api-Secret-Token"] = str(secret)
                with self._lock:
                    if pending.delivered_at is None:
                        pending.delivered_at = time.monotonic()
                        self._delivered_updates.append(pending)
                try:
                    async with session.post(
                        str(url), json=pending.update, headers=headers, timeout=aiohttp.ClientTimeout(total=30)
                    ) as response:
                        status = response.status
                except (aiohttp.ClientError, TimeoutError) as error:
                    logger.info("webhook delivery of update %s failed: %s", pending.update["update_id"], error)
                    status = 0
                with self._lock:
                    self.webhook_deliveries.append((pending.update["update_id"], status))
                    if status == 200 and self._updates and self._updates[0] is pending:
                        self._updates.pop(0)
                if status != 200:
                    await asyncio.sleep(0.5)

    async def _api_setMyCommands(self, params: dict[str, Any], _files: dict[str, UploadedFile]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or not commands:
            raise ApiError(400, "Bad Request: commands must be a non-empty array")
        for command in commands:
            name = str(command.get("command", ""))
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise ApiError(400, f"Bad Request: BOT_COMMAND_INVALID: {name!r}")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise ApiError(400, f"Bad Request: BOT_COMMAND_DESCRIPTION_INVALID for {name!r}")
        with self._lock:
            self._commands[str(params.get("language_code") or "")] = commands
        return True

    async def _api_getMyCommands(self, params: dict[str, Any], _files: dict[str, UploadedFile]) -> list[dict[str, Any]]:
        return self.commands(str(params.get("language_code") or ""))

    async def _api_deleteMyCommands(self, params: dict[str, Any], _files: dict[str, UploadedFile]) -> bool:
        with self._lock:
            self._commands.pop(str(params.get("language_code") or ""), None)
        return True

    async def _api_answerCallbackQuery(self, params: dict[str, Any], _files: dict[str, UploadedFile]) -> bool:
        if not params.get("callback_query_id"):
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        return True

    async def _api_sendChatAction(self, params: dict[str, Any], _files: dict[str, UploadedFile]) -> bool:
        self._target_chat(params)
        return True

    def _target_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int):
            raise ApiError(400, "Bad Request: chat not found")
        with self._lock:
            chat = self._chats.get(chat_id)
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        return dict(chat)

    def _check_reply_markup(self, params: dict[str, Any]) -> dict[str, Any] | None:
        markup = params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        keyboard = markup.get("inline_keyboard")
        if keyboard is None:
            return markup
        buttons = [button for row in keyboard for button in row]
        if len(buttons) > MAX_INLINE_BUTTONS:
            raise ApiError(400, "Bad Request: reply markup is too long")
        for button in buttons:
            if not str(button.get("text", "")).strip():
                raise ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup

    def _plain_text(self, text: str, parse_mode: Any) -> str:
        if parse_mode == "HTML":
            return parse_html(text)
        return text

    def _bot_message(self, chat: dict[str, Any], params: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": self._new_message_id(chat["id"]),
            "from": self.bot_user,
            "chat": chat,
            "date": int(time.time()),
            **content,
        }
        reply_to = params.get("reply_to_message_id") or (params.get("reply_parameters") or {}).get("message_id")
        if reply_to:
            replied = self.message(chat["id"], int(reply_to))
            if replied is not None:
                message["reply_to_message"] = replied
        markup = self._check_reply_markup(params)
        if markup is not None and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self._store_message(message)
        return message

    async def _api_sendMessage(self, params: dict[str, Any], _files: dict[str, UploadedFile]) -> dict[str, Any]:
        chat = self._target_chat(params)
        text = str(params.get("text") or "")
        plain = self._plain_text(text, params.get("parse_mode"))
        if not plain.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_length(plain) > MAX_TEXT_UTF16_UNITS:
            raise ApiError(400, "Bad Request: message is too long")
        self._check_reply_markup(params)
        return self._bot_message(chat, params, {"text": plain})

    def _caption(self, params: dict[str, Any]) -> dict[str, Any]:
        caption = params.get("caption")
        if not caption:
            return {}
        plain = self._plain_text(str(caption), params.get("parse_mode"))
        if utf16_length(plain) > MAX_CAPTION_UTF16_UNITS:
            raise ApiError(400, "Bad Request: message caption is too long")
        return {"caption": plain}

    def _file_reference(
        self, field: str, params: dict[str, Any], files: dict[str, UploadedFile]
    ) -> tuple[str, UploadedFile | None]:
        value = params.get(field)
        if isinstance(value, str) and value.startswith("attach://"):
            upload = files.get(value.removeprefix("attach://"))
            if upload is None:
                raise ApiError(400, f"Bad Request: file {value} is missing from the multipart body")
            return value, upload
        if field in files:
            return "upload", files[field]
        if isinstance(value, str) and value:
            return value, None
        raise ApiError(400, f"Bad Request: there is no {field} in the request")

    async def _api_sendPhoto(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> dict[str, Any]:
        chat = self._target_chat(params)
        reference, upload = self._file_reference("photo", params, files)
        size = len(upload.data) if upload else 0
        photo = [
            {
                "file_id": f"photo-{len(self._requests)}",
                "file_unique_id": f"up{len(self._requests)}",
                "width": 800,
                "height": 600,
                "file_size": size,
            }
        ]
        content: dict[str, Any] = {"photo": photo, **self._caption(params)}
        if upload is None:
            content["_source"] = reference
        return self._bot_message(chat, params, content)

    async def _api_sendDocument(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> dict[str, Any]:
        chat = self._target_chat(params)
        _reference, upload = self._file_reference("document", params, files)
        document = {
            "file_id": f"document-{len(self._requests)}",
            "file_unique_id": f"ud{len(self._requests)}",
            "file_name": upload.filename if upload else None,
            "mime_type": upload.content_type if upload else None,
            "file_size": len(upload.data) if upload else 0,
        }
        return self._bot_message(chat, params, {"document": document, **self._caption(params)})

    def _source_message(self, params: dict[str, Any]) -> dict[str, Any]:
        from_chat_id = params.get("from_chat_id")
        message_id = params.get("message_id")
        if not isinstance(from_chat_id, int) or not isinstance(message_id, int):
            raise ApiError(400, "Bad Request: message to copy not found")
        source = self.message(from_chat_id, message_id)
        if source is None:
            raise ApiError(400, "Bad Request: message to forward not found")
        return source

    async def _api_forwardMessage(self, params: dict[str, Any], _files: dict[str, UploadedFile]) -> dict[str, Any]:
        chat = self._target_chat(params)
        source = self._source_message(params)
        content = {
            key: value
            for key, value in source.items()
            if key not in ("message_id", "from", "chat", "date", "reply_to_message", "reply_markup")
        }
        content["forward_origin"] = {"type": "user", "date": source["date"], "sender_user": source.get("from")}
        return self._bot_message(chat, params, content)

    async def _api_copyMessage(self, params: dict[str, Any], _files: dict[str, UploadedFile]) -> dict[str, Any]:
        chat = self._target_chat(params)
        source = self._source_message(params)
        content = {
            key: value
            for key, value in source.items()
            if key not in ("message_id", "from", "chat", "date", "reply_to_message", "reply_markup", "forward_origin", "entities")
        }
        copied = self._bot_message(chat, params, content)
        return {"message_id": copied["message_id"]}

    async def _api_editMessageText(self, params: dict[str, Any], _files: dict[str, UploadedFile]) -> dict[str, Any]:
        chat = self._target_chat(params)
        message = self.message(chat["id"], int(params.get("message_id") or 0))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        plain = self._plain_text(str(params.get("text") or ""), params.get("parse_mode"))
        if utf16_length(plain) > MAX_TEXT_UTF16_UNITS:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        edited = {**message, "text": plain, "edit_date": int(time.time())}
        markup = self._check_reply_markup(params)
        if markup is not None:
            edited["reply_markup"] = markup
        self._store_message(edited)
        return edited

    async def _api_editMessageReplyMarkup(self, params: dict[str, Any], _files: dict[str, UploadedFile]) -> dict[str, Any]:
        chat = self._target_chat(params)
        message = self.message(chat["id"], int(params.get("message_id") or 0))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        edited = {key: value for key, value in message.items() if key != "reply_markup"}
        markup = self._check_reply_markup(params)
        if markup is not None:
            edited["reply_markup"] = markup
        self._store_message(edited)
        return edited


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks still pending on a stopped ``loop``, then close it."""
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


def _decode_parameter(name: str, value: str) -> Any:
    """Decode one form field the way Telegram does: JSON for non-string parameters."""
    if name in STRING_PARAMETERS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value
