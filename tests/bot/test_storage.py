"""Storage on SQLite and PostgreSQL: UTC instants, uniqueness, cascading deletes."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.exc import IntegrityError

from bot.storage.db import session_scope
from bot.storage.models import Assessment, AssessmentAnswer, QuestionLog, Subscription, User

ICT = dt.timezone(dt.timedelta(hours=7))


def test_instants_round_trip_as_utc(db_engine: Engine) -> None:
    local = dt.datetime(2026, 12, 4, 9, 30, tzinfo=ICT)
    with session_scope(db_engine) as session:
        session.add(User(channel="telegram", external_id="1", consent_at=local))
    with session_scope(db_engine) as session:
        user = session.scalars(select(User)).one()
        assert user.consent_at == local
        assert user.consent_at is not None and user.consent_at.utcoffset() == dt.timedelta(0)
        assert user.consent_at.hour == 2


def test_naive_datetime_rejected(db_engine: Engine) -> None:
    with pytest.raises(Exception, match="naive datetime"), session_scope(db_engine) as session:
        session.add(User(channel="telegram", external_id="2", consent_at=dt.datetime(2026, 1, 1)))
        session.flush()


def test_user_unique_per_channel(db_engine: Engine) -> None:
    with session_scope(db_engine) as session:
        session.add(User(channel="telegram", external_id="3"))
        session.add(User(channel="zalo", external_id="3"))
    with pytest.raises(IntegrityError), session_scope(db_engine) as session:
        session.add(User(channel="telegram", external_id="3"))


def test_failed_transaction_leaves_nothing(db_engine: Engine) -> None:
    with pytest.raises(RuntimeError), session_scope(db_engine) as session:
        session.add(User(channel="console", external_id="4"))
        session.flush()
        raise RuntimeError("fail after the write")
    with session_scope(db_engine) as session:
        assert session.scalar(select(func.count()).select_from(User)) == 0


def test_deleting_user_removes_their_rows(db_engine: Engine) -> None:
    with session_scope(db_engine) as session:
        user = User(channel="console", external_id="5")
        session.add(user)
        session.flush()
        session.add(QuestionLog(user_id=user.id, text="how?", language="en", top_score=0.5, sources=[]))
        session.add(Subscription(user_id=user.id, sector="textiles", country="vn"))
        assessment = Assessment(user_id=user.id, questionnaire_id="general")
        session.add(assessment)
        session.flush()
        session.add(AssessmentAnswer(assessment_id=assessment.id, question_id="q1", answer_id="a1", points=2))
        user_id = user.id

    # A bulk DELETE, as the delete-my-data handler runs it, relies on ON DELETE CASCADE.
    with session_scope(db_engine) as session:
        session.execute(delete(User).where(User.id == user_id))

    with session_scope(db_engine) as session:
        for model in (QuestionLog, Subscription, Assessment, AssessmentAnswer):
            assert session.scalar(select(func.count()).select_from(model)) == 0, model.__name__
