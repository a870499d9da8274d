"""The questionnaire state machine: which question comes next, back, and progress.

These functions are pure: they take a :class:`Questionnaire` and the answers given so
far and never touch the database, so the scoring and the tests share them.

Rules:

- Questions are asked in questionnaire order. The next question is the first one that
  is shown and not yet answered (a skip counts as answered), so after "back" and a new
  answer the owner returns to where they were.
- A branch (``show_if``/``skip_if``) refers to an earlier question. When that question
  was hidden itself, or skipped, its answer is "none": ``show_if`` is then false and
  ``skip_if`` is then false (the question is shown).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from actions.assessment.schema import Condition, Question, Questionnaire


@dataclasses.dataclass(frozen=True)
class AnswerState:
    """The owner's response to one question: an answer id, or a skip."""

    answer_id: str | None
    skipped: bool = False


Answers = Mapping[str, AnswerState]


def _condition_holds(
    condition: Condition, questionnaire: Questionnaire, answers: Answers, cache: dict[str, bool | None]
) -> bool | None:
    """Return whether ``condition`` holds, or None while its question is still unanswered."""
    target = questionnaire.question(condition.question)
    if target is None:
        return False
    target_visible = _visibility(target, questionnaire, answers, cache)
    if target_visible is False:
        return False
    state = answers.get(target.id)
    if state is None:
        return None
    return state.answer_id in condition.answers


def _visibility(question: Question, questionnaire: Questionnaire, answers: Answers, cache: dict[str, bool | None]) -> bool | None:
    if question.id in cache:
        return cache[question.id]
    result: bool | None = True
    if question.show_if is not None:
        result = _condition_holds(question.show_if, questionnaire, answers, cache)
    elif question.skip_if is not None:
        holds = _condition_holds(question.skip_if, questionnaire, answers, cache)
        result = None if holds is None else not holds
    cache[question.id] = result
    return result


def visibility(questionnaire: Questionnaire, answers: Answers) -> dict[str, bool | None]:
    """Return question id -> shown (True), hidden (False) or undecided (None)."""
    cache: dict[str, bool | None] = {}
    for question in questionnaire.questions:
        _visibility(question, questionnaire, answers, cache)
    return cache


def shown_questions(questionnaire: Questionnaire, answers: Answers) -> list[Question]:
    """Return the questions that are shown, or may still be shown, in order."""
    shown = visibility(questionnaire, answers)
    return [question for question in questionnaire.questions if shown[question.id] is not False]


def next_question(questionnaire: Questionnaire, answers: Answers) -> Question | None:
    """Return the first shown question without an answer, or None when the run is complete."""
    shown = visibility(questionnaire, answers)
    for question in questionnaire.questions:
        if shown[question.id] and question.id not in answers:
            return question
    return None


def previous_question(questionnaire: Questionnaire, answers: Answers, current_id: str | None) -> Question | None:
    """Return the shown question before ``current_id`` (the last one when None), or None at the start."""
    shown = visibility(questionnaire, answers)
    end = len(questionnaire.questions) if current_id is None else questionnaire.index(current_id)
    for question in reversed(questionnaire.questions[:end]):
        if shown[question.id]:
            return question
    return None


def progress(questionnaire: Questionnaire, answers: Answers, current_id: str) -> tuple[int, int]:
    """Return (position of ``current_id``, number of questions) among the shown ones, from 1.

    Undecided questions count in the total, so the total can shrink as branches are
    decided but never grows.
    """
    shown = shown_questions(questionnaire, answers)
    ids = [question.id for question in shown]
    position = ids.index(current_id) + 1 if current_id in ids else len(ids)
    return position, len(ids)


def is_complete(questionnaire: Questionnaire, answers: Answers) -> bool:
    """Return True when every shown question has an answer or a skip."""
    return next_question(questionnaire, answers) is None
