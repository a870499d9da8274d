"""Bot commands: what each sends to Rasa, and the command menu in four languages."""

from __future__ import annotations

import logging

from telegram import Bot, BotCommand

from bot.channels.telegram.keyboard import press_payload
from bot.channels.telegram.limits import MAX_COMMAND_DESCRIPTION_LENGTH, MAX_COMMAND_LENGTH
from bot.i18n import gettext
from bot.settings import DEFAULT_LANGUAGE, SUPPORTED_LANGUAGES

logger = logging.getLogger(__name__)

from bot.commands import (  # noqa: E402  (shared by every channel)
    COMMAND_PAYLOADS,
    DELETE_DATA_PAYLOAD,
    END_HANDOFF_PAYLOAD,
    GREET_PAYLOAD,
    LANGUAGE_PAYLOAD,
)

__all__ = ["COMMAND_PAYLOADS", "DELETE_DATA_PAYLOAD", "END_HANDOFF_PAYLOAD", "GREET_PAYLOAD", "LANGUAGE_PAYLOAD"]

#: Payload for a command the bot does not know: the help text lists what it can do.
UNKNOWN_COMMAND_PAYLOAD = "/help"

#: Command that ``/stats`` admins use; not in the public menu.
STATS_COMMAND = "stats"

#: Command staff reply with in the staff group to end a handoff.
STAFF_END_COMMAND = "end"

#: Payloads that pass through while a person handles the conversation: ending the
#: handoff, and deleting one's data, which must always work.
HANDOFF_BYPASS_PAYLOADS = frozenset(
    {END_HANDOFF_PAYLOAD, DELETE_DATA_PAYLOAD, press_payload("core:delete:yes"), press_payload("core:delete:no")}
)


def parse_command(text: str, bot_username: str | None = None) -> str | None:
    """Return the lower-case command of ``/cmd``, ``/cmd@thisbot`` or ``/cmd args``, else None.

    A command addressed to another bot (``/help@otherbot``) returns None.
    """
    stripped = text.lstrip()
    if not stripped.startswith("/"):
        return None
    word = stripped[1:].split(maxsplit=1)[0] if len(stripped) > 1 else ""
    name, _at, addressee = word.partition("@")
    if addressee and bot_username and addressee.lower() != bot_username.lower():
        return None
    return name.lower()


def bot_commands(language: str) -> list[BotCommand]:
    """Return the command menu with descriptions in ``language``."""
    commands = []
    for name in COMMAND_PAYLOADS:
        description = gettext(f"telegram.command.{name}", language)
        if len(name) > MAX_COMMAND_LENGTH or not 1 <= len(description) <= MAX_COMMAND_DESCRIPTION_LENGTH:
            raise ValueError(f"command /{name} or its {language} description breaks Telegram's limits: {description!r}")
        commands.append(BotCommand(name, description))
    return commands


async def register_commands(bot: Bot) -> None:
    """Set the command menu: English as the default, plus one per other supported language."""
    await bot.set_my_commands(bot_commands(DEFAULT_LANGUAGE))
    for language in SUPPORTED_LANGUAGES:
        if language != DEFAULT_LANGUAGE:
            await bot.set_my_commands(bot_commands(language), language_code=language)
    logger.info("registered the command menu in %s", ", ".join(SUPPORTED_LANGUAGES))
