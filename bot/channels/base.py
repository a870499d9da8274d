"""The channel interface shared by console, Telegram and Zalo.

A channel turns platform updates into :class:`IncomingMessage`, hands them to a
:class:`~bot.conversation.Conversation`, and renders each :class:`OutgoingMessage`
natively. Scheduled messages (reminders) go out through :meth:`Channel.send`.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Button:
    """A reply button: ``payload`` is what Rasa receives when it is pressed."""

    title: str
    payload: str


@dataclasses.dataclass(frozen=True)
class SourceRef:
    """A knowledge-base article used in a reply."""

    id: str
    title: str
    score: float | None = None


@dataclasses.dataclass
class OutgoingMessage:
    """One reply to a user: text, optional buttons, image and document, and metadata."""

    text: str = ""
    buttons: list[Button] = dataclasses.field(default_factory=list)
    image: str | None = None
    document: str | None = None
    language: str | None = None
    sources: list[SourceRef] = dataclasses.field(default_factory=list)
    handoff: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return the reply as the JSON object ``spin chat --json`` prints."""
        return {
            "text": self.text,
            "buttons": [{"title": button.title, "payload": button.payload} for button in self.buttons],
            "image": self.image,
            "document": self.document,
            "language": self.language,
            "sources": [{"id": source.id, "title": source.title} for source in self.sources],
        }


@dataclasses.dataclass(frozen=True)
class IncomingMessage:
    """A user's text or button press, as the channel received it."""

    channel: str
    external_id: str
    text: str
    ui_language: str | None = None
    message_id: str | None = None
    #: True when the channel can pass the conversation to staff (a staff chat is set).
    handoff_available: bool = False

    @property
    def sender_id(self) -> str:
        """Return the conversation id used with Rasa: ``<channel>:<external id>``."""
        return f"{self.channel}:{self.external_id}"


class DeliveryError(Exception):
    """A message could not be delivered; ``permanent`` means do not retry this user."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Channel(abc.ABC):
    """A messaging platform the assistant can send to."""

    #: Channel name stored in ``users.channel``.
    name: str

    @abc.abstractmethod
    async def send(self, external_id: str, message: OutgoingMessage) -> None:
        """Send ``message`` to one user.

        Raises :class:`DeliveryError` with ``permanent=True`` when the user cannot be
        reached again (blocked the bot, deleted the account).
        """
