"""Scores, levels, recommended actions and the comparison with an earlier run.

The rules (also in docs/assessment.md, for advisers):

- A question counts when it is scored, shown (its branch is true) and not answered
  "not applicable". A skipped question counts with 0 points.
- Dimension score = 100 × Σ(weight × points) / Σ(weight × max points) over the counted
  questions of that dimension; None when none counts.
- Overall score = the same ratio over all counted questions, so a dimension with more
  (or heavier) questions weighs more.
- Level: below 40 beginner, 40 to below 70 improving, 70 and above advanced.
- Gain of a question = weight × (max points − points). The three counted questions with
  the largest gain (ties: questionnaire order) become the recommended actions.
- A run in which every counted question was skipped has no score and no actions (level
  unscored): a score of 0 would rate the business on answers it never gave.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from actions.assessment.flow import Answers, visibility
from actions.assessment.schema import Dimension, Questionnaire

#: Lower bounds of the levels on the 0-100 overall score, highest first.
LEVEL_THRESHOLDS: tuple[tuple[float, str], ...] = ((70.0, "advanced"), (40.0, "improving"), (0.0, "beginner"))
#: Level of a run in which no question counted (all not applicable or hidden) or every one was skipped.
UNSCORED_LEVEL = "unscored"
#: Number of recommended actions in a report.
TOP_ACTIONS = 3


@dataclasses.dataclass(frozen=True)
class Action:
    """A recommended action: the question with room to gain, and where to read more."""

    question_id: str
    dimension: str
    article_id: str
    gain: float
    overall_gain: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class ScoreResult:
    """Scores of one completed run."""

    overall: float | None
    level: str
    dimensions: dict[str, float | None]
    actions: list[Action]
    counted: int
    skipped: int
    not_applicable: int

    @property
    def all_skipped(self) -> bool:
        """Whether the owner skipped every question that counts, so the run has no score."""
        return self.counted > 0 and self.skipped == self.counted


def level_for(overall: float | None) -> str:
    """Return the level name for an overall score (``unscored`` for None)."""
    if overall is None:
        return UNSCORED_LEVEL
    for lower_bound, name in LEVEL_THRESHOLDS:
        if overall >= lower_bound:
            return name
    return LEVEL_THRESHOLDS[-1][1]


def whole_points(value: float) -> int:
    """Return ``value`` rounded half up, as scores are shown to owners (42.5 shows as 43)."""
    return math.floor(value + 0.5)


def _percent(points: float, maximum: float) -> float | None:
    return round(100.0 * points / maximum, 1) if maximum > 0 else None


def score(questionnaire: Questionnaire, answers: Answers) -> ScoreResult:
    """Return the scores of ``answers`` (see the module docstring for the rules)."""
    shown = visibility(questionnaire, answers)
    points_by_dimension: dict[Dimension, float] = {}
    maximum_by_dimension: dict[Dimension, float] = {}
    gains: list[tuple[float, int, str, str, str]] = []
    counted = skipped = not_applicable = 0

    for index, question in enumerate(questionnaire.questions):
        state = answers.get(question.id)
        if not question.scored or not shown[question.id] or state is None:
            continue
        answer = question.answer(state.answer_id)
        if answer is not None and answer.not_applicable:
            not_applicable += 1
            continue
        if state.skipped or answer is None:
            skipped += 1
            points = 0.0
        else:
            points = answer.points or 0.0
        counted += 1
        weighted_max = question.weight * question.max_points
        points_by_dimension[question.dimension] = points_by_dimension.get(question.dimension, 0.0) + question.weight * points
        maximum_by_dimension[question.dimension] = maximum_by_dimension.get(question.dimension, 0.0) + weighted_max
        gain = weighted_max - question.weight * points
        if gain > 0:
            gains.append((gain, index, question.id, question.dimension.value, question.articles[0]))

    if 0 < counted == skipped:
        return ScoreResult(
            overall=None,
            level=UNSCORED_LEVEL,
            dimensions={dimension.value: None for dimension in questionnaire.dimensions},
            actions=[],
            counted=counted,
            skipped=skipped,
            not_applicable=not_applicable,
        )

    dimensions = {
        dimension.value: _percent(points_by_dimension.get(dimension, 0.0), maximum_by_dimension.get(dimension, 0.0))
        for dimension in questionnaire.dimensions
    }
    total_maximum = sum(maximum_by_dimension.values())
    overall = _percent(sum(points_by_dimension.values()), total_maximum)

    gains.sort(key=lambda item: (-item[0], item[1]))
    actions = [
        Action(
            question_id=question_id,
            dimension=dimension,
            article_id=article_id,
            gain=gain,
            overall_gain=round(100.0 * gain / total_maximum, 1),
        )
        for gain, _index, question_id, dimension, article_id in gains[:TOP_ACTIONS]
    ]
    return ScoreResult(
        overall=overall,
        level=level_for(overall),
        dimensions=dimensions,
        actions=actions,
        counted=counted,
        skipped=skipped,
        not_applicable=not_applicable,
    )


def compare(current: Mapping[str, float | None], previous: Mapping[str, float | None]) -> dict[str, int]:
    """Return the change of each score present in both runs, in whole points as shown to the owner."""
    changes: dict[str, int] = {}
    for key, value in current.items():
        before = previous.get(key)
        if value is None or before is None:
            continue
        changes[key] = whole_points(value) - whole_points(before)
    return changes
