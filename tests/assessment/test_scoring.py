"""Scoring rules: not applicable, skips, branches, levels, actions and comparison."""

from __future__ import annotations

from pathlib import Path

import pytest

from actions.assessment.flow import AnswerState, next_question, previous_question, progress
from actions.assessment.loader import load_questionnaires
from actions.assessment.schema import Questionnaire
from actions.assessment.scoring import LEVEL_THRESHOLDS, compare, level_for, score, whole_points
from tests.assessment.yaml_samples import ARTICLE, answer, content_dir, question, questionnaire, write

#: Expected scores below are worked out by hand from these weights and points.
SAMPLE = questionnaire(
    "sample",
    [
        question("e1", "energy", answers=[answer("a", 0), answer("b", 1), answer("c", 2), answer("d", 3)]),
        question(
            "e2",
            "energy",
            extra="weight: 2",
            answers=[answer("a", 0), answer("b", 3), answer("na", not_applicable=True)],
            articles="[cleaner-production]",
        ),
        question("w1", "water", answers=[answer("a", 0), answer("b", 2)]),
        question("gate", "water", scored=False, answers=[answer("yes"), answer("no")]),
        question("w2", "water", extra='show_if: {question: gate, answers: ["yes"]}', answers=[answer("a", 0), answer("b", 3)]),
        question("m1", "materials", answers=[answer("a", 0), answer("b", 1)]),
    ],
)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Questionnaire:
    folder = tmp_path_factory.mktemp("scoring")
    write(folder / "q", "sample", SAMPLE)
    return load_questionnaires(folder / "q", content_dir(folder / "content", [ARTICLE, "cleaner-production"]))["sample"]


def states(**answers: str | None) -> dict[str, AnswerState]:
    """Return answer states; None means the question was skipped."""
    return {question_id: AnswerState(answer_id=value, skipped=value is None) for question_id, value in answers.items()}


def test_not_applicable_leaves_the_score(sample: Questionnaire) -> None:
    result = score(sample, states(e1="c", e2="na", w1="b", gate="no", m1="b"))

    assert result.dimensions["energy"] == pytest.approx(66.7)  # 2 of 3; e2 does not count
    assert result.not_applicable == 1
    assert result.counted == 3


def test_not_applicable_differs_from_zero(sample: Questionnaire) -> None:
    with_zero = score(sample, states(e1="c", e2="a", w1="b", gate="no", m1="b"))

    assert with_zero.dimensions["energy"] == pytest.approx(22.2)  # (2 + 2×0) / (3 + 2×3)


def test_skip_counts_zero_points(sample: Questionnaire) -> None:
    result = score(sample, states(e1="c", e2="na", w1="b", gate="no", m1=None))

    assert result.dimensions["materials"] == 0
    assert result.skipped == 1
    assert result.overall == pytest.approx(66.7)  # (2 + 2 + 0) / (3 + 2 + 1)


def test_every_question_skipped_is_unscored(sample: Questionnaire) -> None:
    result = score(sample, states(e1=None, e2=None, w1=None, gate=None, m1=None))

    assert result.overall is None
    assert result.level == "unscored"
    assert set(result.dimensions.values()) == {None}
    assert result.actions == []
    assert result.skipped == result.counted > 0


def test_hidden_branch_leaves_the_score(sample: Questionnaire) -> None:
    hidden = score(sample, states(e1="c", e2="na", w1="b", gate="no", m1="b"))
    shown = score(sample, states(e1="c", e2="na", w1="b", gate="yes", w2="a", m1="b"))

    assert hidden.dimensions["water"] == 100  # w1 only: 2 of 2
    assert shown.dimensions["water"] == pytest.approx(40.0)  # (2 + 0) / (2 + 3)
    assert shown.overall == pytest.approx(55.6)  # (2 + 2 + 0 + 1) / (3 + 2 + 3 + 1)


def test_answer_of_hidden_question_ignored(sample: Questionnaire) -> None:
    # w2 was answered, then the owner went back and changed the gate to "no".
    result = score(sample, states(e1="c", e2="na", w1="b", gate="no", w2="a", m1="b"))

    assert result.dimensions["water"] == 100


