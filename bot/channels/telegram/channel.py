"""Sending replies to Telegram: rendering, button tokens, rate limits and blocked users."""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from sqlalchemy import Engine
from telegram import Bot, InlineKeyboardMarkup, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
from telegram.ext import AIORateLimiter, ExtBot

from bot.channels.base import Channel, DeliveryError, OutgoingMessage
from bot.channels.telegram import store
from bot.channels.telegram.keyboard import TOKEN_REFRESH_AFTER, build_keyboard, is_url, store_payloads, token_for
from bot.channels.telegram.limits import MAX_GROUP_MESSAGES_PER_MINUTE, MAX_MESSAGES_PER_SECOND
from bot.channels.telegram.render import Part, plan_reply
from bot.channels.telegram.text import escape_html
from bot.i18n import normalize_language
from bot.settings import PROJECT_ROOT, Settings
from bot.storage.db import create_db_engine

logger = logging.getLogger(__name__)

#: ``Bot.send_photo`` or ``Bot.send_document``.
SendMedia = Callable[..., Awaitable[Message]]

#: How often a request that got 429 is retried (after ``retry_after``) before giving up.
#: python-telegram-bot's AIORateLimiter defaults to 0, which never retries.
RATE_LIMIT_MAX_RETRIES = 3

#: A payload stored this recently is not written again (well inside TOKEN_REFRESH_AFTER).
TOKEN_CACHE_SECONDS = min(3600.0, TOKEN_REFRESH_AFTER.total_seconds() / 2)

#: Payloads remembered as stored; the least recently used are forgotten first.
TOKEN_CACHE_SIZE = 50_000

#: Telegram's description of an HTML parse failure (400), in lower case.
ENTITY_ERROR = "can't parse entities"

#: Telegram's description when a chat does not exist or the bot was never in it, in lower case.
CHAT_NOT_FOUND = "chat not found"


def make_rate_limiter() -> AIORateLimiter:
    """Return a limiter that keeps to Telegram's rates and waits out every 429's ``retry_after``."""
    return AIORateLimiter(
        overall_max_rate=MAX_MESSAGES_PER_SECOND,
        overall_time_period=1,
        group_max_rate=MAX_GROUP_MESSAGES_PER_MINUTE,
        group_time_period=60,
        max_retries=RATE_LIMIT_MAX_RETRIES,
    )


def chat_id_of(external_id: str) -> int:
    """Return the Telegram chat id stored as ``users.external_id``; raise DeliveryError when invalid."""
    try:
        return int(external_id)
    except ValueError:
        raise DeliveryError(f"Telegram external id {external_id!r} is not a numeric chat id", permanent=True) from None


def _is_entity_error(error: BadRequest) -> bool:
    return ENTITY_ERROR in error.message.lower()


def _local_file(path_text: str) -> Path | None:
    """Return the local file named by a reply's image or document, or None for a URL."""
    if path_text.startswith(("https://", "http://")):
        return None
    path = Path(path_text)
    return path if path.is_absolute() else PROJECT_ROOT / path


