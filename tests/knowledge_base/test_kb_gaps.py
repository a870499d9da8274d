"""Gap report over the question log, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime

from sqlalchemy.engine import Engine

from bot.storage.db import session_scope
from bot.storage.models import QuestionLog
from knowledge_base.gaps import gap_report

NOW = datetime.datetime(2026, 12, 1, 9, 0, tzinfo=datetime.UTC)


def log(text: str, language: str, sector: str | None, score: float | None, declined: bool, days_ago: int = 0) -> QuestionLog:
    return QuestionLog(
        text=text, language=language, sector=sector, top_score=score, declined=declined,
        sources=[], created_at=NOW - datetime.timedelta(days=days_ago),
    )  # fmt: skip


def test_groups_declined_and_low_confidence_questions(db_engine: Engine) -> None:
    with session_scope(db_engine) as session:
        session.add_all(
            [
                log("Giá vàng hôm nay?", "vi", "food", 0.31, True),
                log("giá vàng  hôm nay?", "vi", "food", 0.35, True, days_ago=1),
                log("Thuế xuất khẩu gỗ?", "vi", "food", 0.6, False),
                log("Cách tiết kiệm điện?", "vi", "food", 0.92, False),  # Confident: not a gap.
                log("FSC for rattan?", "en", "furniture", 0.4, True),
                log("ກູ້ເງິນ", "lo", None, None, True),
                log("old question", "en", "furniture", 0.1, True, days_ago=30),
            ]
        )
    with session_scope(db_engine) as session:
        report = gap_report(session)
        since = gap_report(session, since=NOW - datetime.timedelta(days=7))

    assert [(g.language, g.sector, g.declined, g.low_confidence) for g in report] == [
        ("vi", "food", 2, 1),
        ("en", "furniture", 2, 0),
        ("lo", "-", 1, 0),
    ]
    vi = report[0]
    assert [(q.text, q.count, q.declined) for q in vi.questions] == [("Giá vàng hôm nay?", 2, 2), ("Thuế xuất khẩu gỗ?", 1, 0)]
    assert vi.questions[0].best_score == 0.35
    assert vi.questions[0].last_asked == NOW
    assert report[2].questions[0].best_score is None

    assert [(g.language, g.sector, g.total) for g in since] == [("vi", "food", 3), ("en", "furniture", 1), ("lo", "-", 1)]
    assert since[0].as_dict()["questions"][0] == {
        "text": "Giá vàng hôm nay?", "count": 2, "declined": 2, "best_score": 0.35, "last_asked": "2026-12-01T09:00:00+00:00",
    }  # fmt: skip


def test_threshold_and_empty_log(db_engine: Engine) -> None:
    with session_scope(db_engine) as session:
        assert gap_report(session) == []
        session.add(log("Thuế xuất khẩu gỗ?", "vi", "food", 0.6, False))
    with session_scope(db_engine) as session:
        assert gap_report(session, low_confidence_below=0.5) == []
        assert gap_report(session, low_confidence_below=0.65)[0].low_confidence == 1


def test_question_without_consent_labelled(db_engine: Engine) -> None:
    from bot.storage.questions import TEXT_NOT_KEPT
    from knowledge_base.gaps import TEXT_NOT_KEPT_LABEL

    with session_scope(db_engine) as session:
        session.add(log(TEXT_NOT_KEPT, "km", None, 0.2, True))
        session.add(log(TEXT_NOT_KEPT, "km", None, 0.3, True))
    with session_scope(db_engine) as session:
        report = gap_report(session)

    assert len(report) == 1
    assert [(q.text, q.count) for q in report[0].questions] == [(TEXT_NOT_KEPT_LABEL, 2)]
