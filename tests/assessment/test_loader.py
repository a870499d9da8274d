"""Questionnaire loading: the shipped files, and broken files failing with file, line and field."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from actions.assessment.flow import AnswerState, visibility
from actions.assessment.loader import ASSESSMENTS_DIR, TELEGRAM_CALLBACK_DATA_MAX_BYTES, QuestionnaireError, load_questionnaires
from actions.assessment.schema import BUTTON_TEXT_MAX_CHARS, Dimension, Questionnaire, visible_length
from actions.reply import button_payload
from bot.settings import SUPPORTED_LANGUAGES, get_settings
from tests.assessment.yaml_samples import ARTICLE, answer, content_dir, line_of, question, questionnaire, texts, write

SECTOR_QUESTIONNAIRES = {"general", "textiles", "footwear", "furniture", "handicraft", "food"}
MIN_QUESTIONS = 10
MAX_QUESTIONS = 14


@pytest.fixture(scope="module")
def shipped() -> dict[str, Questionnaire]:
    return load_questionnaires(ASSESSMENTS_DIR, get_settings().kb_content_dir)


@pytest.fixture
def articles(tmp_path: Path) -> Path:
    return content_dir(tmp_path / "content", [ARTICLE, "cleaner-production"])


def load_error(folder: Path, articles: Path) -> QuestionnaireError:
    with pytest.raises(QuestionnaireError) as caught:
        load_questionnaires(folder, articles)
    return caught.value


# --- the shipped questionnaires ------------------------------------------------------


def test_shipped_questionnaires_load(shipped: dict[str, Questionnaire]) -> None:
    assert set(shipped) == SECTOR_QUESTIONNAIRES
    for questionnaire_id, loaded in shipped.items():
        assert loaded.dimensions == list(Dimension), f"{questionnaire_id} does not cover every dimension"


def _run_lengths(loaded: Questionnaire) -> set[int]:
    """Return the number of questions asked for every combination of the branch questions' answers."""
    branch_targets = sorted({condition.question for q in loaded.questions for condition in (q.show_if, q.skip_if) if condition})
    options = [[*(a.id for a in loaded.question(target).answers), None] for target in branch_targets]  # type: ignore[union-attr]
    lengths = set()
    for combination in itertools.product(*options):
        answers = {q.id: AnswerState(answer_id=q.answers[0].id) for q in loaded.questions}
        for target, answer_id in zip(branch_targets, combination, strict=True):
            answers[target] = AnswerState(answer_id=answer_id, skipped=answer_id is None)
        shown = visibility(loaded, answers)
        lengths.add(sum(1 for value in shown.values() if value))
    return lengths


def test_shipped_run_lengths_fit_ten_minutes(shipped: dict[str, Questionnaire]) -> None:
    for questionnaire_id, loaded in shipped.items():
        lengths = _run_lengths(loaded)
        assert min(lengths) >= MIN_QUESTIONS, f"{questionnaire_id}: as few as {min(lengths)} questions"
        assert max(lengths) <= MAX_QUESTIONS, f"{questionnaire_id}: as many as {max(lengths)} questions"


def test_shipped_branches_change_run_length(shipped: dict[str, Questionnaire]) -> None:
    branched = [questionnaire_id for questionnaire_id, loaded in shipped.items() if len(_run_lengths(loaded)) > 1]
    assert set(branched) >= {"textiles", "footwear", "furniture", "handicraft", "food"}


def test_shipped_buttons_fit_phones_and_telegram(shipped: dict[str, Questionnaire]) -> None:
    for loaded in shipped.values():
        for q in loaded.questions:
            for option in q.answers:
                for language in SUPPORTED_LANGUAGES:
                    assert visible_length(option.text[language]) <= BUTTON_TEXT_MAX_CHARS, option.origin
                payload = button_payload(f"assess:a:{q.id}:{option.id}")
                assert len(payload.encode()) <= TELEGRAM_CALLBACK_DATA_MAX_BYTES, payload


def test_shipped_articles_exist(shipped: dict[str, Questionnaire]) -> None:
    english = get_settings().kb_content_dir / "en"
    for loaded in shipped.values():
        for q in loaded.questions:
            if q.scored:
                assert q.articles, f"{q.id} has no article"
                assert q.action is not None
            for article_id in q.articles:
                assert (english / f"{article_id}.md").exists(), f"{q.id} links missing article {article_id}"


