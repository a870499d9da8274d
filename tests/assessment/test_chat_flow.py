"""The assessment conversation through the real router, on SQLite and PostgreSQL.

Each owner turn runs in its own database transaction, as in the action server, so
every test also shows that the state lives in the database between turns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select, update

from actions import registry
from actions.context import TurnContext
from actions.handlers.assessment import RESUME_PROMPT_AFTER
from actions.reply import Reply
from bot.i18n import gettext
from bot.settings import SUPPORTED_LANGUAGES
from bot.storage.db import session_scope
from bot.storage.models import Assessment, AssessmentResult, QuestionLog
from bot.storage.types import utc_now
from tests.assessment.conftest import Owner

OwnerFactory = Callable[..., Owner]
GENERAL_QUESTIONS = 11
STAND_IN_ANSWER = "Stand-in answer from the knowledge base."


def answer_until_done(owner: Owner, choice: int = 1, limit: int = 20) -> list[Reply]:
    """Press answer button ``choice`` until the report arrives; return the report replies."""
    for _ in range(limit):
        if not any(command.startswith("assess:a:") for _title, command in owner.buttons):
            return owner.replies
        owner.press_number(choice)
    raise AssertionError("the assessment did not finish")


def answer_until(owner: Owner, question_id: str, choice: int = 1) -> None:
    for _ in range(20):
        if owner.current_question() == question_id:
            return
        owner.press_number(choice)
    raise AssertionError(f"question {question_id} never came")


def result_of(owner: Owner) -> AssessmentResult:
    assessment = owner.assessment()
    with session_scope(owner.engine) as session:
        result = session.scalars(select(AssessmentResult).where(AssessmentResult.assessment_id == assessment.id)).one()
        session.expunge(result)
        return result


@pytest.fixture
def stand_in_kb(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace the knowledge-base handler by one that records the question (retrieval is tested elsewhere)."""
    asked: list[str] = []

    def answer_question(context: TurnContext) -> list[Reply]:
        asked.append(context.text)
        return [Reply(text=STAND_IN_ANSWER, language=context.language, buttons=[("Read more", "kb:article:what-is-spi")])]

    for intent in ("ask_question", "out_of_scope", "nlu_fallback"):
        monkeypatch.setitem(registry.INTENTS, intent, answer_question)
    return asked


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_full_run_by_buttons(make_owner: OwnerFactory, language: str) -> None:
    owner = make_owner(language)

    menu = owner.press("assess:start")
    assert menu[0].text == gettext("assess.choose_sector", language)
    owner.press("assess:s:general")
    assert f"1/{GENERAL_QUESTIONS}" in owner.text

    report = answer_until_done(owner, choice=2)

    assert len(report) == 2
    summary, details = report
    assert summary.text.startswith(gettext("assess.report.title", language, name="").strip().rstrip(":៖").strip())
    assert summary.image is not None
    assert Path(summary.image).is_absolute()
    assert Path(summary.image).read_bytes().startswith(b"\x89PNG")
    assert (
        gettext("assess.level.beginner", language) in summary.text or gettext("assess.level.improving", language) in summary.text
    )
    assert gettext("assess.report.actions", language) in details.text
    article_buttons = [command for _title, command in details.buttons if command.startswith("kb:article:")]
    assert len(article_buttons) == 3
    assert owner.assessment().status == "completed"
    stored = result_of(owner)
    assert stored.chart_path == summary.image
    assert len(stored.actions) == 3
    assert set(stored.dimension_scores) == {
        "materials",
        "energy",
        "water",
        "waste_packaging",
        "chemicals",
        "health_safety",
        "design_innovation",
        "market_communication",
    }


@pytest.mark.parametrize("language", ["vi", "km"])
def test_all_skipped_run_has_no_score(make_owner: OwnerFactory, language: str) -> None:
    owner = make_owner(language)
    owner.press("assess:s:general")

    for _ in range(GENERAL_QUESTIONS + 5):
        if not any(command == "assess:skip" for _title, command in owner.buttons):
            break
        owner.press("assess:skip")
    [report] = owner.replies

    assert gettext("assess.report.all_skipped", language) in report.text
    assert gettext("assess.level.beginner", language) not in report.text
    assert gettext("assess.report.skipped", language, count=1).split("1")[0] not in report.text
    assert report.image is None
    assert [command for _title, command in report.buttons][:2] == ["assess:start", "core:menu"]
    assert owner.assessment().status == "completed"
    stored = result_of(owner)
    assert stored.level == "unscored"
    assert stored.chart_path is None


