"""Thanks and unknown typed commands through the real stack."""

from __future__ import annotations

import pytest

from bot.i18n import gettext
from tests.actions.chat_helpers import after_notice
from tests.conftest import ChatDriver

pytestmark = pytest.mark.stack


@pytest.mark.parametrize(
    ("text", "language"),
    [("cam on ban", "vi"), ("cảm ơn bạn", "vi"), ("thank you", "en"), ("អរគុណ", "km"), ("ຂອບໃຈ", "lo")],
)
def test_thanks_gets_you_are_welcome(chat: ChatDriver, text: str, language: str) -> None:
    replies = after_notice(chat.say(text))

    assert replies[0].text == gettext("core.thanks", language)
    assert replies[0].text != gettext("core.goodbye", language)


@pytest.mark.parametrize("text", ["/unknown", "/foo bar"])
def test_unknown_command_points_to_help(chat: ChatDriver, text: str) -> None:
    replies = after_notice(chat.say(text))

    assert replies[0].text == gettext("core.unknown_command", "en")
    assert replies[0].sources == []


def test_unknown_command_in_user_language(chat: ChatDriver) -> None:
    chat.say("Xin chào")

    replies = chat.say("/unknown")

    assert replies[0].text == gettext("core.unknown_command", "vi")


def test_privacy_notice_not_repeated_after_decline(chat: ChatDriver) -> None:
    first = chat.say("Hello there")
    assert first[-1].text == gettext("core.privacy_notice", "en")
    chat.say("#2")

    replies = chat.say("Hello there")

    assert [reply.text for reply in replies] == [gettext("core.greeting", "en")]


def test_privacy_command_shows_notice(chat: ChatDriver) -> None:
    chat.say("Hello there")
    chat.say("#2")

    replies = chat.say("/privacy")

    assert replies[0].text == gettext("core.privacy_notice", "en")
