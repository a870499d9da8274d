"""Control words, questions and numbers typed during and outside a self-assessment, through the real stack."""

from __future__ import annotations

import pytest

from bot.channels.base import OutgoingMessage
from bot.i18n import gettext
from bot.settings import SUPPORTED_LANGUAGES
from tests.actions.chat_helpers import commands, press_command
from tests.actions.test_assessment_resume import is_question, run_status, start_and_answer_one
from tests.conftest import ChatDriver

pytestmark = pytest.mark.stack


def open_resume_prompt(chat: ChatDriver) -> list[OutgoingMessage]:
    """Start a run, answer one question, pause, and ask to start again: "continue where you left off?"."""
    start_and_answer_one(chat)
    press_command(chat, "assess:pause")
    return chat.say("/start_assessment")


def texts_in_all_languages(message_id: str) -> set[str]:
    return {gettext(message_id, language) for language in SUPPORTED_LANGUAGES}


def test_khmer_back_word_goes_back_not_goodbye(chat: ChatDriver) -> None:
    start_and_answer_one(chat)

    replies = chat.say("ថយក្រោយ")

    assert replies[0].text not in texts_in_all_languages("core.goodbye")
    assert is_question(replies[-1]), f"got {replies[-1].text!r}"
    assert run_status(chat) == "in_progress"


@pytest.mark.parametrize("question", ["How do I reduce offcuts?", "What should I do with leftover fabric scraps?"])
def test_question_during_run_answered_then_asked_again(chat: ChatDriver, question: str) -> None:
    start_and_answer_one(chat)

    replies = chat.say(question)

    assert len(replies) >= 2, f"only {[reply.text for reply in replies]}"
    assert not replies[0].text.startswith("Sorry, I could not match that")
    assert replies[-1].text.startswith(gettext("assess.back_to_assessment", "en"))
    assert is_question(replies[-1])


def test_off_topic_question_during_run_gets_off_topic_reply(chat: ChatDriver) -> None:
    chat.say("Xin chào")
    chat.say("/start_assessment")
    press_command(chat, "assess:s:general")

    replies = chat.say("Giá vàng hôm nay?")

    assert replies[0].text == gettext("kb.out_of_scope", "vi")
    assert is_question(replies[-1])


@pytest.mark.parametrize("word", ["quay lại", "bỏ qua"])
def test_back_or_skip_with_nothing_open(chat: ChatDriver, word: str) -> None:
    chat.say("Xin chào")

    replies = chat.say(word)

    assert replies[0].text == gettext("core.nothing_open", "vi")
    assert "assess:start" in commands(replies[0])


def test_sql_text_is_no_cancel_request(chat: ChatDriver) -> None:
    chat.say("Xin chào")

    replies = chat.say("Robert'); DROP TABLE question_log;--")

    assert replies[0].text not in texts_in_all_languages("core.nothing_to_cancel")
    assert "Traceback" not in replies[0].text


def test_number_at_resume_prompt_presses_button(chat: ChatDriver) -> None:
    prompt = open_resume_prompt(chat)
    assert commands(prompt[-1]) == ["assess:resume", "core:menu", "assess:restart"]

    replies = chat.say("2")

    assert replies[0].text == gettext("core.help", "en")
    assert run_status(chat) == "paused"


def test_number_three_at_resume_prompt_asks_before_restart(chat: ChatDriver) -> None:
    open_resume_prompt(chat)

    replies = chat.say("3")

    assert replies[0].text == gettext("assess.restart_confirm", "en", count=1)
    assert run_status(chat) == "paused"


def test_restart_button_asks_first(chat: ChatDriver) -> None:
    open_resume_prompt(chat)

    confirm = press_command(chat, "assess:restart")

    assert confirm[0].text == gettext("assess.restart_confirm", "en", count=1)
    assert commands(confirm[0])[0] != "assess:restart:yes"
    assert run_status(chat) != "cancelled"
    kept = press_command(chat, "assess:cancel:no")
    assert is_question(kept[-1])
    assert run_status(chat) == "in_progress"


def test_restart_confirmed_cancels_run(chat: ChatDriver) -> None:
    open_resume_prompt(chat)
    press_command(chat, "assess:restart")

    replies = press_command(chat, "assess:restart:yes")

    assert replies[0].text == gettext("assess.choose_sector", "en")
    assert run_status(chat) == "cancelled"


def test_typed_yes_confirms_restart(chat: ChatDriver) -> None:
    open_resume_prompt(chat)
    press_command(chat, "assess:restart")

    replies = chat.say("yes")

    assert replies[0].text == gettext("assess.choose_sector", "en")
    assert run_status(chat) == "cancelled"