# --- broken files --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("show_if: {question: nowhere, answers: [a]}", "question 'nowhere' does not exist"),
        ("show_if: {question: q3, answers: [a]}", "question 'q3' is not asked before 'q2'"),
        ("skip_if: {question: q1, answers: [z]}", "question 'q1' has no answer 'z'"),
    ],
)
def test_broken_branch_names_file_line_field(tmp_path: Path, articles: Path, condition: str, expected: str) -> None:
    content = questionnaire("sample", [question("q1"), question("q2", extra=condition), question("q3")])
    path = write(tmp_path / "q", "sample", content)

    error = load_error(tmp_path / "q", articles)

    assert len(error.issues) == 1
    issue = error.issues[0]
    assert issue.path.name == path.name
    assert issue.line == line_of(content, condition.split(":")[0] + ":", after="id: q2")
    key = condition.split(":")[0]
    assert issue.field in (f"questions[1].{key}.question", f"questions[1].{key}.answers[0]")
    assert "broken branch" in issue.message
    assert expected in issue.message
    assert f"{path.name}:{issue.line}: questions[1].{key}" in str(error)


def test_duplicate_question_id_in_one_file(tmp_path: Path, articles: Path) -> None:
    content = questionnaire("sample", [question("q1"), question("q2"), question("q1", dimension="water")])
    write(tmp_path / "q", "sample", content)

    error = load_error(tmp_path / "q", articles)

    assert [issue.field for issue in error.issues] == ["questions[2].id"]
    assert error.issues[0].line == line_of(content, "id: q1", after="id: q2")
    assert "duplicate question id 'q1'" in error.issues[0].message
    assert f"sample.yml:{line_of(content, 'id: q1')}" in error.issues[0].message


def test_duplicate_question_id_across_include(tmp_path: Path, articles: Path) -> None:
    module = questionnaire("base", [question("q1")], kind="module")
    sector = questionnaire("sample", [question("q1", dimension="water")], header="include: [base]")
    write(tmp_path / "q", "base", module)
    write(tmp_path / "q", "sample", sector)

    error = load_error(tmp_path / "q", articles)

    assert len(error.issues) == 1
    issue = error.issues[0]
    assert issue.path.name == "sample.yml"
    assert issue.line == line_of(sector, "id: q1")
    assert "also in" in issue.message
    assert "base.yml" in issue.message


def test_duplicate_answer_id(tmp_path: Path, articles: Path) -> None:
    content = questionnaire("sample", [question("q1", answers=[answer("a", 0), answer("b", 1), answer("a", 2)])])
    write(tmp_path / "q", "sample", content)

    error = load_error(tmp_path / "q", articles)

    assert len(error.issues) == 1
    assert error.issues[0].field == "questions[0].answers[2]"
    assert error.issues[0].line == line_of(content, '- id: "a"', after='id: "b"')
    assert "duplicate answer id 'a'" in error.issues[0].message


def test_missing_translation_of_question(tmp_path: Path, articles: Path) -> None:
    no_khmer = '{en: "Where?", vi: "Ở đâu?", lo: "ຢູ່ໃສ?"}'
    content = questionnaire("sample", [question("q1"), question("q2", text=no_khmer)])
    write(tmp_path / "q", "sample", content)

    error = load_error(tmp_path / "q", articles)

    assert len(error.issues) == 1
    issue = error.issues[0]
    assert issue.field == "questions[1].text"
    assert issue.line == line_of(content, "text:", after="id: q2")
    assert "missing translation km" in issue.message
    assert "(question q2)" in issue.message


def test_missing_translation_of_answer(tmp_path: Path, articles: Path) -> None:
    empty_lao = '{en: "Yes", vi: "Có", km: "បាទ", lo: ""}'
    content = questionnaire("sample", [question("q1", answers=[answer("a", 0), answer("b", 1, text=empty_lao)])])
    write(tmp_path / "q", "sample", content)

    error = load_error(tmp_path / "q", articles)

    assert [issue.field for issue in error.issues] == ["questions[0].answers[1].text"]
    assert error.issues[0].line == line_of(content, 'lo: ""')
    assert "missing translation lo" in error.issues[0].message


def test_unknown_article_id(tmp_path: Path, articles: Path) -> None:
    content = questionnaire("sample", [question("q1", articles=f"[{ARTICLE}, no-such-article]")])
    write(tmp_path / "q", "sample", content)

    error = load_error(tmp_path / "q", articles)

    assert [issue.field for issue in error.issues] == ["questions[0].articles[1]"]
    assert "unknown article id 'no-such-article'" in error.issues[0].message


