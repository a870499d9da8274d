"""Console chat: ``#N`` presses button N of the whole latest turn, numbered as printed."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from bot.channels.base import Button, OutgoingMessage
from bot.channels.console import ButtonNotFoundError, print_replies, resolve_input, turn_buttons


def _event_list_turn() -> list[OutgoingMessage]:
    """A turn shaped like an event list: header, two cards with three buttons each, navigation."""
    cards = [
        OutgoingMessage(
            text=f"Workshop {name}",
            buttons=[
                Button("Remind me", f"/remind-{name}"),
                Button("Add to calendar", f"/ics-{name}"),
                Button("Details", f"/details-{name}"),
            ],
        )
        for name in ("a", "b")
    ]
    navigation = OutgoingMessage(text="More options:", buttons=[Button("More events", "/next"), Button("Sector", "/sector")])
    return [OutgoingMessage(text="Upcoming events (1-2 of 4)"), *cards, navigation]


def test_turn_buttons_cover_every_reply() -> None:
    buttons = turn_buttons(_event_list_turn())

    assert len(buttons) == 8
    assert resolve_input("#1", buttons) == ("/remind-a", "Remind me")
    assert resolve_input("#6", buttons) == ("/details-b", "Details")
    assert resolve_input("#8", buttons) == ("/sector", "Sector")
    with pytest.raises(ButtonNotFoundError, match="has 8 button"):
        resolve_input("#9", buttons)


def test_printed_numbers_press_same_buttons() -> None:
    replies = _event_list_turn()
    output = io.StringIO()

    print_replies(Console(file=output, width=200, color_system=None), replies)

    printed = [line.strip() for line in output.getvalue().splitlines() if line.strip().startswith("[#")]
    buttons = turn_buttons(replies)
    assert len(printed) == len(buttons)
    for line in printed:
        number, title = line.removeprefix("[#").split("] ", 1)
        assert resolve_input(f"#{number}", buttons)[1] == title, line


def test_turn_without_buttons_has_none() -> None:
    assert turn_buttons([OutgoingMessage(text="Here is your calendar file.")]) == []
