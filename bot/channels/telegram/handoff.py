"""Human handoff through a Telegram staff group.

When a reply starts a handoff, the bot posts a header (user id, name, language) and the
user's recent messages into the staff group, and records each staff-group message in
``handoff_messages``. While ``users.handoff_active`` is set, the user's messages are
forwarded there instead of going to Rasa. A staff member answers by replying to any of
those messages; the bot copies the answer to the user. Replying ``/end`` hands the
user back to the assistant, as ``/endhuman`` does from the user's side.
"""

from __future__ import annotations

import asyncio
import collections
import logging

from telegram import Message, User
from telegram.error import Forbidden, TelegramError

from bot.channels.base import IncomingMessage, OutgoingMessage
from bot.channels.telegram import store
from bot.channels.telegram.channel import TelegramChannel
from bot.channels.telegram.commands import END_HANDOFF_PAYLOAD, STAFF_END_COMMAND, parse_command
from bot.channels.telegram.keyboard import menu_buttons
from bot.conversation import Conversation
from bot.i18n import gettext, normalize_language
from bot.settings import DEFAULT_LANGUAGE

logger = logging.getLogger(__name__)

#: How many of the user's latest messages go to staff when a handoff starts.
RECENT_MESSAGES_FOR_STAFF = 5

#: Chats whose recent message ids are kept in memory (least recently used are dropped).
MAX_REMEMBERED_CHATS = 10_000


class RecentMessages:
    """The latest message ids per chat, kept in memory only, to show staff the context."""

    def __init__(self, per_chat: int = RECENT_MESSAGES_FOR_STAFF, max_chats: int = MAX_REMEMBERED_CHATS) -> None:
        self._per_chat = per_chat
        self._max_chats = max_chats
        self._chats: collections.OrderedDict[int, collections.deque[int]] = collections.OrderedDict()

    def add(self, chat_id: int, message_id: int) -> None:
        messages = self._chats.pop(chat_id, None) or collections.deque(maxlen=self._per_chat)
        messages.append(message_id)
        self._chats[chat_id] = messages
        while len(self._chats) > self._max_chats:
            self._chats.popitem(last=False)

    def get(self, chat_id: int) -> list[int]:
        return list(self._chats.get(chat_id, ()))