def test_answers_saved_per_turn(make_owner: OwnerFactory) -> None:
    owner = make_owner()
    owner.press("assess:s:textiles")
    owner.press_number(3)
    owner.press_number(2)

    answers = owner.answers()

    assert answers["c_mat"].answer_id == "c"
    assert answers["c_mat"].points == 2
    assert answers["c_energy"].answer_id == "b"
    assert owner.assessment().current_question_id == "c_water"


def test_branch_hides_questions(make_owner: OwnerFactory) -> None:
    owner = make_owner()
    owner.press("assess:s:textiles")
    answer_until(owner, "tx_wet")
    assert "10/14" in owner.text

    owner.press(owner.answer_command("no"))

    assert owner.current_question() == "tx_fibre"
    assert "11/12" in owner.text
    answer_until_done(owner)
    assert "tx_ww" not in owner.answers()


def test_branch_shows_questions(make_owner: OwnerFactory) -> None:
    owner = make_owner()
    owner.press("assess:s:textiles")
    answer_until(owner, "tx_wet")

    owner.press(owner.answer_command("yes"))

    assert owner.current_question() == "tx_ww"
    assert "11/14" in owner.text


def test_back_skip_pause_and_resume(make_owner: OwnerFactory) -> None:
    owner = make_owner("vi")
    owner.press("assess:s:textiles")
    owner.press_number(1)
    owner.press_number(2)
    assert owner.current_question() == "c_water"

    owner.press("assess:back")
    assert owner.current_question() == "c_energy"
    assert gettext("assess.your_answer", "vi", answer="Ghi hằng tháng") in owner.text

    owner.press("assess:skip")
    assert owner.current_question() == "c_water"
    assert owner.answers()["c_energy"].skipped

    owner.press("assess:pause")
    assert owner.assessment().status == "paused"
    assert gettext("assess.paused", "vi") in owner.text

    prompt = owner.press("assess:start")
    assert "3/14" in prompt[0].text
    assert gettext("assess.button.continue", "vi") == owner.buttons[0][0]
    owner.press_number(1)
    assert owner.current_question() == "c_water"
    assert owner.assessment().status == "in_progress"


def test_back_at_first_question(make_owner: OwnerFactory) -> None:
    owner = make_owner()
    owner.press("assess:s:food")

    owner.press("assess:back")

    assert owner.current_question() == "c_mat"
    assert gettext("assess.first_question", "en") in owner.text


def test_typed_words_for_controls(make_owner: OwnerFactory) -> None:
    owner = make_owner("vi")
    owner.press("assess:s:general")

    owner.say("bo qua")
    assert owner.current_question() == "c_energy"
    owner.say("quay lai")
    assert owner.current_question() == "c_mat"
    owner.say("tam dung")
    assert owner.assessment().status == "paused"


@pytest.mark.parametrize(
    ("language", "typed", "answer_id"),
    [
        ("en", "2", "b"),
        ("vi", "biet nha cung cap", "b"),
        ("km", "ស្គាល់អ្នកផ្គត់ផ្គង់", "b"),
        ("lo", "໔", "d"),
        ("vi", "Không biết", "a"),
    ],
)
def test_typed_answers(make_owner: OwnerFactory, language: str, typed: str, answer_id: str) -> None:
    owner = make_owner(language)
    owner.press("assess:s:general")

    owner.say(typed)

    assert owner.answers()["c_mat"].answer_id == answer_id
    assert owner.current_question() == "c_energy"


def test_affirm_intent_answers_yes_question(make_owner: OwnerFactory) -> None:
    owner = make_owner()
    owner.press("assess:s:textiles")
    answer_until(owner, "tx_wet")

    owner.say("yep, we do", intent="affirm", confidence=0.93)

    assert owner.answers()["tx_wet"].answer_id == "yes"


def test_two_unclear_answers_then_way_out(make_owner: OwnerFactory, stand_in_kb: list[str]) -> None:
    owner = make_owner()
    owner.press("assess:s:general")

    first = owner.say("purple elephants")
    assert gettext("assess.not_understood", "en", count=4) in first[0].text
    assert owner.current_question() == "c_mat"
    assert owner.assessment().failed_attempts == 1

    second = owner.say("maybe tomorrow or so")
    assert gettext("assess.not_understood_again", "en") in second[0].text
    commands = [command for _title, command in owner.buttons]
    assert "assess:skip" in commands
    assert "assess:pause" in commands
    assert owner.assessment().failed_attempts == 2

    third = owner.say("tell me about bamboo")
    assert third[0].text == STAND_IN_ANSWER
    assert third[-1].text == gettext("assess.paused_for_message", "en")
    assert owner.buttons[0][1] == "assess:resume"
    assert owner.assessment().status == "paused"
    assert stand_in_kb == ["tell me about bamboo"]
    assert owner.answers() == {}

    owner.press_number(1)
    assert owner.current_question() == "c_mat"
    assert owner.assessment().failed_attempts == 0