def test_article_check_skipped_without_content(tmp_path: Path) -> None:
    content = questionnaire("sample", [question("q1", articles="[not-written-yet]")])
    write(tmp_path / "q", "sample", content)

    loaded = load_questionnaires(tmp_path / "q", tmp_path / "no-content")

    assert loaded["sample"].questions[0].articles == ("not-written-yet",)


def test_duplicate_yaml_key(tmp_path: Path, articles: Path) -> None:
    content = questionnaire("sample", [question("q1", extra="weight: 2\nweight: 3")])
    write(tmp_path / "q", "sample", content)

    error = load_error(tmp_path / "q", articles)

    assert len(error.issues) == 1
    assert error.issues[0].line == line_of(content, "weight: 3")
    assert "duplicate key 'weight'" in error.issues[0].message


def test_long_button_text_rejected(tmp_path: Path, articles: Path) -> None:
    long_text = texts("Yes, we measure every machine every single day")
    content = questionnaire("sample", [question("q1", answers=[answer("a", 0), answer("b", 1, text=long_text)])])
    write(tmp_path / "q", "sample", content)

    error = load_error(tmp_path / "q", articles)

    assert [issue.field for issue in error.issues] == ["questions[0].answers[1].text"]
    assert "button text too long" in error.issues[0].message


def test_points_rules_for_scored_and_unscored(tmp_path: Path, articles: Path) -> None:
    content = questionnaire(
        "sample",
        [
            question("q1", answers=[answer("a", 0), answer("b")]),
            question("q2", scored=False, answers=[answer("yes", 1), answer("no")]),
        ],
    )
    write(tmp_path / "q", "sample", content)

    error = load_error(tmp_path / "q", articles)

    messages = {issue.field: issue.message for issue in error.issues}
    assert "missing 'points'" in messages["questions[0].answers[1]"]
    assert "takes no points" in messages["questions[1].answers[0]"]


def test_unknown_scale_and_include(tmp_path: Path, articles: Path) -> None:
    content = questionnaire("sample", [question("q1", extra="scale: missing")], header="include: [nowhere]")
    write(tmp_path / "q", "sample", content)

    error = load_error(tmp_path / "q", articles)

    assert [issue.field for issue in error.issues] == ["include[0]"]
    assert "'nowhere' not found" in error.issues[0].message


def test_every_problem_reported_at_once(tmp_path: Path, articles: Path) -> None:
    write(tmp_path / "q", "one", questionnaire("one", [question("q1", extra="show_if: {question: q9, answers: [a]}")]))
    write(tmp_path / "q", "two", questionnaire("two", [question("q1", text='{en: "Only English"}')]))

    error = load_error(tmp_path / "q", articles)

    assert {issue.path.name for issue in error.issues} == {"one.yml", "two.yml"}


def test_scale_and_not_applicable_resolved(tmp_path: Path, articles: Path) -> None:
    header = "\n".join([f"not_applicable_text: {texts('Not applicable')}", "scales:", "  steps:", answer("a", 0), answer("b", 3)])
    module = questionnaire("base", [question("q1")], kind="module", header=header)
    sector = questionnaire("sample", [question("q2", extra="scale: steps\nnot_applicable: true")], header="include: [base]")
    write(tmp_path / "q", "base", module)
    write(tmp_path / "q", "sample", sector)

    loaded = load_questionnaires(tmp_path / "q", articles)["sample"]

    assert [q.id for q in loaded.questions] == ["q1", "q2"]
    second = loaded.questions[1]
    assert [option.id for option in second.answers] == ["a", "b", "na"]
    assert second.answers[2].not_applicable
    assert second.answers[2].text["en"] == "Not applicable"
    assert second.max_points == 3
    assert loaded.version == "base@1,sample@1"


def test_invalid_module_reported_once(tmp_path: Path, articles: Path) -> None:
    module = questionnaire("base", [question("q1", text='{en: "English only"}')], kind="module")
    write(tmp_path / "q", "base", module)
    write(tmp_path / "q", "sample", questionnaire("sample", [question("q2")], header="include: [base]"))

    error = load_error(tmp_path / "q", articles)

    assert [(issue.path.name, issue.field) for issue in error.issues] == [("base.yml", "questions[0].text")]


def test_unquoted_yes_explained(tmp_path: Path, articles: Path) -> None:
    content = questionnaire(
        "sample", [question("q1", scored=False, answers=["      - id: yes\n        text: " + texts("Yes"), answer("no")])]
    )
    write(tmp_path / "q", "sample", content)

    error = load_error(tmp_path / "q", articles)

    assert error.issues[0].field == "questions[0].answers[0].id"
    assert "quote the value" in error.issues[0].message
