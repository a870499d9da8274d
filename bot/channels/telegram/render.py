"""Turning one :class:`OutgoingMessage` into the Telegram messages that carry it.

A reply becomes, in order: a photo with the first 1,024 characters of the text as its
caption (when there is an image), text messages of at most 4,096 characters each, and
the document. The buttons go on the last of these; buttons beyond Telegram's 100 per
message follow in extra "More options" messages. Planning is pure, so it is tested
without a server; :mod:`bot.channels.telegram.channel` sends the parts.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from bot.channels.base import Button, OutgoingMessage
from bot.channels.telegram.keyboard import button_groups
from bot.channels.telegram.limits import MAX_CAPTION_UTF16_UNITS, MAX_MESSAGE_UTF16_UNITS
from bot.channels.telegram.text import split_text
from bot.i18n import gettext

#: Separator between source titles in the sources line.
SOURCE_SEPARATOR = " · "


@dataclasses.dataclass(frozen=True)
class Part:
    """One Telegram message: ``text`` is plain text (the caption for a photo or document)."""

    kind: Literal["text", "photo", "document"]
    text: str
    media: str | None = None
    buttons: tuple[Button, ...] = ()


def reply_text(message: OutgoingMessage, language: str) -> str:
    """Return the reply text with a sources line for sources whose title it does not name."""
    text = message.text.strip()
    titles = [source.title for source in message.sources if source.title and source.title not in text]
    if titles:
        line = gettext("telegram.sources", language, titles=SOURCE_SEPARATOR.join(dict.fromkeys(titles)))
        text = f"{text}\n\n{line}" if text else line
    return text


def plan_reply(message: OutgoingMessage, language: str) -> list[Part]:
    """Return the messages that carry ``message``, in sending order."""
    text = reply_text(message, language)
    parts: list[Part] = []
    if message.image:
        chunks = split_text(text, MAX_MESSAGE_UTF16_UNITS, first_limit=MAX_CAPTION_UTF16_UNITS) if text else []
        parts.append(Part("photo", chunks[0] if chunks else "", media=message.image))
        parts.extend(Part("text", chunk) for chunk in chunks[1:])
    else:
        parts.extend(Part("text", chunk) for chunk in split_text(text))
    if message.document:
        parts.append(Part("document", "", media=message.document))

    groups = button_groups(message.buttons)
    if groups:
        if not parts:
            parts.append(Part("text", gettext("telegram.choose", language)))
        parts[-1] = dataclasses.replace(parts[-1], buttons=tuple(groups[0]))
        for group in groups[1:]:
            parts.append(Part("text", gettext("telegram.more_options", language), buttons=tuple(group)))
    return parts