def test_ambiguous_answer_explained(make_owner: OwnerFactory) -> None:
    owner = make_owner("vi")
    owner.press("assess:s:general")
    owner.press_number(1)
    owner.press_number(1)

    owner.say("tai dung")

    assert gettext("assess.ambiguous", "vi", count=5) in owner.text
    assert owner.current_question() == "c_water"


def test_question_answered_then_run_resumes(make_owner: OwnerFactory, stand_in_kb: list[str]) -> None:
    owner = make_owner()
    owner.press("assess:s:general")
    owner.press_number(1)

    replies = owner.say("How can I save electricity in my workshop?", intent="ask_question", confidence=0.92)

    assert replies[0].text == STAND_IN_ANSWER
    assert replies[-1].text.startswith(gettext("assess.back_to_assessment", "en"))
    assert owner.current_question() == "c_energy"
    assert owner.assessment().failed_attempts == 0
    assert stand_in_kb == ["How can I save electricity in my workshop?"]
    assert "c_energy" not in owner.answers()


def test_cancel_asks_then_deletes_answers(make_owner: OwnerFactory) -> None:
    owner = make_owner()
    owner.press("assess:s:general")
    owner.press_number(1)

    owner.press("assess:cancel")
    assert gettext("assess.cancel_confirm", "en", count=1) in owner.text
    owner.press("assess:cancel:no")
    assert owner.current_question() == "c_energy"
    assert owner.assessment().status == "in_progress"

    owner.say("cancel", intent="cancel", confidence=0.98)
    owner.say("yes", intent="affirm", confidence=0.97)

    assert owner.assessment().status == "cancelled"
    assert owner.answers() == {}
    assert gettext("assess.cancelled", "en") in owner.text


def test_cancel_intent_with_pause_word_pauses(make_owner: OwnerFactory) -> None:
    owner = make_owner("km")
    owner.press("assess:s:general")
    owner.press_number(2)

    owner.say("ឈប់សិន", intent="cancel", confidence=0.9)

    assert owner.assessment().status == "paused"
    assert owner.answers()["c_mat"].answer_id == "b"


def test_cancel_without_answers_is_immediate(make_owner: OwnerFactory) -> None:
    owner = make_owner()
    owner.press("assess:s:general")

    owner.press("assess:cancel")

    assert owner.assessment().status == "cancelled"


def test_old_buttons_after_cancel(make_owner: OwnerFactory) -> None:
    owner = make_owner()
    owner.press("assess:s:general")
    old_answer = owner.answer_command("a")
    owner.press("assess:cancel")

    owner.press(old_answer)

    assert gettext("assess.no_open", "en") in owner.text


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_no_open_run_offers_one_start(make_owner: OwnerFactory, language: str) -> None:
    owner = make_owner(language=language)

    owner.press("assess:skip")

    assert gettext("assess.no_open", language) in owner.text
    commands = [command for _title, command in owner.buttons]
    assert commands.count("assess:start") == 1, owner.buttons
    assert (gettext("assess.button.start", language), "assess:start") in owner.buttons
    assert gettext("core.menu.assess", language) not in [title for title, _command in owner.buttons]


def test_stale_button_asks_current_question(make_owner: OwnerFactory) -> None:
    owner = make_owner()
    owner.press("assess:s:general")
    first_question_button = owner.answer_command("d")
    owner.press_number(1)

    owner.press(first_question_button)

    assert gettext("assess.stale_button", "en") in owner.text
    assert owner.current_question() == "c_energy"
    assert owner.answers()["c_mat"].answer_id == "a"


def test_resume_prompt_after_idle(make_owner: OwnerFactory) -> None:
    owner = make_owner("lo")
    owner.press("assess:s:furniture")
    owner.press_number(1)
    owner.press_number(1)
    with session_scope(owner.engine) as session:
        idle_since = utc_now() - RESUME_PROMPT_AFTER - dt.timedelta(minutes=5)
        session.execute(update(Assessment).where(Assessment.id == owner.assessment().id).values(updated_at=idle_since))

    greeting = owner.say("ສະບາຍດີ", intent="greet", confidence=0.99)

    assert greeting[-1].text.startswith(gettext("assess.resume_prompt", "lo", name="X", position=3, total=13).split("(")[0])
    assert "3/13" in greeting[-1].text
    assert owner.assessment().status == "paused"
    owner.say("ແມ່ນ", intent="affirm", confidence=0.95)
    assert owner.current_question() == "c_water"
    assert owner.assessment().status == "in_progress"


