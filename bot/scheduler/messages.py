"""The text and buttons of reminders and notices."""

from __future__ import annotations

import datetime as dt

from actions.reply import button_payload
from bot.channels.base import Button, OutgoingMessage
from bot.events.catalogue import localized
from bot.events.presentation import kind_label, place_text, relative_text, when_text
from bot.i18n import gettext
from bot.scheduler import kinds
from bot.storage.models import Event


def _button(message_id: str, language: str, command: str) -> Button:
    return Button(title=gettext(message_id, language), payload=button_payload(command))


def render_delivery(kind: kinds.Kind, event: Event, language: str, now: dt.datetime) -> OutgoingMessage:
    """Return the message for one ledger row; every one carries an "unsubscribe" button."""
    params = {
        "kind": kind_label(event.kind, language),
        "title": localized(event.titles, language),
        "when": when_text(event, language),
        "place": place_text(event, language),
        "relative": relative_text(event.starts_at, now, language),
    }
    text = gettext(f"events.notify.{kind.type}", language, **params)
    buttons = []
    if kind.type != kinds.CANCELLED:
        if kind.type == kinds.NEW:
            buttons.append(_button("events.button.remind", language, f"events:remind:{event.id}"))
        buttons.append(_button("events.button.details", language, f"events:details:{event.id}"))
        buttons.append(_button("events.button.ics", language, f"events:ics:{event.id}"))
    buttons.append(_button("events.button.stop", language, f"events:stop:{event.id}"))
    return OutgoingMessage(text=text, buttons=buttons, language=language, extra={"event_id": event.id, "kind": kind.type})
