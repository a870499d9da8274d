"""What a handler knows about the current turn."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy.orm import Session

from bot.storage.models import User


@dataclasses.dataclass
class TurnContext:
    """One user turn: the message, what Rasa understood, the user row and a DB session.

    ``command`` is set when the user pressed a button (intent ``press``); ``text`` is
    then the button's payload. ``session`` commits when the turn ends without error.
    """

    sender_id: str
    text: str
    intent: str | None
    confidence: float
    entities: list[dict[str, Any]]
    command: str | None
    user: User
    language: str
    session: Session
    ui_language: str | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: A handler stored the user's explicit language choice, which the message must not override.
    language_chosen: bool = False

    def entity(self, name: str) -> str | None:
        """Return the first value of entity ``name``, or None."""
        for entity in self.entities:
            if entity.get("entity") == name and entity.get("value") is not None:
                return str(entity["value"])
        return None