def test_start_with_sector_entity(make_owner: OwnerFactory) -> None:
    owner = make_owner()
    owner.say("hello", intent="greet", confidence=0.95)

    owner.say(
        "assess my furniture business",
        intent="start_assessment",
        confidence=0.9,
        entities=[{"entity": "sector", "value": "furniture"}],
    )

    assert owner.current_question() == "c_mat"
    assert owner.assessment().questionnaire_id == "furniture"
    assert "1/13" in owner.text


def test_second_run_compares_with_first(make_owner: OwnerFactory) -> None:
    owner = make_owner()
    owner.press("assess:s:general")
    answer_until_done(owner, choice=1)
    first = result_of(owner)

    owner.press("assess:s:general")
    answer_until(owner, "c_energy", choice=1)
    owner.press_number(4)  # energy: top answer this time
    report = answer_until_done(owner, choice=1)

    second = result_of(owner)
    assert first.dimension_scores["energy"] == 0
    assert second.dimension_scores["energy"] == 100
    summary = report[0].text
    assert "Energy +100" in summary
    assert f"overall +{round(second.overall) - round(first.overall)}" in summary
    assert report[0].image is not None
    assert report[0].image != first.chart_path


def test_failing_side_handler_keeps_run(make_owner: OwnerFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_handler(context: TurnContext) -> list[Reply]:
        context.session.add(QuestionLog(user_id=context.user.id, text="half-written", language="en"))
        context.session.flush()
        raise RuntimeError("retrieval index missing")

    monkeypatch.setitem(registry.INTENTS, "ask_question", broken_handler)
    owner = make_owner()
    owner.press("assess:s:general")
    owner.press_number(1)

    replies = owner.say("How can I save electricity in my workshop?", intent="ask_question", confidence=0.92)

    assert replies[0].text == gettext("core.error", "en")
    assert owner.current_question() == "c_energy"
    assert owner.assessment().status == "in_progress"
    assert owner.answers()["c_mat"].answer_id == "a"
    with session_scope(owner.engine) as session:
        assert session.scalars(select(QuestionLog)).all() == []


def test_old_sector_button_keeps_open_run(make_owner: OwnerFactory) -> None:
    owner = make_owner()
    owner.press("assess:start")
    sector_buttons = list(owner.buttons)
    owner.press("assess:s:general")
    owner.press_number(2)

    owner.press(sector_buttons[0][1])

    assert "2/11" in owner.text
    assert owner.assessment().questionnaire_id == "general"
    assert owner.answers()["c_mat"].answer_id == "b"
    owner.press("assess:restart")
    assert gettext("assess.restart_confirm", "en", count=1) in owner.text
    assert owner.assessment().status != "cancelled"
    owner.press("assess:restart:yes")
    assert owner.assessment().status == "cancelled"
    assert gettext("assess.choose_sector", "en") in owner.text


def test_typed_one_continues_after_prompt(make_owner: OwnerFactory) -> None:
    owner = make_owner()
    owner.press("assess:s:general")
    owner.press_number(1)
    owner.press("assess:pause")
    owner.press("assess:start")

    owner.say("1")

    assert owner.current_question() == "c_energy"
    assert owner.assessment().status == "in_progress"


def test_data_deletion_removes_chart_images(make_owner: OwnerFactory) -> None:
    owner = make_owner("vi")
    owner.press("assess:start")
    owner.press("assess:s:general")
    summary = answer_until_done(owner, choice=2)[0]
    assert summary.image is not None
    chart = Path(summary.image)
    assert chart.is_file()
    unrelated = chart.with_name("assessment-999999.png")
    unrelated.write_bytes(b"another owner's chart")

    owner.turn("/deletedata", intent="delete_my_data")
    done = owner.press("core:delete:yes")

    assert done[0].text == gettext("core.delete.done", "vi")
    assert not chart.exists()
    assert unrelated.exists()


def test_answer_read_as_goodbye_stays_in_run(make_owner: OwnerFactory) -> None:
    owner = make_owner("vi")
    owner.press("assess:s:general")

    replies = owner.say("đầy đủ, có ghi chép", intent="goodbye", confidence=0.62)

    assert gettext("core.goodbye", "vi") not in [reply.text for reply in replies]
    assert owner.current_question() == "c_mat"
    assert owner.assessment().status == "in_progress"


def test_clear_goodbye_still_interrupts_run(make_owner: OwnerFactory) -> None:
    owner = make_owner("en")
    owner.press("assess:s:general")

    replies = owner.say("bye, see you", intent="goodbye", confidence=0.95)

    assert replies[0].text == gettext("core.goodbye", "en")
