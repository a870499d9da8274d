"""Gap report: questions the knowledge base declined or answered with low confidence.

Reads the ``question_log`` table (written by the action server for every question) and
groups the weak questions by language and sector, most frequent first, so that staff see
which articles to write next. Identical questions (same text after normalising case and
spaces) are counted together.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bot.storage.models import QuestionLog
from nlu.text import normalize

#: Answered questions whose confidence is below this count as low-confidence. The
#: confidence is the decline model's probability (knowledge_base/decline_model.json),
#: which declines below about 0.70, so 0.85 catches answers that only just passed.
LOW_CONFIDENCE_BELOW = 0.85
#: Example questions listed per group.
EXAMPLES_PER_GROUP = 10
NO_SECTOR = "-"
#: Shown for logged questions whose text was not kept, because the user gave no consent.
TEXT_NOT_KEPT_LABEL = "(text not kept: no consent)"


@dataclasses.dataclass
class GapQuestion:
    """One distinct weak question and how often it was asked."""

    text: str
    count: int
    declined: int
    best_score: float | None
    last_asked: datetime.datetime


@dataclasses.dataclass
class GapGroup:
    """Weak questions of one language and sector."""

    language: str
    sector: str
    declined: int
    low_confidence: int
    questions: list[GapQuestion]

    @property
    def total(self) -> int:
        return self.declined + self.low_confidence

    def as_dict(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "sector": self.sector,
            "declined": self.declined,
            "low_confidence": self.low_confidence,
            "questions": [
                {
                    "text": question.text,
                    "count": question.count,
                    "declined": question.declined,
                    "best_score": question.best_score,
                    "last_asked": question.last_asked.isoformat(timespec="seconds"),
                }
                for question in self.questions
            ],
        }


def gap_report(
    session: Session,
    since: datetime.datetime | None = None,
    low_confidence_below: float = LOW_CONFIDENCE_BELOW,
    examples: int = EXAMPLES_PER_GROUP,
) -> list[GapGroup]:
    """Return weak questions asked at or after ``since``, grouped by language and sector, largest group first."""
    query = select(QuestionLog).where(
        or_(QuestionLog.declined.is_(True), QuestionLog.top_score.is_(None), QuestionLog.top_score < low_confidence_below)
    )
    if since is not None:
        query = query.where(QuestionLog.created_at >= since)
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for row in session.scalars(query.order_by(QuestionLog.created_at)):
        key = (row.language or "?", row.sector or NO_SECTOR)
        group = groups.setdefault(key, {"declined": 0, "low": 0, "questions": collections.OrderedDict()})
        group["declined" if row.declined else "low"] += 1
        text = normalize(row.text) or TEXT_NOT_KEPT_LABEL
        folded = text.lower()
        entry = group["questions"].get(folded)
        if entry is None:
            entry = group["questions"][folded] = GapQuestion(text, 0, 0, None, row.created_at)
        entry.text = text  # Rows come oldest first, so the latest wording is shown.
        entry.count += 1
        entry.declined += row.declined
        if row.top_score is not None:
            entry.best_score = max(row.top_score, entry.best_score or 0.0)
        entry.last_asked = max(entry.last_asked, row.created_at)
    report = [
        GapGroup(
            language=language,
            sector=sector,
            declined=values["declined"],
            low_confidence=values["low"],
            questions=sorted(values["questions"].values(), key=lambda item: (-item.count, -item.declined, item.text))[:examples],
        )
        for (language, sector), values in groups.items()
    ]
    report.sort(key=lambda group: (-group.total, group.language, group.sector))
    return report
