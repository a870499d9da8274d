"""Update handlers: messages, commands, button presses, non-text messages, staff and admins."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from telegram import Message, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler, ContextTypes, MessageHandler, filters

from bot.channels.base import IncomingMessage, OutgoingMessage
from bot.channels.telegram import store
from bot.channels.telegram.channel import TelegramChannel
from bot.channels.telegram.commands import (
    COMMAND_PAYLOADS,
    GREET_PAYLOAD,
    HANDOFF_BYPASS_PAYLOADS,
    LANGUAGE_PAYLOAD,
    STATS_COMMAND,
    UNKNOWN_COMMAND_PAYLOAD,
    parse_command,
)
from bot.channels.telegram.handoff import Handoff
from bot.channels.telegram.keyboard import menu_buttons, resolve_token, token_from_callback_data
from bot.conversation import Conversation
from bot.i18n import gettext, normalize_language
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.channels.telegram.webhook import WebhookServer

logger = logging.getLogger(__name__)

#: Update types requested from Telegram.
ALLOWED_UPDATES = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY]

#: Handoff values in ``OutgoingMessage.handoff``.
HANDOFF_START = "start"
HANDOFF_END = "end"


class ChatLocks:
    """One lock per chat, so updates of one chat are handled in order while chats run in parallel."""

    def __init__(self) -> None:
        self._locks: dict[int, asyncio.Lock] = {}
        self._holders: collections.Counter[int] = collections.Counter()

    @contextlib.asynccontextmanager
    async def hold(self, chat_id: int) -> AsyncIterator[None]:
        lock = self._locks.setdefault(chat_id, asyncio.Lock())
        self._holders[chat_id] += 1
        try:
            async with lock:
                yield
        finally:
            self._holders[chat_id] -= 1
            if self._holders[chat_id] <= 0:
                del self._holders[chat_id]
                self._locks.pop(chat_id, None)

    def __len__(self) -> int:
        return len(self._locks)


class TelegramBot:
    """Routes Telegram updates to Rasa and renders the replies."""

    def __init__(self, settings: Settings, channel: TelegramChannel, conversation: Conversation) -> None:
        self.settings = settings
        self.channel = channel
        self.conversation = conversation
        self.handoff = Handoff(channel, conversation, settings.telegram_staff_chat_id, settings.telegram_staff_language)
        self.locks = ChatLocks()
        #: The webhook server when running by webhook (set by ``running_bot``).
        self.webhook_server: WebhookServer | None = None

    @property
    def engine(self) -> Engine:
        return self.channel.engine

    def register(self, application: Application) -> None:  # type: ignore[type-arg]
        """Add the handlers to ``application``; staff-group messages come first."""
        staff_chat_id = self.settings.telegram_staff_chat_id
        if staff_chat_id is not None:
            application.add_handler(
                MessageHandler(filters.Chat(staff_chat_id) & filters.UpdateType.MESSAGE, self.on_staff_message)
            )
        application.add_handler(CallbackQueryHandler(self.on_callback_query))
        application.add_handler(MessageHandler(filters.ChatType.PRIVATE, self.on_private_message))
        application.add_error_handler(self.on_error)

    # ------------------------------------------------------------------ private messages

    async def on_private_message(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        """Handle a message or an edited message in a private chat."""
        chat = update.effective_chat
        if chat is None:
            return
        async with self.locks.hold(chat.id):
            edited = update.edited_message
            if edited is not None:
                state = await asyncio.to_thread(store.load_user, self.engine, str(chat.id))
                if state is not None and state.handoff_active:
                    await self.handoff.forward_from_user(chat.id, state.id, edited, self._language(state, update))
                else:
                    await self._reply_non_text(update, chat.id, state)
                return
            message = update.message
            if message is None:
                return
            self.handoff.recent.add(chat.id, message.message_id)
            state = await asyncio.to_thread(store.user_wrote, self.engine, str(chat.id))
            command = parse_command(message.text, self.channel.bot.username) if message.text is not None else None

            if command == STATS_COMMAND:
                await self._stats(message, state)
                return
            if message.text is None:
                if state is not None and state.handoff_active:
                    await self.handoff.forward_from_user(chat.id, state.id, message, self._language(state, update))
                else:
                    await self._reply_non_text(update, chat.id, state)
                return

            payload = COMMAND_PAYLOADS.get(command, UNKNOWN_COMMAND_PAYLOAD) if command is not None else message.text
            if state is not None and state.handoff_active and payload not in HANDOFF_BYPASS_PAYLOADS:
                await self.handoff.forward_from_user(chat.id, state.id, message, self._language(state, update))
                return
            await self._converse(update, chat.id, payload, start=command == "start")

    async def _converse(self, update: Update, chat_id: int, payload: str, *, start: bool = False) -> None:
        """Send ``payload`` to Rasa as the user's message and deliver the replies."""
        user = update.effective_user
        ui_language = user.language_code if user is not None else None
        message_id = update.effective_message.message_id if update.effective_message is not None else None
        incoming = IncomingMessage(
            channel=store.CHANNEL,
            external_id=str(chat_id),
            text=payload,
            ui_language=ui_language,
            message_id=str(message_id) if message_id is not None else None,
            handoff_available=self.settings.telegram_staff_chat_id is not None,
        )
        replies = await self.conversation.handle(incoming)
        if start and payload == GREET_PAYLOAD:
            state = await asyncio.to_thread(store.load_user, self.engine, str(chat_id))
            if state is None or not state.language_confirmed:
                replies += await self.conversation.handle(dataclasses.replace(incoming, text=LANGUAGE_PAYLOAD))
        language = normalize_language(ui_language)
        await self.channel.reply(chat_id, replies, language=language)

        handoff = next((reply.handoff for reply in replies if reply.handoff), None)
        reply_language = next((reply.language for reply in replies if reply.language), None) or language
        if handoff == HANDOFF_START:
            await self.handoff.start(chat_id, user, reply_language)
        elif handoff == HANDOFF_END:
            await self.handoff.notify_ended_by_user(chat_id)

    @staticmethod
    def _language(state: store.UserState | None, update: Update) -> str:
        """Return the stored language, else the Telegram client's, else the default."""
        if state is not None and state.language:
            return normalize_language(state.language)
        user = update.effective_user
        return normalize_language(user.language_code if user is not None else None)

    async def _reply_non_text(self, update: Update, chat_id: int, state: store.UserState | None = None) -> None:
        if state is None:
            state = await asyncio.to_thread(store.load_user, self.engine, str(chat_id))
        language = self._language(state, update)
        kind = _message_kind(update.effective_message)
        logger.info("chat %s sent a %s; answering that only text is read", chat_id, kind)
        reply = OutgoingMessage(text=gettext("core.non_text", language), language=language, buttons=menu_buttons(language))
        await self.channel.reply(chat_id, [reply])

    # ------------------------------------------------------------------ buttons

    async def on_callback_query(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        """Answer a button press, then send its stored payload to Rasa as the user's message."""
        query = update.callback_query
        if query is None:
            return
        chat_id = query.message.chat.id if query.message is not None else query.from_user.id
        token = token_from_callback_data(query.data)
        payload = await asyncio.to_thread(resolve_token, self.engine, token) if token else None
        state = await asyncio.to_thread(store.user_wrote, self.engine, str(chat_id))
        language = self._language(state, update)
        paused = payload is not None and state is not None and state.handoff_active and payload not in HANDOFF_BYPASS_PAYLOADS
        try:
            await query.answer(gettext("telegram.handoff.button_paused", language) if paused else None)
        except TelegramError as error:
            # A query older than about 15 s cannot be answered; the press is still handled.
            logger.info("cannot answer callback query %s of chat %s: %s", query.id, chat_id, error)
        if paused:
            return

        async with self.locks.hold(chat_id):
            if payload is None:
                logger.info("chat %s pressed a button with an unknown or expired token %r", chat_id, token)
                reply = OutgoingMessage(
                    text=gettext("core.unknown_button", language), language=language, buttons=menu_buttons(language)
                )
                await self.channel.reply(chat_id, [reply])
                return
            await self._converse(update, chat_id, payload)

    # ------------------------------------------------------------------ staff and admins

    async def on_staff_message(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        """Handle a message in the staff group: /stats, a reply to a user, or /end."""
        message = update.message
        if message is None:
            return
        if message.text is not None and parse_command(message.text, self.channel.bot.username) == STATS_COMMAND:
            # The whole staff group reads the report, so it is in the staff language.
            await self._stats(message, None, language=self.handoff.staff_language)
            return
        await self.handoff.on_staff_message(message, self.channel.bot.username)

    async def _stats(self, message: Message, state: store.UserState | None, *, language: str | None = None) -> None:
        """Send the /stats report to an admin, in ``language`` or else the sender's language; reject other senders."""
        sender = message.from_user
        if language is None:
            language = normalize_language(
                state.language if state is not None and state.language else sender.language_code if sender else None
            )
        if sender is None or sender.id not in self.settings.telegram_admin_ids:
            logger.info("user %s asked for /stats but is not an admin", sender.id if sender else None)
            text = gettext("telegram.admin_only", language)
            buttons = menu_buttons(language) if message.chat.type == ChatType.PRIVATE else []
            await self.channel.reply(message.chat.id, [OutgoingMessage(text=text, language=language, buttons=buttons)])
            return
        stats = await asyncio.to_thread(store.collect_stats, self.engine, self.settings.default_timezone)
        lines = [f"• {channel} / {code}: {count}" for channel, code, count in stats.users_by_channel_language]
        text = gettext(
            "telegram.stats.report",
            language,
            users="\n".join(lines) or gettext("telegram.stats.none", language),
            active=stats.active_users,
            blocked=stats.blocked_users,
            questions_today=stats.questions_today,
            declined_today=stats.declined_today,
            declined_total=stats.declined_total,
            handoffs=stats.active_handoffs,
        )
        await self.channel.reply(message.chat.id, [OutgoingMessage(text=text, language=language)])

    # ------------------------------------------------------------------ errors

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log an error a handler raised and apologise to the user in a private chat."""
        update_id = update.update_id if isinstance(update, Update) else None
        logger.error("handling update %s failed", update_id, exc_info=context.error)
        if not isinstance(update, Update) or update.effective_chat is None or update.effective_chat.type != ChatType.PRIVATE:
            return
        language = self._language(None, update)
        with contextlib.suppress(TelegramError):
            await self.channel.send_text(update.effective_chat.id, gettext("core.error", language))


def _message_kind(message: Message | None) -> str:
    """Return what a non-text message carries (sticker, photo, ...), for the log."""
    if message is None:
        return "update"
    if message.edit_date is not None:
        return "edited message"
    for kind in (
        "sticker",
        "photo",
        "voice",
        "video",
        "video_note",
        "audio",
        "document",
        "location",
        "contact",
        "poll",
        "animation",
    ):
        if getattr(message, kind, None):
            return kind
    return "non-text message"
