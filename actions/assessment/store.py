"""Database access for assessments: runs, answers and results.

Every change is written in the caller's session, which commits at the end of the turn,
so an answer is saved as soon as the turn that gave it ends.
"""

from __future__ import annotations

import enum
import logging

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from actions.assessment.flow import AnswerState
from bot.storage.models import Assessment, AssessmentAnswer, AssessmentResult
from bot.storage.types import utc_now

logger = logging.getLogger(__name__)


class Status(enum.StrEnum):
    """Values of ``assessments.status``."""

    IN_PROGRESS = "in_progress"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


#: Runs the owner can still continue.
OPEN_STATUSES = (Status.IN_PROGRESS.value, Status.PAUSED.value)


def open_assessment(session: Session, user_id: int) -> Assessment | None:
    """Return the user's newest run that is in progress or paused, or None."""
    query = (
        select(Assessment)
        .where(Assessment.user_id == user_id, Assessment.status.in_(OPEN_STATUSES))
        .order_by(Assessment.updated_at.desc(), Assessment.id.desc())
    )
    return session.scalars(query).first()


def create(session: Session, user_id: int, questionnaire_id: str, version: str, sector: str, language: str) -> Assessment:
    """Close any open run of the user (as cancelled) and start a new one."""
    for previous in session.scalars(
        select(Assessment).where(Assessment.user_id == user_id, Assessment.status.in_(OPEN_STATUSES))
    ):
        cancel(session, previous)
    assessment = Assessment(
        user_id=user_id,
        questionnaire_id=questionnaire_id,
        questionnaire_version=version,
        sector=sector,
        language=language,
        status=Status.IN_PROGRESS.value,
        failed_attempts=0,
    )
    session.add(assessment)
    session.flush()
    logger.info("assessment %s started by user %s (%s)", assessment.id, user_id, questionnaire_id)
    return assessment


def answers_of(session: Session, assessment: Assessment) -> dict[str, AnswerState]:
    """Return question id -> answer state for one run."""
    rows = session.scalars(select(AssessmentAnswer).where(AssessmentAnswer.assessment_id == assessment.id))
    return {row.question_id: AnswerState(answer_id=row.answer_id, skipped=row.skipped) for row in rows}


def save_answer(
    session: Session,
    assessment: Assessment,
    question_id: str,
    answer_id: str | None,
    *,
    skipped: bool = False,
    not_applicable: bool = False,
    points: float | None = None,
) -> None:
    """Insert or replace the answer to ``question_id``."""
    query = select(AssessmentAnswer).where(
        AssessmentAnswer.assessment_id == assessment.id, AssessmentAnswer.question_id == question_id
    )
    row = session.scalars(query).first()
    sequence = _next_sequence(session, assessment)
    values = {
        "answer_id": answer_id,
        "skipped": skipped,
        "not_applicable": not_applicable,
        "points": points,
        "sequence": sequence,
        "answered_at": utc_now(),
    }
    if row is None:
        try:
            with session.begin_nested():
                session.add(AssessmentAnswer(assessment_id=assessment.id, question_id=question_id, **values))
        except IntegrityError:
            # A second turn of the same user saved this question first: replace its answer.
            row = session.scalars(query).one()
    if row is not None:
        for key, value in values.items():
            setattr(row, key, value)
    assessment.updated_at = utc_now()


def _next_sequence(session: Session, assessment: Assessment) -> int:
    sequences = session.scalars(select(AssessmentAnswer.sequence).where(AssessmentAnswer.assessment_id == assessment.id))
    return max(sequences, default=0) + 1


def cancel(session: Session, assessment: Assessment) -> int:
    """Mark a run cancelled and delete its answers; return how many answers were deleted."""
    result = session.execute(delete(AssessmentAnswer).where(AssessmentAnswer.assessment_id == assessment.id))
    deleted = int(getattr(result, "rowcount", 0) or 0)
    assessment.status = Status.CANCELLED.value
    assessment.current_question_id = None
    assessment.updated_at = utc_now()
    session.expire(assessment, ["answers"])
    logger.info("assessment %s cancelled, %d answers deleted", assessment.id, deleted)
    return deleted


def save_result(
    session: Session,
    assessment: Assessment,
    overall: float | None,
    level: str,
    dimensions: dict[str, float | None],
    actions: list[dict[str, object]],
    chart_path: str | None,
) -> AssessmentResult:
    """Store the scores of a completed run and mark it completed."""
    result = session.scalars(select(AssessmentResult).where(AssessmentResult.assessment_id == assessment.id)).first()
    if result is None:
        result = AssessmentResult(assessment_id=assessment.id, overall=0.0, level=level, dimension_scores={})
        session.add(result)
    result.overall = overall if overall is not None else 0.0
    result.level = level
    result.dimension_scores = dimensions
    result.actions = actions
    result.chart_path = chart_path
    assessment.status = Status.COMPLETED.value
    assessment.current_question_id = None
    assessment.completed_at = utc_now()
    assessment.updated_at = assessment.completed_at
    session.flush()
    logger.info("assessment %s completed: overall %s, level %s", assessment.id, overall, level)
    return result


def previous_result(session: Session, assessment: Assessment) -> tuple[Assessment, AssessmentResult] | None:
    """Return the user's latest earlier completed run of the same questionnaire, with its result."""
    query = (
        select(Assessment, AssessmentResult)
        .join(AssessmentResult, AssessmentResult.assessment_id == Assessment.id)
        .where(
            Assessment.user_id == assessment.user_id,
            Assessment.questionnaire_id == assessment.questionnaire_id,
            Assessment.status == Status.COMPLETED.value,
            Assessment.id != assessment.id,
        )
        .order_by(Assessment.completed_at.desc(), Assessment.id.desc())
    )
    row = session.execute(query).first()
    return (row[0], row[1]) if row is not None else None
