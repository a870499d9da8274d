"""Replies built by handlers, and how they reach Rasa's dispatcher."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

#: Rasa intent that carries button commands; payloads bypass NLU.
PRESS_INTENT = "press"


def button_payload(command: str) -> str:
    """Return the Rasa payload that sends ``command`` back when the button is pressed."""
    return f"/{PRESS_INTENT}{json.dumps({'cmd': command}, ensure_ascii=False, separators=(',', ':'))}"


@dataclasses.dataclass
class Reply:
    """One message to the user; ``buttons`` are (title, command) pairs."""

    text: str
    language: str
    buttons: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    image: str | None = None
    document: str | None = None
    sources: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    handoff: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_rasa(self) -> dict[str, Any]:
        """Return keyword arguments for ``CollectingDispatcher.utter_message``."""
        meta: dict[str, Any] = {"language": self.language, "sources": self.sources}
        if self.document:
            meta["document"] = self.document
        if self.handoff:
            meta["handoff"] = self.handoff
        meta.update(self.extra)
        message: dict[str, Any] = {"text": self.text, "json_message": {"spin": meta}}
        if self.buttons:
            message["buttons"] = [{"title": title, "payload": button_payload(command)} for title, command in self.buttons]
        if self.image:
            message["image"] = self.image
        return message