def test_unscored_question_has_no_dimension_weight(sample: Questionnaire) -> None:
    result = score(sample, states(e1="d", e2="b", w1="b", gate="yes", w2="b", m1="b"))

    assert result.overall == 100
    assert result.level == "advanced"
    assert result.actions == []


def test_actions_ranked_by_weighted_gain(sample: Questionnaire) -> None:
    result = score(sample, states(e1="c", e2="a", w1="b", gate="yes", w2="a", m1="a"))

    # Gains: e2 2×(3-0)=6, w2 3, e1 1, m1 1 (e1 first: questionnaire order breaks the tie).
    assert [action.question_id for action in result.actions] == ["e2", "w2", "e1"]
    assert [action.gain for action in result.actions] == [6, 3, 1]
    assert result.actions[0].article_id == "cleaner-production"
    assert result.actions[0].dimension == "energy"
    assert result.actions[0].overall_gain == pytest.approx(40.0)  # 6 of 15 weighted points


def test_all_not_applicable_is_unscored(tmp_path: Path) -> None:
    content = questionnaire("tiny", [question("t1", answers=[answer("a", 0), answer("b", 1), answer("na", not_applicable=True)])])
    write(tmp_path / "q", "tiny", content)
    tiny = load_questionnaires(tmp_path / "q", content_dir(tmp_path / "content", [ARTICLE]))["tiny"]

    result = score(tiny, states(t1="na"))

    assert result.overall is None
    assert result.level == "unscored"
    assert result.dimensions == {"energy": None}


@pytest.mark.parametrize(
    ("overall", "level"),
    [
        (0.0, "beginner"),
        (39.9, "beginner"),
        (40.0, "improving"),
        (69.9, "improving"),
        (70.0, "advanced"),
        (100.0, "advanced"),
        (None, "unscored"),
    ],
)
def test_level_boundaries(overall: float | None, level: str) -> None:
    assert level_for(overall) == level


def test_level_thresholds_descend() -> None:
    bounds = [bound for bound, _name in LEVEL_THRESHOLDS]
    assert bounds == sorted(bounds, reverse=True)
    assert bounds[-1] == 0


def test_whole_points_round_half_up() -> None:
    assert whole_points(42.5) == 43
    assert whole_points(42.4) == 42
    assert whole_points(66.7) == 67


def test_comparison_in_shown_points() -> None:
    current = {"overall": 55.4, "energy": 60.0, "water": None, "materials": 50.0}
    previous = {"overall": 40.6, "energy": 45.0, "water": 10.0}

    changes = compare(current, previous)

    assert changes == {"overall": 14, "energy": 15}  # 55 - 41; water and materials lack a value on one side


def test_flow_skips_hidden_questions(sample: Questionnaire) -> None:
    answers = states(e1="a", e2="a", w1="a", gate="no")

    upcoming = next_question(sample, answers)

    assert upcoming is not None
    assert upcoming.id == "m1"
    assert progress(sample, answers, "m1") == (5, 5)


def test_progress_total_shrinks_when_branch_closes(sample: Questionnaire) -> None:
    assert progress(sample, {}, "e1") == (1, 6)
    assert progress(sample, states(e1="a", e2="a", w1="a", gate="no"), "m1") == (5, 5)
    assert progress(sample, states(e1="a", e2="a", w1="a", gate="yes"), "w2") == (5, 6)


def test_back_passes_over_hidden_questions(sample: Questionnaire) -> None:
    answers = states(e1="a", e2="a", w1="a", gate="no")

    before_m1 = previous_question(sample, answers, "m1")
    before_e1 = previous_question(sample, answers, "e1")

    assert before_m1 is not None
    assert before_m1.id == "gate"
    assert before_e1 is None


def test_skipped_gate_hides_show_if_question(sample: Questionnaire) -> None:
    upcoming = next_question(sample, states(e1="a", e2="a", w1="a", gate=None))

    assert upcoming is not None
    assert upcoming.id == "m1"
