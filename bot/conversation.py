"""One place where every channel hands over user messages and gets replies back."""

from __future__ import annotations

import logging

from bot.channels.base import IncomingMessage, OutgoingMessage
from bot.i18n import gettext, normalize_language
from bot.rasa_client import RasaClient, RasaUnavailableError
from nlu.text import detect_language

logger = logging.getLogger(__name__)


class Conversation:
    """Forwards user messages to Rasa; a failure becomes a polite "try again" reply."""

    def __init__(self, rasa: RasaClient) -> None:
        self._rasa = rasa

    async def handle(self, message: IncomingMessage) -> list[OutgoingMessage]:
        """Return the replies to ``message``; never raises for a Rasa failure."""
        try:
            return await self._rasa.send(message)
        except RasaUnavailableError:
            language = normalize_language(detect_language(message.text) or message.ui_language)
            return [OutgoingMessage(text=gettext("core.try_again", language), language=language)]
