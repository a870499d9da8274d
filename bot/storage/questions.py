"""The question log, written within what the privacy notice promises.

The privacy notice (``core.privacy_notice`` in all four catalogues) states that the
assistant keeps a user's questions only with their consent, and ``core.consent.declined``
states that it will not keep them. So a question from a user without consent (who declined, or has not
answered the notice yet) is logged without its text, its user id or the articles it
matched: only its language, the user's sector, the retrieval score and whether it was
declined. The gap report (``spin kb gaps``) can then still count weak questions per
language and sector.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from bot.storage.models import QuestionLog, User

#: Maximum characters of a question kept in the question log.
QUESTION_LOG_MAX_CHARS = 2000
#: ``question_log.text`` of a question whose text was not kept (the column is NOT NULL).
TEXT_NOT_KEPT = ""


def log_question(
    session: Session,
    user: User,
    text: str,
    *,
    language: str | None,
    top_score: float | None,
    declined: bool,
    sources: Sequence[dict[str, Any]] = (),
) -> QuestionLog:
    """Add a ``question_log`` row for ``user``'s question and return it (not yet flushed).

    ``sources`` are the matched articles as ``{"id", "score"}`` mappings; other keys are
    dropped. Without the user's consent the row keeps no text, user id or sources.
    """
    consented = user.consent_at is not None
    row = QuestionLog(
        user_id=user.id if consented else None,
        text=text[:QUESTION_LOG_MAX_CHARS] if consented else TEXT_NOT_KEPT,
        language=language,
        sector=user.sector,
        top_score=top_score,
        declined=declined,
        sources=[{"id": source["id"], "score": source.get("score")} for source in sources] if consented else [],
    )
    session.add(row)
    return row
