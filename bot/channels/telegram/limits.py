"""Telegram Bot API limits (https://core.telegram.org/bots/api, checked December 2026)."""

from __future__ import annotations

import re

#: Text of one message, counted after entity parsing, in UTF-16 code units.
MAX_MESSAGE_UTF16_UNITS = 4096

#: Caption of a photo or document, in UTF-16 code units after entity parsing.
MAX_CAPTION_UTF16_UNITS = 1024

#: ``callback_data`` of an inline button, in bytes (UTF-8).
MAX_CALLBACK_DATA_BYTES = 64

#: Inline buttons in one message.
MAX_INLINE_BUTTONS = 100

#: Inline buttons in one row. NOTE: observed in Telegram clients, not stated in the Bot API docs.
MAX_BUTTONS_PER_ROW = 8

#: Length of a bot command name (lower-case letters, digits and underscores).
MAX_COMMAND_LENGTH = 32

#: Length of a command description in setMyCommands.
MAX_COMMAND_DESCRIPTION_LENGTH = 256

#: Messages per second a bot may send overall before Telegram responds with 429.
MAX_MESSAGES_PER_SECOND = 30

#: Messages per minute a bot may send into one group.
MAX_GROUP_MESSAGES_PER_MINUTE = 20

#: Allowed characters and length of the webhook ``secret_token``.
SECRET_TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")

#: Header in which Telegram sends the webhook secret token back.
SECRET_TOKEN_HEADER = "X-Telegram-Bot-Api-Secret-Token"
