"""Typed answers matched to answer buttons, and control words in four languages."""

from __future__ import annotations

import pytest

from actions.assessment.loader import load_questionnaires
from actions.assessment.matching import Control, fold, match_answer, match_control, parse_number
from actions.assessment.schema import Question


@pytest.fixture(scope="module")
def energy() -> Question:
    question = load_questionnaires()["general"].question("c_energy")
    assert question is not None
    return question


@pytest.fixture(scope="module")
def water() -> Question:
    question = load_questionnaires()["general"].question("c_water")
    assert question is not None
    return question


@pytest.mark.parametrize(
    ("text", "number"), [("2", 2), ("#3", 3), (" 4. ", 4), ("(1)", 1), ("៣", 3), ("໒", 2), ("x2", None), ("", None)]
)
def test_parse_number(text: str, number: int | None) -> None:
    assert parse_number(text) == number


@pytest.mark.parametrize(
    ("text", "answer_id"),
    [
        ("2", "b"),
        ("4", "d"),
        ("៤", "d"),
        ("Noted monthly", "b"),
        ("noted MONTHLY!", "b"),
        ("Ghi hằng tháng", "b"),
        ("ghi hang thang", "b"),
        ("chi tra hoa don", "a"),
        ("Theo dõi và đã giảm", "d"),
        ("កត់ត្រារៀងរាល់ខែ", "b"),
        ("ຈ່າຍບິນເທົ່ານັ້ນ", "a"),
        ("we have tracked and reduced it", "d"),
        ("biggest users", "c"),
    ],
)
def test_typed_answer_matches(energy: Question, text: str, answer_id: str) -> None:
    assert match_answer(energy.answers, text).answer_id == answer_id


@pytest.mark.parametrize("text", ["9", "0", "hello there", "what is a water meter?", "ok"])
def test_unrelated_text_does_not_match(energy: Question, text: str) -> None:
    result = match_answer(energy.answers, text)

    assert result.answer_id is None
    assert not result.ambiguous


def test_text_fitting_two_answers_is_ambiguous(water: Question) -> None:
    # "measured" is part of three answers of the water question, "tái dùng" of two.
    result = match_answer(water.answers, "measured")

    assert result.answer_id == "b"  # the exact text of "Measured" wins
    partial = match_answer(water.answers, "tai dung")
    assert partial.answer_id is None
    assert partial.ambiguous


def test_not_applicable_answer_by_number(water: Question) -> None:
    assert match_answer(water.answers, "5").answer_id == "na"
    assert match_answer(water.answers, "khong dung nuoc").answer_id == "na"


@pytest.mark.parametrize(
    ("text", "control"),
    [
        ("back", Control.BACK),
        ("/skip", Control.SKIP),
        ("Pause", Control.PAUSE),
        ("cancel", Control.CANCEL),
        ("quay lại", Control.BACK),
        ("quay lai", Control.BACK),
        ("bo qua", Control.SKIP),
        ("Tạm dừng", Control.PAUSE),
        ("huy", Control.CANCEL),
        ("ថយក្រោយ", Control.BACK),
        ("រំលង", Control.SKIP),
        ("ផ្អាក", Control.PAUSE),
        ("បោះបង់", Control.CANCEL),
        ("ກັບຄືນ", Control.BACK),
        ("ຂ້າມ", Control.SKIP),
        ("ຢຸດຊົ່ວຄາວ", Control.PAUSE),
        ("ຍົກເລີກ", Control.CANCEL),
    ],
)
def test_control_words(text: str, control: Control) -> None:
    assert match_control(text) is control


@pytest.mark.parametrize("text", ["backpack", "please skip the dyes question for now", "2", ""])
def test_control_needs_whole_message(text: str) -> None:
    assert match_control(text) is None


def test_fold_keeps_khmer_and_lao_marks() -> None:
    assert fold("ກັບຄືນ") == "ກັບຄືນ"
    assert fold("ថយក្រោយ។") == "ថយក្រោយ"
    assert fold("Bỏ  qua!") == "bo qua"