class TelegramChannel(Channel):
    """Delivers :class:`OutgoingMessage` replies through a python-telegram-bot ``Bot``.

    Used by the update handlers for replies and by the reminder scheduler through
    :meth:`send`. The bot should carry :func:`make_rate_limiter`, so a 429 is waited out
    rather than lost.
    """

    name = store.CHANNEL

    def __init__(self, bot: Bot, engine: Engine, *, owns_bot: bool = False) -> None:
        self.bot = bot
        self.engine = engine
        self._owns_bot = owns_bot
        # Payload -> when this channel last stored its token (monotonic seconds), so the
        # menu buttons of every reply do not cost a database write each time.
        self._stored_payloads: collections.OrderedDict[str, float] = collections.OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine | None = None) -> TelegramChannel:
        """Return a channel with its own rate-limited bot; use ``async with`` to start and stop it."""
        if not settings.telegram_bot_token:
            raise ValueError("TELEGRAM_BOT_TOKEN is empty: set it to the token BotFather gave you")
        bot = ExtBot(
            settings.telegram_bot_token,
            base_url=settings.telegram_base_url,
            base_file_url=settings.telegram_base_file_url,
            rate_limiter=make_rate_limiter(),
        )
        return cls(bot, engine or create_db_engine(settings.resolved_database_url), owns_bot=True)

    async def __aenter__(self) -> TelegramChannel:
        if self._owns_bot:
            await self.bot.initialize()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._owns_bot:
            await self.bot.shutdown()

    async def send(self, external_id: str, message: OutgoingMessage) -> None:
        """Send a scheduled message to one user.

        Raises :class:`DeliveryError`: permanent when the user blocked the bot (403, and
        the user is marked inactive) or the chat does not exist; temporary for network
        errors and for a 429 that persisted through the retries.
        """
        chat_id = chat_id_of(external_id)
        try:
            await self.deliver(chat_id, [message])
        except Forbidden as error:
            await asyncio.to_thread(store.mark_blocked, self.engine, external_id)
            raise DeliveryError(f"Telegram user {external_id} blocked the bot: {error.message}", permanent=True) from error
        except BadRequest as error:
            permanent = CHAT_NOT_FOUND in error.message.lower()
            raise DeliveryError(f"Telegram rejected a message to {external_id}: {error.message}", permanent=permanent) from error
        except RetryAfter as error:
            raise DeliveryError(f"Telegram rate limit persisted for {external_id}: {error.message}") from error
        except TelegramError as error:
            raise DeliveryError(f"sending to Telegram user {external_id} failed: {error.message}") from error

    async def reply(self, chat_id: int, replies: Sequence[OutgoingMessage], *, language: str | None = None) -> list[Message]:
        """Send replies to a user who just wrote; a 403 marks them inactive instead of raising."""
        try:
            return await self.deliver(chat_id, replies, language=language)
        except Forbidden as error:
            logger.info("chat %s blocked the bot while being answered: %s", chat_id, error.message)
            await asyncio.to_thread(store.mark_blocked, self.engine, str(chat_id))
            return []

    async def deliver(self, chat_id: int, replies: Sequence[OutgoingMessage], *, language: str | None = None) -> list[Message]:
        """Send every reply in order and return the sent messages; Telegram errors propagate."""
        sent: list[Message] = []
        for reply in replies:
            reply_language = normalize_language(reply.language or language)
            parts = plan_reply(reply, reply_language)
            payloads = [button.payload for part in parts for button in part.buttons]
            titles = {button.payload: button.title for part in parts for button in part.buttons}
            tokens = await self._tokens(payloads, titles)
            for part in parts:
                message = await self._send_part(chat_id, part, build_keyboard(part.buttons, tokens))
                if message is not None:
                    sent.append(message)
        return sent

    async def _tokens(self, payloads: list[str], titles: dict[str, str]) -> dict[str, str]:
        """Return payload -> token, writing to the database only payloads not stored lately."""
        now = time.monotonic()
        stale = [payload for payload in payloads if now - self._stored_payloads.get(payload, -math.inf) > TOKEN_CACHE_SECONDS]
        if stale:
            await asyncio.to_thread(store_payloads, self.engine, stale, titles)
            for payload in stale:
                self._stored_payloads[payload] = now
                self._stored_payloads.move_to_end(payload)
            while len(self._stored_payloads) > TOKEN_CACHE_SIZE:
                self._stored_payloads.popitem(last=False)
        return {payload: token_for(payload) for payload in payloads if not is_url(payload)}

    async def _send_part(self, chat_id: int, part: Part, markup: InlineKeyboardMarkup | None) -> Message | None:
        if part.kind == "text":
            return await self.send_text(chat_id, part.text, markup)
        assert part.media is not None
        path = _local_file(part.media)
        media: bytes | str = part.media
        filename = None
        if path is not None:
            try:
                media = await asyncio.to_thread(path.read_bytes)
            except OSError as error:
                logger.error("cannot read %s %s for chat %s: %s; sending the text without it", part.kind, path, chat_id, error)
                return await self.send_text(chat_id, part.text, markup) if part.text or markup else None
            filename = path.name
        if part.kind == "photo":
            return await self._send_media(self.bot.send_photo, chat_id, media, filename, part.text, markup, field="photo")
        return await self._send_media(self.bot.send_document, chat_id, media, filename, part.text, markup, field="document")

    async def send_text(self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None = None) -> Message:
        """Send plain ``text`` escaped for HTML; resend without parse mode if Telegram rejects the entities."""
        try:
            return await self.bot.send_message(chat_id, escape_html(text), parse_mode=ParseMode.HTML, reply_markup=markup)
        except BadRequest as error:
            if not _is_entity_error(error):
                raise
            logger.warning(
                "Telegram rejected the HTML of a message to chat %s (%s); resending as plain text", chat_id, error.message
            )
            return await self.bot.send_message(chat_id, text, reply_markup=markup)

    async def _send_media(
        self,
        send: SendMedia,
        chat_id: int,
        media: bytes | str,
        filename: str | None,
        caption: str,
        markup: InlineKeyboardMarkup | None,
        *,
        field: str,
    ) -> Message:
        kwargs = {"chat_id": chat_id, field: media, "filename": filename, "reply_markup": markup}
        try:
            if caption:
                return await send(caption=escape_html(caption), parse_mode=ParseMode.HTML, **kwargs)
            return await send(**kwargs)
        except BadRequest as error:
            if not caption or not _is_entity_error(error):
                raise
            logger.warning("Telegram rejected the HTML caption to chat %s (%s); resending as plain text", chat_id, error.message)
            return await send(caption=caption, **kwargs)