class Handoff:
    """Moves messages between users and the staff group.

    The bot's own texts in the staff group are in ``staff_language`` (setting
    ``TELEGRAM_STAFF_LANGUAGE``). Users keep getting their own language.
    """

    def __init__(
        self,
        channel: TelegramChannel,
        conversation: Conversation,
        staff_chat_id: int | None,
        staff_language: str = DEFAULT_LANGUAGE,
    ) -> None:
        self.channel = channel
        self.conversation = conversation
        self.staff_chat_id = staff_chat_id
        self.staff_language = normalize_language(staff_language)
        self.recent = RecentMessages()

    async def start(self, chat_id: int, user: User | None, language: str) -> None:
        """Post the header and the user's recent messages to staff; tell the user when that fails."""
        state = await asyncio.to_thread(store.load_user, self.channel.engine, str(chat_id))
        if state is None:
            logger.error("handoff for chat %s started but the user row is missing", chat_id)
            return
        if self.staff_chat_id is None:
            logger.warning("user %s asked for a person but TELEGRAM_STAFF_CHAT_ID is not set", state.id)
            await self._unavailable(chat_id, language)
            return

        name = user.full_name if user is not None else "?"
        header = gettext("telegram.staff.header", self.staff_language, user_id=chat_id, name=name, language=language)
        staff_message_ids: list[int] = []
        try:
            posted = await self.channel.send_text(self.staff_chat_id, header)
            staff_message_ids.append(posted.message_id)
            for message_id in self.recent.get(chat_id):
                forwarded = await self._forward(chat_id, message_id)
                if forwarded is not None:
                    staff_message_ids.append(forwarded.message_id)
        except TelegramError as error:
            logger.error("cannot post handoff of user %s to staff chat %s: %s", state.id, self.staff_chat_id, error)
            await self._unavailable(chat_id, language)
            return
        finally:
            if staff_message_ids:
                await asyncio.to_thread(
                    store.record_handoff_messages, self.channel.engine, state.id, self.staff_chat_id, staff_message_ids
                )
        logger.info("handoff of user %s posted to staff chat (%d messages)", state.id, len(staff_message_ids))

    async def _forward(self, chat_id: int, message_id: int) -> Message | None:
        assert self.staff_chat_id is not None
        try:
            return await self.channel.bot.forward_message(self.staff_chat_id, chat_id, message_id)
        except Forbidden:
            raise
        except TelegramError as error:
            # A message the user deleted cannot be forwarded; the others still can.
            logger.info("cannot forward message %s of chat %s to staff: %s", message_id, chat_id, error)
            return None

    async def _unavailable(self, chat_id: int, language: str) -> None:
        await asyncio.to_thread(store.end_handoff, self.channel.engine, str(chat_id))
        reply = OutgoingMessage(
            text=gettext("telegram.handoff.unavailable", language), language=language, buttons=menu_buttons(language)
        )
        await self.channel.reply(chat_id, [reply])

    async def forward_from_user(self, chat_id: int, user_id: int, message: Message, language: str) -> None:
        """Forward one message of a user in handoff to the staff group."""
        if self.staff_chat_id is None:
            await self._unavailable(chat_id, language)
            return
        try:
            forwarded = await self.channel.bot.forward_message(self.staff_chat_id, chat_id, message.message_id)
        except TelegramError as error:
            logger.error("cannot forward a message of user %s to staff chat %s: %s", user_id, self.staff_chat_id, error)
            await self._unavailable(chat_id, language)
            return
        await asyncio.to_thread(
            store.record_handoff_messages, self.channel.engine, user_id, self.staff_chat_id, [forwarded.message_id]
        )

    async def notify_ended_by_user(self, chat_id: int) -> None:
        """Tell staff that a user ended the handoff with /endhuman."""
        if self.staff_chat_id is None:
            return
        try:
            await self.channel.send_text(
                self.staff_chat_id, gettext("telegram.staff.ended_by_user", self.staff_language, user_id=chat_id)
            )
        except TelegramError as error:
            logger.error("cannot tell staff chat %s that user %s ended the handoff: %s", self.staff_chat_id, chat_id, error)

    async def on_staff_message(self, message: Message, bot_username: str | None) -> None:
        """Deliver a staff reply to its user, or end the handoff on ``/end``; ignore other chatter."""
        assert self.staff_chat_id is not None
        replied = message.reply_to_message
        if replied is None:
            return
        target = await asyncio.to_thread(
            store.user_for_staff_message, self.channel.engine, self.staff_chat_id, replied.message_id
        )
        if target is None:
            if replied.from_user is not None and replied.from_user.id == self.channel.bot.id:
                await self._tell_staff("telegram.staff.unknown_reply", message)
            return

        if message.text is not None and parse_command(message.text, bot_username) == STAFF_END_COMMAND:
            await self.end_by_staff(target)
            await self._tell_staff("telegram.staff.ended", message, user_id=target.external_id)
            return
        if not target.handoff_active:
            await self._tell_staff("telegram.staff.not_active", message, user_id=target.external_id)
            return
        try:
            await self.channel.bot.copy_message(int(target.external_id), self.staff_chat_id, message.message_id)
        except Forbidden:
            await asyncio.to_thread(store.mark_blocked, self.channel.engine, target.external_id)
            await self._tell_staff("telegram.staff.user_blocked", message, user_id=target.external_id)
            return
        logger.info("staff reply delivered to user %s", target.id)

    async def end_by_staff(self, target: store.UserState) -> None:
        """End a user's handoff through Rasa (so the user hears it in their language), or directly."""
        chat_id = int(target.external_id)
        replies = await self.conversation.handle(
            IncomingMessage(channel=store.CHANNEL, external_id=target.external_id, text=END_HANDOFF_PAYLOAD)
        )
        if await asyncio.to_thread(store.end_handoff, self.channel.engine, target.external_id):
            # Rasa did not clear the flag (it failed and answered "try again"): end it here.
            logger.warning("handoff of user %s ended without Rasa; sending the notice directly", target.id)
            language = normalize_language(target.language)
            replies = [
                OutgoingMessage(text=gettext("core.handoff.ended", language), language=language, buttons=menu_buttons(language))
            ]
        await self.channel.reply(chat_id, replies, language=target.language)
        logger.info("staff ended the handoff of user %s", target.id)

    async def _tell_staff(self, message_id: str, message: Message, **params: object) -> None:
        assert self.staff_chat_id is not None
        try:
            await message.reply_text(gettext(message_id, self.staff_language, **params))
        except TelegramError as error:
            logger.error("cannot post %s to staff chat %s: %s", message_id, self.staff_chat_id, error)
