"""Slash commands map to the same Rasa payloads in every channel."""

from __future__ import annotations

import pytest

from bot.cli.chat import ButtonNotFoundError, resolve_input
from bot.commands import COMMAND_PAYLOADS, command_payload


@pytest.mark.parametrize(
    ("text", "payload"), [("/deletedata", "/delete_my_data"), ("/HELP", "/help"), (" /assess ", "/start_assessment")]
)
def test_command_payload(text: str, payload: str) -> None:
    assert command_payload(text) == payload


@pytest.mark.parametrize("text", ["/unknown", "hello", "/help me please", ""])
def test_other_text_is_not_a_command(text: str) -> None:
    assert command_payload(text) is None


def test_console_sends_command_payload() -> None:
    assert resolve_input("/endhuman", []) == (COMMAND_PAYLOADS["endhuman"], "/endhuman")


def test_console_button_line_presses_button() -> None:
    buttons = [("Yes", "/affirm"), ("No", "/deny")]

    assert resolve_input("#2", buttons) == ("/deny", "No")
    with pytest.raises(ButtonNotFoundError, match="has 2 button"):
        resolve_input("#3", buttons)
