"""Slash commands every channel understands, and the Rasa payload each one sends.

Rasa parses ``/intent`` payloads without NLU, and ``/press{"cmd": ...}`` carries a
button command, so a command works the same in the console and on Telegram.
"""

from __future__ import annotations

import json

#: Rasa intent that carries button commands (see ``actions.reply``).
PRESS_INTENT = "press"


def press_payload(command: str) -> str:
    """Return the Rasa payload of a button that sends ``command``."""
    return f"/{PRESS_INTENT}{json.dumps({'cmd': command}, ensure_ascii=False, separators=(',', ':'))}"


#: Rasa payload of the greeting; ``/start`` sends it.
GREET_PAYLOAD = "/greet"
#: Rasa payload of the language prompt.
LANGUAGE_PAYLOAD = "/set_language"
#: Payload that ends a human handoff (the core handler clears ``users.handoff_active``).
END_HANDOFF_PAYLOAD = press_payload("core:handoff:end")
#: Payload of the privacy notice: no intent, so the router's typed-command reply shows it.
PRIVACY_PAYLOAD = "/privacy"
#: Payload of the data deletion request.
DELETE_DATA_PAYLOAD = "/delete_my_data"

#: Rasa payload for each user command, in menu order.
COMMAND_PAYLOADS: dict[str, str] = {
    "start": GREET_PAYLOAD,
    "help": "/help",
    "ask": press_payload("core:ask"),
    "assess": "/start_assessment",
    "events": "/list_events",
    "language": LANGUAGE_PAYLOAD,
    "privacy": PRIVACY_PAYLOAD,
    "deletedata": DELETE_DATA_PAYLOAD,
    "human": "/human_handoff",
    "endhuman": END_HANDOFF_PAYLOAD,
}


def command_payload(text: str) -> str | None:
    """Return the payload for a user command such as ``/deletedata``, or None for other text."""
    stripped = text.strip()
    if not stripped.startswith("/") or " " in stripped:
        return None
    return COMMAND_PAYLOADS.get(stripped[1:].lower())
