"""A channel that prints scheduled messages to a terminal, for console users of ``spin run``."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from bot.channels.base import Channel, OutgoingMessage

#: ``users.channel`` of people who chat through ``spin chat`` and ``spin run`` without Telegram.
CONSOLE_CHANNEL = "console"


class ConsoleChannel(Channel):
    """Writes each message to ``stream`` (stdout by default), as text or as one JSON line."""

    name = CONSOLE_CHANNEL

    def __init__(self, stream: TextIO | None = None, *, as_json: bool = False) -> None:
        self._stream = stream or sys.stdout
        self._as_json = as_json

    async def send(self, external_id: str, message: OutgoingMessage) -> None:
        if self._as_json:
            line = json.dumps({"to": external_id, **message.to_json()}, ensure_ascii=False)
        else:
            buttons = "".join(f"\n  [{button.title}]" for button in message.buttons)
            line = f"\n[to {external_id}] {message.text}{buttons}"
        self._stream.write(line + "\n")
        self._stream.flush()
