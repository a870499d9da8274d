"""Whole conversations through the real Rasa server and action server, in each language."""

from __future__ import annotations

import asyncio

import pytest

from bot.channels.base import IncomingMessage
from bot.conversation import Conversation
from bot.i18n import gettext
from bot.rasa_client import RasaClient
from bot.services import free_port
from bot.settings import get_settings
from tests.actions.chat_helpers import after_notice, commands
from tests.conftest import ChatDriver

pytestmark = pytest.mark.stack


#: Articles that answer a question about cutting plastic packaging of sweets.
PACKAGING_ARTICLES = {"plastic-packaging", "paper-fibre-packaging", "food-packaging-choices", "packaging-for-export"}


@pytest.mark.parametrize(
    ("greeting", "language"),
    [("Xin chào", "vi"), ("xin chao ban", "vi"), ("Hello there", "en"), ("សួស្តី", "km"), ("ສະບາຍດີ", "lo")],
)
def test_greeting_in_user_language(chat: ChatDriver, greeting: str, language: str) -> None:
    replies = chat.say(greeting)

    assert replies, "no reply to a greeting"
    assert replies[0].language == language
    assert replies[0].text == gettext("core.greeting", language)
    assert replies[0].buttons, "the greeting offers no next step"


def test_vietnamese_question_answered_with_source(chat: ChatDriver) -> None:
    replies = chat.say("Làm sao để giảm bao bì nhựa cho bánh kẹo?")

    answer = replies[-1]
    assert answer.language == "vi"
    assert answer.sources, "the answer names no source"
    assert {source.id for source in answer.sources} & PACKAGING_ARTICLES


def test_english_question_answered_with_source(chat: ChatDriver) -> None:
    replies = chat.say("How can I reduce plastic packaging for my sweets?")

    answer = replies[-1]
    assert answer.language == "en"
    assert {source.id for source in answer.sources} & PACKAGING_ARTICLES


@pytest.mark.parametrize(
    ("question", "language"),
    [
        ("តើខ្ញុំអាចកាត់បន្ថយការវេចខ្ចប់ប្លាស្ទិកដោយរបៀបណា?", "km"),
        ("ຂ້ອຍຈະຫຼຸດການໃຊ້ຖົງຢາງພລາສຕິກໃນການຫຸ້ມຫໍ່ໄດ້ແນວໃດ?", "lo"),
    ],
)
def test_khmer_and_lao_questions_get_reply_in_language(chat: ChatDriver, question: str, language: str) -> None:
    replies = chat.say(question)

    assert replies[-1].language == language
    assert replies[-1].text


def test_out_of_scope_question_declined(chat: ChatDriver) -> None:
    replies = chat.say("What is the gold price in Hanoi today?")

    assert replies[-1].language == "en"
    assert replies[-1].sources == []


def test_language_switch_by_button(chat: ChatDriver) -> None:
    chat.say("Hello there")
    chat.say("/set_language")
    buttons = [title for title, _payload in chat.latest_buttons]
    replies = chat.say(f"#{buttons.index('ភាសាខ្មែរ') + 1}")

    assert replies[0].text == gettext("core.language_set", "km")
    assert chat.say("/help")[0].language == "km"


def test_language_switch_in_words(chat: ChatDriver) -> None:
    replies = after_notice(chat.say("please answer me in Vietnamese"))

    assert replies[0].text == gettext("core.language_set", "vi")


def test_delete_my_data_asks_then_deletes(chat: ChatDriver) -> None:
    chat.say("Xin chào")
    confirm = chat.say("xoá dữ liệu của tôi")
    assert confirm[0].text == gettext("core.delete.confirm", "vi")

    titles = [title for title, _payload in chat.latest_buttons]
    done = chat.say(f"#{titles.index(gettext('core.delete.yes', 'vi')) + 1}")
    assert done[0].text == gettext("core.delete.done", "vi")


