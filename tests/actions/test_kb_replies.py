"""Knowledge-base replies through the real stack: off-topic questions, sources, topic buttons, the question log."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from sqlalchemy import func, select

from actions.handlers.kb import _answer_reply, _related_buttons, _with_curated_related
from bot.i18n import gettext
from bot.settings import get_settings
from bot.storage.db import session_scope
from bot.storage.models import QuestionLog
from knowledge_base.answer import Answer
from knowledge_base.content import load_article
from tests.actions.chat_helpers import after_notice, commands, press, say_with_handoff, stack_engine
from tests.conftest import ChatDriver

pytestmark = pytest.mark.stack

OFF_TOPIC = [
    ("តម្លៃមាសថ្ងៃនេះប៉ុន្មាន?", "km"),
    ("ລາຄາຄຳມື້ນີ້ເທົ່າໃດ?", "lo"),
    ("luong toi thieu nam nay bao nhieu", "vi"),
    ("What is the gold price in Hanoi today?", "en"),
    ("Do I need a visa to visit Thailand?", "en"),
    ("Who won the football match yesterday?", "en"),
]
#: On-topic (NLU: ask_question) but no article answers it.
UNANSWERED_ON_TOPIC = "Which glaze is safest for bamboo lamp shades sold in Japan?"


def question_rows(chat: ChatDriver, text: str) -> int:
    with session_scope(stack_engine(chat.settings.resolved_database_url)) as session:
        return int(session.scalar(select(func.count()).select_from(QuestionLog).where(QuestionLog.text == text)) or 0)


def anonymous_rows(chat: ChatDriver) -> int:
    with session_scope(stack_engine(chat.settings.resolved_database_url)) as session:
        query = select(func.count()).select_from(QuestionLog).where(QuestionLog.text == "", QuestionLog.user_id.is_(None))
        return int(session.scalar(query) or 0)


@pytest.mark.parametrize(("question", "language"), OFF_TOPIC)
def test_off_topic_question_gets_outside_reply(chat: ChatDriver, question: str, language: str) -> None:
    replies = chat.say(question)

    reply = replies[-1]
    assert reply.language == language
    assert reply.text == gettext("kb.out_of_scope", language)
    assert reply.sources == []
    assert not any(command and command.startswith("kb:article:") for command in commands(reply))
    assert "core:handoff:start" not in commands(reply)


def test_off_topic_offers_handoff_when_channel_has_it(chat: ChatDriver) -> None:
    replies = say_with_handoff(chat, "What is the gold price in Hanoi today?")

    assert replies[-1].text == gettext("kb.out_of_scope", "en")
    assert "core:handoff:start" in commands(replies[-1])


def test_unanswered_on_topic_question_invites_rephrase(chat: ChatDriver) -> None:
    replies = after_notice(chat.say(UNANSWERED_ON_TOPIC))

    assert replies[-1].text.startswith(gettext("kb.not_sure", "en"))
    assert "core:handoff:start" not in commands(replies[-1])


def test_declined_questions_are_logged(chat: ChatDriver) -> None:
    chat.say("Hello there")
    press(chat, gettext("core.consent.yes", "en"))
    question = "Who won the football match yesterday?"
    before = question_rows(chat, question)

    chat.say(question)

    assert question_rows(chat, question) == before + 1


def test_declined_privacy_keeps_no_question_text(chat: ChatDriver) -> None:
    chat.say("Xin chào")
    declined = press(chat, gettext("core.consent.no", "vi"))
    assert declined[0].text == gettext("core.consent.declined", "vi")
    question = "Làm sao để tiết kiệm nước khi nhuộm vải cho xưởng nhỏ của tôi?"
    anonymous_before = anonymous_rows(chat)

    chat.say(question)

    assert question_rows(chat, question) == 0
    assert anonymous_rows(chat) == anonymous_before + 1


def test_answer_names_public_source(chat: ChatDriver) -> None:
    replies = chat.say("Làm sao để giảm nước khi nhuộm vải?")

    answer = replies[-1]
    assert answer.sources
    article = load_article(get_settings().kb_content_dir / "vi" / f"{answer.sources[0].id}.md")
    assert gettext("kb.public_sources", "vi", sources="") in answer.text
    assert article.sources[0].title in answer.text
    assert answer.sources[0].title in answer.text


@pytest.mark.parametrize("language", ["km", "lo"])
def test_topic_button_names_other_language(language: str) -> None:
    content = get_settings().kb_content_dir
    assert not (content / language / "iso-14001-basics.md").exists()
    assert (content / language / "textile-dyeing-water.md").exists()

    buttons = _related_buttons([("iso-14001-basics", "ISO 14001"), ("textile-dyeing-water", "Dyeing")], language)

    other_language = f"({gettext('kb.language.en', language)})"
    assert buttons[0][0].endswith(other_language), buttons[0][0]
    assert buttons[0][1] == "kb:article:iso-14001-basics"
    assert not buttons[1][0].endswith(other_language), buttons[1][0]


def dyeing_answer(language: str, **fields: Any) -> Answer:
    """An answer that quotes the dyeing-water article, with ``fields`` replaced."""
    answer = Answer(
        text="Dyeing with less water",
        language=language,
        sources=[{"id": "textile-dyeing-water", "title": "Dyeing", "score": 0.9}],
        declined=False,
        more_chunk_id=None,
        related=[],
        fallback_language=None,
    )
    return dataclasses.replace(answer, **fields)


@pytest.mark.parametrize(("start", "offered"), [("textile-dyeing-water", True), (None, False)])
def test_later_section_gets_start_button(start: str | None, offered: bool) -> None:
    result = dyeing_answer("lo", start_article_id=start)

    reply = _answer_reply(result, "lo")

    start_button = (gettext("kb.button.from_start", "lo"), "kb:article:textile-dyeing-water")
    assert (start_button in reply.buttons) is offered


def test_answer_lists_article_own_related_first() -> None:
    content = get_settings().kb_content_dir
    curated = list(load_article(content / "en" / "textile-dyeing-water.md").related)
    result = dyeing_answer("en", related=[("footwear-adhesives-solvents", "Safer adhesives"), ("natural-dyes", "Natural dyes")])

    related = _with_curated_related(result, "en").related

    assert [article_id for article_id, _title in related] == curated[:3]
    assert "footwear-adhesives-solvents" not in dict(related)
