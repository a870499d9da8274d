"""Choosing the reply language from mixed-script messages, through the real stack and directly."""

from __future__ import annotations

import pytest

from actions.users import CLEAR_LANGUAGE_SHARE, choose_language, message_language, pick_language, remember_language
from bot.i18n import gettext
from bot.storage.models import User
from tests.actions.chat_helpers import press, stored_user
from tests.conftest import ChatDriver

MIXED_LAO_VIETNAMESE = "I want to ask about ການຫຸ້ມຫໍ່ packaging và nhựa"
ENGLISH_WITH_VIETNAMESE_NAME = "What is the Nhãn Xanh Việt Nam label and how do I apply?"
FOUR_LANGUAGE_GREETING = "សួស្តី hello xin chào ສະບາຍດີ"


@pytest.mark.stack
def test_mixed_message_keeps_chosen_english(chat: ChatDriver) -> None:
    chat.say("/set_language")
    press(chat, "English")

    replies = chat.say(MIXED_LAO_VIETNAMESE)

    assert replies[-1].language == "en"
    assert chat.say("/help")[0].text == gettext("core.help", "en")
    user = stored_user(chat)
    assert user is not None
    assert user.language == "en"
    assert user.language_confirmed


@pytest.mark.stack
def test_english_question_with_vietnamese_name_in_english(chat: ChatDriver) -> None:
    replies = chat.say(ENGLISH_WITH_VIETNAMESE_NAME)

    assert replies[-1].language == "en"


@pytest.mark.stack
def test_four_language_greeting_keeps_khmer(chat: ChatDriver) -> None:
    chat.say("សួស្តី")

    replies = chat.say(FOUR_LANGUAGE_GREETING)

    assert replies[0].language == "km"
    assert chat.say("/help")[0].language == "km"


@pytest.mark.stack
def test_whole_message_in_another_script_switches(chat: ChatDriver) -> None:
    chat.say("/set_language")
    press(chat, "English")

    replies = chat.say("Làm sao để giảm bao bì nhựa cho bánh kẹo?")

    assert replies[-1].language == "vi"
    assert chat.say("/help")[0].language == "vi"


@pytest.mark.parametrize(
    ("text", "language", "clear"),
    [
        (MIXED_LAO_VIETNAMESE, "en", False),
        (FOUR_LANGUAGE_GREETING, None, False),
        (ENGLISH_WITH_VIETNAMESE_NAME, "en", True),
        ("Chứng nhận GOTS là gì?", "vi", True),
        ("lam sao giam bao bi nhua cho banh keo", "vi", True),
        ("តើខ្ញុំអាចកាត់បន្ថយការវេចខ្ចប់ប្លាស្ទិកដោយរបៀបណា?", "km", True),
        ("ລາຄາຄຳມື້ນີ້ເທົ່າໃດ?", "lo", True),
        ("😀 123", None, False),
    ],
)
def test_message_language_shares(text: str, language: str | None, clear: bool) -> None:
    evidence = message_language(text)

    if language is not None:
        assert evidence.language == language
    assert evidence.clear is clear
    if not clear and evidence.language is not None:
        assert evidence.share < CLEAR_LANGUAGE_SHARE


@pytest.mark.parametrize(
    ("stored", "confirmed", "text", "expected"),
    [
        ("en", True, MIXED_LAO_VIETNAMESE, "en"),
        ("en", False, MIXED_LAO_VIETNAMESE, "en"),
        ("km", False, FOUR_LANGUAGE_GREETING, "km"),
        ("km", True, FOUR_LANGUAGE_GREETING, "km"),
        ("vi", True, "How can I reduce plastic packaging for my sweets?", "vi"),
        ("vi", False, "How can I reduce plastic packaging for my sweets?", "en"),
        ("vi", False, "ok", "vi"),
        ("en", True, "ສະບາຍດີ", "lo"),
        (None, False, FOUR_LANGUAGE_GREETING, None),
    ],
)
def test_choose_language_keeps_or_switches(stored: str | None, confirmed: bool, text: str, expected: str | None) -> None:
    user = User(channel="test", external_id="1", language=stored, language_confirmed=confirmed)

    chosen = choose_language(text, user, None)

    if expected is not None:
        assert chosen == expected
    else:
        assert chosen in {"en", "vi", "km", "lo"}
    assert user.language == chosen


def test_pick_language_leaves_user_unchanged() -> None:
    user = User(channel="test", external_id="2", language="en", language_confirmed=True)

    choice = pick_language("ສະບາຍດີ", user, None)

    assert choice.language == "lo"
    assert user.language == "en"
    assert user.language_confirmed


@pytest.mark.parametrize(
    ("text", "chosen_in_turn", "stored", "confirmed"),
    [
        # The language menu stored the owner's pick during the turn, so it wins.
        ("đổi sang tiếng Anh giúp tôi", True, "en", True),
        ("ສະບາຍດີ", False, "lo", False),
    ],
)
def test_language_stored_after_turn(text: str, chosen_in_turn: bool, stored: str, confirmed: bool) -> None:
    user = User(channel="test", external_id="3", language="en", language_confirmed=True)
    choice = pick_language(text, user, None)

    remember_language(user, choice, chosen_in_turn=chosen_in_turn)

    assert choice.language != "en"
    assert user.language == stored
    assert user.language_confirmed is confirmed
