"""Continuing and cancelling a self-assessment in words, through the real stack."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.channels.base import OutgoingMessage
from bot.i18n import gettext
from bot.storage.db import session_scope
from bot.storage.models import Assessment, User
from tests.actions.chat_helpers import command_of, commands, press_command, stack_engine
from tests.conftest import ChatDriver

pytestmark = pytest.mark.stack


def start_and_answer_one(chat: ChatDriver) -> None:
    """Start the general questionnaire and answer its first question."""
    chat.say("/start_assessment")
    press_command(chat, "assess:s:general")
    answers = [command_of(payload) for _title, payload in chat.latest_buttons]
    press_command(chat, next(command for command in answers if command and command.startswith("assess:a:")))


def run_status(chat: ChatDriver) -> str:
    with session_scope(stack_engine(chat.settings.resolved_database_url)) as session:
        query = (
            select(Assessment.status)
            .join(User, User.id == Assessment.user_id)
            .where(User.channel == "console", User.external_id == chat.user)
            .order_by(Assessment.id.desc())
        )
        return str(session.scalars(query).first())


def is_question(reply: OutgoingMessage) -> bool:
    return any(command and command.startswith("assess:a:") for command in commands(reply))


@pytest.mark.parametrize("word", ["tiếp tục", "tiep tuc", "tiếp tục đi", "continue", "ສືບຕໍ່", "បន្ត"])
def test_continue_word_resumes_paused_run(chat: ChatDriver, word: str) -> None:
    start_and_answer_one(chat)
    press_command(chat, "assess:pause")
    assert run_status(chat) == "paused"

    replies = chat.say(word)

    assert is_question(replies[-1]), f"{word!r} got {replies[-1].text!r}"
    assert run_status(chat) == "in_progress"


def test_cancel_confirm_offers_keeping_first(chat: ChatDriver) -> None:
    start_and_answer_one(chat)

    confirm = chat.say("cancel")

    assert confirm[-1].text == gettext("assess.cancel_confirm", "en", count=1)
    assert commands(confirm[-1])[0] != "assess:cancel:yes"
    assert commands(confirm[-1])[-1] == "assess:cancel:yes"
    chat.say("#1")
    assert run_status(chat) != "cancelled"


def test_one_answer_cancel_text_is_singular(chat: ChatDriver) -> None:
    start_and_answer_one(chat)

    confirm = chat.say("cancel")

    assert "Your 1 answer will be deleted" in confirm[-1].text


def test_continue_after_cancel_question_keeps_run(chat: ChatDriver) -> None:
    start_and_answer_one(chat)
    chat.say("cancel")

    replies = chat.say("tiếp tục")

    assert is_question(replies[-1])
    assert run_status(chat) == "in_progress"
    assert chat.say("có")[-1].text != gettext("assess.cancelled", "vi")
    assert run_status(chat) != "cancelled"
