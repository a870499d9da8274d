"""Client for Rasa's REST channel (``/webhooks/rest/webhook``).

Rasa returns one list entry per part of a reply (text with buttons, image, custom
JSON). The action server closes every reply with a ``custom`` entry holding
``{"spin": meta}``, so entries are merged back into one :class:`OutgoingMessage` per
reply here.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from bot.channels.base import Button, IncomingMessage, OutgoingMessage, SourceRef
from bot.settings import Settings, get_settings

logger = logging.getLogger(__name__)

REST_WEBHOOK_PATH = "/webhooks/rest/webhook"


class RasaUnavailableError(Exception):
    """The Rasa server did not answer, or answered with an error."""


def parse_rest_response(entries: list[dict[str, Any]]) -> list[OutgoingMessage]:
    """Merge Rasa REST entries into replies (see the module docstring)."""
    replies: list[OutgoingMessage] = []
    current: OutgoingMessage | None = None
    for entry in entries:
        if current is None:
            current = OutgoingMessage()
        if entry.get("text"):
            # Rasa's REST channel sends each blank-line-separated paragraph of a text
            # without buttons as its own entry, so paragraphs are joined back here.
            current.text = f"{current.text}\n\n{entry['text']}" if current.text else str(entry["text"])
        for button in entry.get("buttons") or []:
            current.buttons.append(Button(title=str(button.get("title", "")), payload=str(button.get("payload", ""))))
        if entry.get("image"):
            current.image = str(entry["image"])
        custom = entry.get("custom")
        if isinstance(custom, dict) and isinstance(custom.get("spin"), dict):
            meta = custom["spin"]
            current.language = meta.get("language")
            current.document = meta.get("document")
            current.handoff = meta.get("handoff")
            current.sources = [
                SourceRef(id=str(source["id"]), title=str(source.get("title", "")), score=source.get("score"))
                for source in meta.get("sources") or []
            ]
            current.extra = {
                key: value for key, value in meta.items() if key not in ("language", "document", "handoff", "sources")
            }
            replies.append(current)
            current = None
    if current is not None and (current.text or current.image or current.buttons):
        replies.append(current)
    return replies


class RasaClient:
    """Sends user messages to Rasa and returns the merged replies."""

    def __init__(self, settings: Settings | None = None, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._settings = settings or get_settings()
        self._client = httpx.AsyncClient(
            base_url=self._settings.rasa_url,
            timeout=self._settings.rasa_timeout_seconds,
            transport=transport,
        )

    async def send(self, message: IncomingMessage) -> list[OutgoingMessage]:
        """Send one user message and return the replies.

        Raises :class:`RasaUnavailableError` when Rasa cannot be reached or fails.
        """
        body = {
            "sender": message.sender_id,
            "message": message.text,
            "metadata": {
                "channel": message.channel,
                "external_id": message.external_id,
                "ui_language": message.ui_language,
                "handoff_available": message.handoff_available,
            },
        }
        try:
            response = await self._client.post(REST_WEBHOOK_PATH, json=body)
            response.raise_for_status()
            entries = response.json()
        except (httpx.HTTPError, ValueError) as error:
            logger.error("rasa request failed for %s: %s", message.sender_id, error)
            raise RasaUnavailableError(str(error)) from error
        if not isinstance(entries, list):
            raise RasaUnavailableError(f"unexpected Rasa response type {type(entries).__name__}")
        return parse_rest_response(entries)

    async def is_ready(self) -> bool:
        """Return True when Rasa answers and has a model loaded."""
        try:
            response = await self._client.get("/status", params={"token": self._settings.rasa_auth_token})
            return response.status_code == 200 and bool(response.json().get("model_file"))
        except (httpx.HTTPError, ValueError):
            return False

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.aclose()
