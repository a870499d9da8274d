"""Helpers for conversations with the running stack (see ``tests.conftest.ChatDriver``)."""

from __future__ import annotations

import asyncio
import functools
import json

from sqlalchemy import Engine, select

from bot.channels.base import IncomingMessage, OutgoingMessage
from bot.i18n import gettext
from bot.rasa_client import RasaClient
from bot.settings import SUPPORTED_LANGUAGES
from bot.storage.db import create_db_engine, session_scope
from bot.storage.models import User
from tests.conftest import ChatDriver

PRESS_PREFIX = "/press"


def command_of(payload: str) -> str | None:
    """Return the button command in a ``/press{"cmd": ...}`` payload, or None for another payload."""
    if not payload.startswith(PRESS_PREFIX + "{"):
        return None
    return str(json.loads(payload[len(PRESS_PREFIX) :])["cmd"])


def commands(reply: OutgoingMessage) -> list[str | None]:
    """Return the command of each button of ``reply``, in order."""
    return [command_of(button.payload) for button in reply.buttons]


def press(chat: ChatDriver, title: str) -> list[OutgoingMessage]:
    """Press the button titled ``title`` in the latest reply that had buttons."""
    titles = [button_title for button_title, _payload in chat.latest_buttons]
    assert title in titles, f"no button {title!r} in {titles}"
    return chat.say(f"#{titles.index(title) + 1}")


def press_command(chat: ChatDriver, command: str) -> list[OutgoingMessage]:
    """Press the button that sends ``command`` in the latest reply that had buttons."""
    found = [command_of(payload) for _title, payload in chat.latest_buttons]
    assert command in found, f"no button for {command!r} in {found}"
    return chat.say(f"#{found.index(command) + 1}")


def say_with_handoff(chat: ChatDriver, text: str) -> list[OutgoingMessage]:
    """Send ``text`` as ``chat``'s user from a channel that has a staff chat for handoff."""

    async def send() -> list[OutgoingMessage]:
        client = RasaClient(chat.settings)
        try:
            message = IncomingMessage(channel="console", external_id=chat.user, text=text, handoff_available=True)
            return await client.send(message)
        finally:
            await client.aclose()

    return asyncio.run(send())


@functools.cache
def stack_engine(database_url: str) -> Engine:
    """Return an engine on the stack's database, to check what a conversation stored."""
    return create_db_engine(database_url)


def stored_user(chat: ChatDriver) -> User | None:
    """Return ``chat``'s user row (detached), or None when it does not exist."""
    with session_scope(stack_engine(chat.settings.resolved_database_url)) as session:
        user = session.scalars(select(User).where(User.channel == "console", User.external_id == chat.user)).first()
        if user is not None:
            session.expunge(user)
        return user


def after_notice(replies: list[OutgoingMessage]) -> list[OutgoingMessage]:
    """Return ``replies`` without the privacy notice that starts a user's first turn."""
    notices = {gettext("core.privacy_notice", language) for language in SUPPORTED_LANGUAGES}
    return replies[1:] if replies and replies[0].text in notices else replies
