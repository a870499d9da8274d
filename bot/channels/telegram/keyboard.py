"""Inline keyboards: Rasa button payloads stored under short tokens in ``button_tokens``.

A payload such as ``/press{"cmd":"assess:answer:q3:a2"}`` can exceed Telegram's 64-byte
``callback_data``, and a button title in Khmer or Lao would exceed it at once, so the
keyboard carries ``b:<token>`` and the payload stays in the database. The token is a
hash of the payload, so the same button always gets the same token and rendering a menu
again adds no rows. A token not used for :data:`BUTTON_TOKEN_TTL` expires.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterable, Sequence

from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.channels.base import Button
from bot.channels.telegram.limits import MAX_BUTTONS_PER_ROW, MAX_CALLBACK_DATA_BYTES, MAX_INLINE_BUTTONS
from bot.channels.telegram.text import utf16_length
from bot.i18n import gettext
from bot.storage.db import session_scope
from bot.storage.models import ButtonToken
from bot.storage.types import utc_now

logger = logging.getLogger(__name__)

#: Prefix of ``callback_data`` that carries a button token.
CALLBACK_PREFIX = "b:"

#: Bytes of SHA-256 kept in a token: 16 bytes give 22 base64url characters.
TOKEN_BYTES = 16

#: A token unused for this long is expired: its button gets the "expired" reply.
BUTTON_TOKEN_TTL = dt.timedelta(days=90)

#: A token used again after this long gets its ``created_at`` refreshed (one write a day).
TOKEN_REFRESH_AFTER = dt.timedelta(days=1)

#: Buttons whose titles are all at most this long (UTF-16 units) go two to a row.
SHORT_TITLE_UNITS = 20

#: Rasa intent that carries button commands; Rasa parses ``/press{...}`` without NLU.
PRESS_INTENT = "press"

#: Main menu (title message id, command), the same as the core handlers' menu.
MENU_COMMANDS = (
    ("core.menu.ask", "core:ask"),
    ("core.menu.assess", "assess:start"),
    ("core.menu.events", "events:list"),
    ("core.menu.language", "core:language"),
)


def press_payload(command: str) -> str:
    """Return the Rasa payload of a button that sends ``command`` (as ``actions.reply`` builds it)."""
    return f"/{PRESS_INTENT}{json.dumps({'cmd': command}, ensure_ascii=False, separators=(',', ':'))}"


def menu_buttons(language: str) -> list[Button]:
    """Return the main menu buttons in ``language``, for replies the channel writes itself."""
    return [Button(title=gettext(message_id, language), payload=press_payload(command)) for message_id, command in MENU_COMMANDS]


def token_for(payload: str) -> str:
    """Return the token of ``payload``: base64url of the first 16 bytes of its SHA-256."""
    digest = hashlib.sha256(payload.encode("utf-8")).digest()[:TOKEN_BYTES]
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def callback_data_for(token: str) -> str:
    """Return the ``callback_data`` that carries ``token``."""
    data = CALLBACK_PREFIX + token
    if len(data.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES:
        raise ValueError(f"callback_data {data!r} exceeds {MAX_CALLBACK_DATA_BYTES} bytes")
    return data


def token_from_callback_data(data: str | None) -> str | None:
    """Return the token in ``callback_data``, or None when it is not one of ours."""
    if not data or not data.startswith(CALLBACK_PREFIX):
        return None
    return data.removeprefix(CALLBACK_PREFIX) or None


def is_url(payload: str) -> bool:
    """Return True when a button payload is a web link rather than a Rasa payload."""
    return payload.startswith(("https://", "http://"))


def store_payloads(engine: Engine, payloads: Iterable[str], titles: dict[str, str] | None = None) -> dict[str, str]:
    """Store each payload under its token (insert or refresh) and return payload -> token.

    Uses ``INSERT ... ON CONFLICT`` so two chats rendering the same menu at once do not
    collide on the primary key.
    """
    unique = sorted({payload for payload in payloads if not is_url(payload)})
    if not unique:
        return {}
    now = utc_now()
    tokens = {payload: token_for(payload) for payload in unique}
    rows = [
        {"token": tokens[payload], "payload": payload, "title": (titles or {}).get(payload), "created_at": now}
        for payload in unique
    ]
    with session_scope(engine) as session:
        dialect = session.get_bind().dialect.name
        if dialect not in ("postgresql", "sqlite"):
            raise RuntimeError(f"button tokens need SQLite or PostgreSQL, got {dialect}")
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(ButtonToken).values(rows)
        statement = statement.on_conflict_do_update(
            index_elements=[ButtonToken.token],
            set_={"created_at": statement.excluded.created_at},
            where=ButtonToken.created_at < now - TOKEN_REFRESH_AFTER,
        )
        session.execute(statement)
    return tokens


def resolve_token(engine: Engine, token: str) -> str | None:
    """Return the payload stored under ``token``, or None when it is unknown or expired."""
    with session_scope(engine) as session:
        row = session.scalars(select(ButtonToken).where(ButtonToken.token == token)).first()
        if row is None:
            return None
        if row.created_at < utc_now() - BUTTON_TOKEN_TTL:
            logger.info("button token %s expired (created %s)", token, row.created_at.isoformat())
            return None
        return row.payload


def purge_expired_tokens(engine: Engine) -> int:
    """Delete tokens older than :data:`BUTTON_TOKEN_TTL` and return how many were deleted."""
    with session_scope(engine) as session:
        result = session.execute(delete(ButtonToken).where(ButtonToken.created_at < utc_now() - BUTTON_TOKEN_TTL))
        deleted = int(getattr(result, "rowcount", 0) or 0)
    if deleted:
        logger.info("deleted %d expired button tokens", deleted)
    return deleted


def button_groups(buttons: Sequence[Button]) -> list[list[Button]]:
    """Split ``buttons`` into groups of at most :data:`MAX_INLINE_BUTTONS`, one per message."""
    return [list(buttons[start : start + MAX_INLINE_BUTTONS]) for start in range(0, len(buttons), MAX_INLINE_BUTTONS)]


def build_keyboard(buttons: Sequence[Button], tokens: dict[str, str]) -> InlineKeyboardMarkup | None:
    """Return the inline keyboard for at most :data:`MAX_INLINE_BUTTONS` buttons.

    Short titles go two to a row, longer ones one to a row. ``tokens`` maps each
    payload to its token (from :func:`store_payloads`); web links become URL buttons.
    """
    if not buttons:
        return None
    if len(buttons) > MAX_INLINE_BUTTONS:
        raise ValueError(f"{len(buttons)} buttons exceed Telegram's {MAX_INLINE_BUTTONS}; split them with button_groups()")
    per_row = 2 if all(utf16_length(button.title) <= SHORT_TITLE_UNITS for button in buttons) else 1
    per_row = min(per_row, MAX_BUTTONS_PER_ROW)
    keys: list[InlineKeyboardButton] = []
    for button in buttons:
        title = button.title.strip() or button.payload
        if is_url(button.payload):
            keys.append(InlineKeyboardButton(title, url=button.payload))
        else:
            keys.append(InlineKeyboardButton(title, callback_data=callback_data_for(tokens[button.payload])))
    rows = [keys[start : start + per_row] for start in range(0, len(keys), per_row)]
    return InlineKeyboardMarkup(rows)
