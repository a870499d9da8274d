"""The question log keeps question text only with consent, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from bot.storage.db import session_scope
from bot.storage.models import QuestionLog, User
from bot.storage.questions import QUESTION_LOG_MAX_CHARS, TEXT_NOT_KEPT, log_question
from bot.storage.types import utc_now

QUESTION = "How can my shop use less plastic packaging?"
SOURCES = [{"id": "plastic-packaging", "title": "Cut plastic packaging", "score": 0.81}]


def logged_row(engine: Engine, consent: bool) -> QuestionLog:
    with session_scope(engine) as session:
        user = User(channel="test", external_id=f"consent-{consent}", sector="food", consent_at=utc_now() if consent else None)
        session.add(user)
        session.flush()
        log_question(session, user, QUESTION, language="en", top_score=0.81, declined=False, sources=SOURCES)
    with session_scope(engine) as session:
        row = session.scalars(select(QuestionLog).order_by(QuestionLog.id.desc())).first()
        assert row is not None
        session.expunge(row)
        return row


def test_consented_question_kept_with_user(db_engine: Engine) -> None:
    row = logged_row(db_engine, consent=True)

    assert row.text == QUESTION
    assert row.user_id is not None
    assert row.sources == [{"id": "plastic-packaging", "score": 0.81}]


def test_question_without_consent_keeps_no_text(db_engine: Engine) -> None:
    row = logged_row(db_engine, consent=False)

    assert row.text == TEXT_NOT_KEPT
    assert row.user_id is None
    assert row.sources == []
    assert row.language == "en"
    assert row.sector == "food"
    assert row.top_score == pytest.approx(0.81)
    assert row.declined is False


def test_long_question_cut(db_engine: Engine) -> None:
    with session_scope(db_engine) as session:
        user = User(channel="test", external_id="long", consent_at=utc_now())
        session.add(user)
        session.flush()
        row = log_question(session, user, "x" * (QUESTION_LOG_MAX_CHARS + 50), language="en", top_score=None, declined=True)
        session.flush()
        assert len(row.text) == QUESTION_LOG_MAX_CHARS