def test_cancel_with_nothing_open(chat: ChatDriver) -> None:
    replies = after_notice(chat.say("/cancel"))

    assert replies[0].text == gettext("core.nothing_to_cancel", "en")


def test_unknown_button_gets_polite_reply(chat: ChatDriver) -> None:
    replies = after_notice(chat.say('/press{"cmd":"nope:gone"}'))

    assert replies[0].text == gettext("core.unknown_button", "en")


@pytest.mark.parametrize(
    "text",
    ["😀😀😀", "x" * 20_000, "hello\x00\x07 world\u200b", "FSC là gì? ຄຳຖາມ what is FSC", "   "],
    ids=["emoji", "20000-chars", "control-chars", "mixed-scripts", "blank"],
)
def test_bad_input_gets_polite_reply(chat: ChatDriver, text: str) -> None:
    replies = chat.say(text)

    assert replies, f"no reply to {text[:20]!r}"
    for reply in replies:
        assert reply.text
        assert "Traceback" not in reply.text
        assert reply.text != gettext("core.error", reply.language)


def test_rasa_down_gives_try_again() -> None:
    settings = get_settings().model_copy(update={"rasa_port": free_port(), "rasa_timeout_seconds": 2.0})

    async def send() -> list:
        client = RasaClient(settings)
        try:
            return await Conversation(client).handle(IncomingMessage(channel="console", external_id="x", text="Xin chào bạn"))
        finally:
            await client.aclose()

    replies = asyncio.run(send())
    assert replies[0].text == gettext("core.try_again", "vi")


def test_console_deletedata_command(chat: ChatDriver) -> None:
    replies = after_notice(chat.say("/deletedata"))

    assert replies[0].text == gettext("core.delete.confirm", "en")


def test_handoff_unavailable_without_staff_chat(chat: ChatDriver) -> None:
    replies = after_notice(chat.say("I want to talk to a real person please"))

    assert replies[0].text == gettext("core.handoff.unavailable", "en")
    assert replies[0].buttons


def test_low_confidence_action_intent_treated_as_question(chat: ChatDriver) -> None:
    chat.say("Hello there")
    replies = chat.say("<script>alert(1)</script>")

    assert replies[0].text not in {gettext("core.delete.confirm", "en"), gettext("core.handoff.unavailable", "en")}
    assert "Traceback" not in replies[0].text


def test_glue_question_not_read_as_subscription(chat: ChatDriver) -> None:
    replies = chat.say("Are solvent-based shoe glues dangerous for my workers?")

    subscribe_prefix = gettext("events.subscribe.confirm", "en", filter="").partition("?")[0]
    for reply in replies:
        assert not reply.text.startswith(subscribe_prefix), reply.text
    assert replies[-1].sources or replies[-1].text.startswith(gettext("kb.not_sure", "en"))


def test_wish_to_see_fairs_lists_events(chat: ChatDriver) -> None:
    chat.say("Xin chào")

    replies = chat.say("Tôi muốn xem hội chợ")

    subscribe_prefix = gettext("events.subscribe.confirm", "vi", filter="").partition("?")[0]
    assert not any(reply.text.startswith(subscribe_prefix) for reply in replies)
    # Only the list has an events:ask button: its "Subscribe" button leads to a confirmation.
    assert any(command and command.startswith("events:ask:") for command in commands(replies[-1]))


def test_unaccented_training_request_keeps_vietnamese(chat: ChatDriver) -> None:
    chat.say("Xin chào")

    replies = chat.say("tap huan sap toi")

    assert replies[-1].language == "vi"
    assert any(command and command.startswith("events:ask:") for command in commands(replies[-1]))
    assert chat.say("/help")[0].language == "vi"


def test_start_self_assessment_shows_sectors(chat: ChatDriver) -> None:
    replies = chat.say("start self assessment")

    assert replies[-1].text == gettext("assess.choose_sector", "en")
