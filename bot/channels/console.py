"""The console chat (``spin chat``, and ``spin run`` without a Telegram token): input lines and button numbers.

One bot turn can send several replies with buttons: an event list sends a card per
event, each with Remind me, Add to calendar and Details, and then a message with the
navigation buttons. The console numbers the buttons of the whole turn from 1, in the
order it prints them, so ``#N`` presses any button on the screen. Telegram does not use
these numbers, because each of its messages carries its own inline keyboard.

A wrong ``#N`` gets an error in the language of the latest replies (their ``language``
metadata), because the person at the console reads the bot in that language.
"""

from __future__ import annotations

import re

from rich.console import Console

from bot.channels.base import OutgoingMessage
from bot.commands import command_payload
from bot.i18n import gettext

#: First line of the interactive console. Print it with ``markup=False``, because Rich
#: would read "[#N]" as a style tag and drop it.
START_MESSAGE = "SPIN Assistant: type a message, #N to press the button shown as [#N], Ctrl-D on an empty line to quit."

#: A line ``#N`` presses button N (from 1) of the latest turn that had buttons.
BUTTON_LINE = re.compile(r"^#(\d+)$")


class ButtonNotFoundError(ValueError):
    """A ``#N`` line with no button N in the latest turn that had buttons."""


def turn_buttons(replies: list[OutgoingMessage]) -> list[tuple[str, str]]:
    """Return (title, payload) of every button of one turn, in print order: button N is item N - 1."""
    return [(button.title, button.payload) for reply in replies for button in reply.buttons]


def turn_language(replies: list[OutgoingMessage]) -> str | None:
    """Return the language of one turn's replies (the last one that names it), or None."""
    return next((reply.language for reply in reversed(replies) if reply.language), None)


def resolve_input(line: str, latest_buttons: list[tuple[str, str]], language: str | None = None) -> tuple[str, str]:
    """Return (text to send, what to echo) for a typed or scripted line.

    ``latest_buttons`` are the :func:`turn_buttons` of the latest turn that had any.
    A slash command becomes its Rasa payload, and other text is sent unchanged. A ``#N``
    with no button N raises :class:`ButtonNotFoundError` with a message in ``language``
    (the :func:`turn_language` of the latest turn; None means English).
    """
    match = BUTTON_LINE.match(line.strip())
    if not match:
        return command_payload(line) or line, line
    number = int(match.group(1))
    typed = line.strip()
    if not latest_buttons:
        raise ButtonNotFoundError(gettext("core.console.no_buttons", language, typed=typed))
    if not 1 <= number <= len(latest_buttons):
        raise ButtonNotFoundError(gettext("core.console.no_such_button", language, typed=typed, count=len(latest_buttons)))
    title, payload = latest_buttons[number - 1]
    return payload, title


def unnamed_source_titles(reply: OutgoingMessage) -> list[str]:
    """Return the titles of the reply's sources that its text does not name, without repeats.

    A knowledge-base answer ends with its own "Source: …" line, so its titles are not
    printed again. Telegram applies the same rule (``bot.channels.telegram.render``).
    """
    return list(dict.fromkeys(source.title for source in reply.sources if source.title and source.title not in reply.text))


def print_replies(console: Console, replies: list[OutgoingMessage]) -> None:
    """Print one turn; buttons get the numbers that :func:`resolve_input` accepts after it."""
    number = 0
    for reply in replies:
        if reply.text:
            console.print(reply.text, markup=False, highlight=False)
        unnamed = unnamed_source_titles(reply)
        if unnamed:
            console.print("  " + " · ".join(unnamed), style="dim", markup=False)
        if reply.image:
            console.print(f"  [image] {reply.image}", style="cyan", markup=False)
        if reply.document:
            console.print(f"  [file] {reply.document}", style="cyan", markup=False)
        for button in reply.buttons:
            number += 1
            console.print(f"  [#{number}] {button.title}", style="green", markup=False)
