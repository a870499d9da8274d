"""Thanks and unknown typed commands through the real stack."""

from __future__ import annotations

import pytest

from bot.i18n import gettext
from tests.conftest import ChatDriver

pytestmark = pytest.mark.stack


@pytest.mark.parametrize(
    ("text", "language"),
    [("cam on ban", "vi"), ("cảm ơn bạn", "vi"), ("thank you", "en"), ("អរគុណ", "km"), ("ຂອບໃຈ", "lo")],
)
def test_thanks_gets_you_are_welcome(chat: ChatDriver, text: str, language: str) -> None:
    replies = chat.say(text)

    assert replies[0].text == gettext("core.thanks", language)
    assert replies[0].text != gettext("core.goodbye", language)


@pytest.mark.parametrize("text", ["/unknown", "/foo bar"])
def test_unknown_command_points_to_help(chat: ChatDriver, text: str) -> None:
    replies = chat.say(text)

    assert replies[0].text == gettext("core.unknown_command", "en")
    assert replies[0].sources == []


def test_unknown_command_in_user_language(chat: ChatDriver) -> None:
    chat.say("Xin chào")

    replies = chat.say("/unknown")

    assert replies[0].text == gettext("core.unknown_command", "vi")
