"""Whole assessments through the real stack: ``spin chat --script FILE --json`` against Rasa and the action server.

Every input after the first two lines is a button press (``#N``). The resume test stops
both servers in the middle of a run and starts new ones on the same database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.i18n import gettext
from bot.services import start_services
from bot.settings import Settings, get_settings
from bot.storage.db import create_db_engine, session_scope
from bot.storage.migrate import upgrade
from bot.storage.models import Assessment, AssessmentAnswer, AssessmentResult, User

pytestmark = pytest.mark.stack

SPIN = Path(sys.executable).with_name("spin")
GREETINGS = {"en": "hello", "vi": "xin chào", "km": "សួស្តី", "lo": "ສະບາຍດີ"}
START_PAYLOAD = '/press{"cmd":"assess:start"}'
#: Textiles answered with the second button everywhere: "No, done elsewhere" at tx_wet hides two questions.
TEXTILES_SECOND_BUTTON_QUESTIONS = 12
#: One ``spin chat`` script, including loading the CLI, normally takes seconds; this is the hang limit.
SCRIPT_TIMEOUT_SECONDS = 600


def run_script(settings: Settings, lines: list[str], user: str, folder: Path) -> list[dict[str, Any]]:
    """Run ``spin chat --script --json`` against running services; return one object per input."""
    script = folder / f"script-{uuid.uuid4().hex[:8]}.txt"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = {
        **os.environ,
        "RASA_PORT": str(settings.rasa_port),
        "ACTION_PORT": str(settings.action_port),
        "RASA_AUTH_TOKEN": settings.rasa_auth_token,
        "DATABASE_URL": settings.database_url,
        "VAR_DIR": str(settings.var_dir),
    }
    completed = subprocess.run(
        [str(SPIN), "chat", "--script", str(script), "--json", "--user", user],
        capture_output=True,
        text=True,
        env=env,
        timeout=SCRIPT_TIMEOUT_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, f"spin chat failed ({completed.returncode}):\n{completed.stdout}\n{completed.stderr}"
    turns = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    assert len(turns) == len(lines), completed.stdout
    return turns


def images(turn: dict[str, Any]) -> list[str]:
    return [reply["image"] for reply in turn["replies"] if reply.get("image")]


def texts(turn: dict[str, Any]) -> str:
    return "\n".join(reply["text"] for reply in turn["replies"])


def run_of(settings: Settings, user: str) -> tuple[Assessment, dict[str, AssessmentAnswer], AssessmentResult | None]:
    engine = create_db_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            owner = session.scalars(select(User).where(User.channel == "console", User.external_id == user)).one()
            assessment = session.scalars(
                select(Assessment).where(Assessment.user_id == owner.id).order_by(Assessment.id.desc())
            ).first()
            assert assessment is not None
            answers = {
                row.question_id: row
                for row in session.scalars(select(AssessmentAnswer).where(AssessmentAnswer.assessment_id == assessment.id))
            }
            result = session.scalars(select(AssessmentResult).where(AssessmentResult.assessment_id == assessment.id)).first()
            session.expunge_all()
            return assessment, answers, result
    finally:
        engine.dispose()


@pytest.mark.parametrize("language", ["en", "vi", "km", "lo"])
def test_script_runs_whole_assessment(stack_settings: Settings, tmp_path: Path, language: str) -> None:
    user = f"assess-{language}-{uuid.uuid4().hex[:8]}"
    lines = [GREETINGS[language], START_PAYLOAD, "#1", *["#2"] * TEXTILES_SECOND_BUTTON_QUESTIONS]

    turns = run_script(stack_settings, lines, user, tmp_path)

    assert gettext("assess.choose_sector", language) in texts(turns[1])
    assert f"1/{14}" in texts(turns[2])
    assert f"{TEXTILES_SECOND_BUTTON_QUESTIONS}/{TEXTILES_SECOND_BUTTON_QUESTIONS}" in texts(turns[-2])
    report = turns[-1]
    assert report["replies"][0]["language"] == language
    assert gettext("assess.report.dimensions", language) in texts(report)
    chart = images(report)
    assert len(chart) == 1
    assert Path(chart[0]).is_absolute()
    assert Path(chart[0]).read_bytes().startswith(b"\x89PNG")
    assert any(
        button["payload"].startswith('/press{"cmd":"kb:article:') for reply in report["replies"] for button in reply["buttons"]
    )

    assessment, answers, result = run_of(stack_settings, user)
    assert assessment.status == "completed"
    assert assessment.questionnaire_id == "textiles"
    assert len(answers) == TEXTILES_SECOND_BUTTON_QUESTIONS
    assert result is not None
    assert result.chart_path == chart[0]


@pytest.fixture
def own_database(tmp_path: Path) -> Settings:
    """Settings for services of this test only: a fresh SQLite database (models stay in the configured var folder)."""
    database_url = f"sqlite:///{tmp_path / 'spin.db'}"
    engine = create_db_engine(database_url)
    upgrade(engine)
    engine.dispose()
    return get_settings().model_copy(update={"database_url": database_url, "rasa_auth_token": ""})


def test_pause_and_resume_across_restart(own_database: Settings, tmp_path: Path) -> None:
    user = f"assess-restart-{uuid.uuid4().hex[:8]}"
    first_services = start_services(own_database)
    try:
        first = run_script(
            first_services.settings(own_database),
            [GREETINGS["en"], START_PAYLOAD, "#1", "#1", "#2", "#3", "#7"],  # c_waste has 4 answers: button 7 is Pause
            user,
            tmp_path,
        )
    finally:
        first_services.stop()
    assert "4/14" in texts(first[-2])
    assert gettext("assess.paused", "en") in texts(first[-1])
    paused, answers, _result = run_of(own_database, user)
    assert paused.status == "paused"
    assert [answers[question].answer_id for question in ("c_mat", "c_energy", "c_water")] == ["a", "b", "c"]

    second_services = start_services(own_database)
    try:
        second = run_script(
            second_services.settings(own_database),
            [
                GREETINGS["en"],
                '/press{"cmd":"assess:resume"}',
                "How can I reduce plastic packaging for my products?",
                '/press{"cmd":"assess:a:c_waste:a"}',
                *["#1"] * 10,
            ],
            user,
            tmp_path,
        )
    finally:
        second_services.stop()

    welcome = texts(second[0])
    assert "Welcome back" in welcome
    assert "4/14" in welcome
    assert "4/14" in texts(second[1])
    assert "Waste:" in texts(second[1])
    interruption = second[2]["replies"]
    assert len(interruption) >= 2, "the question was not answered before the assessment resumed"
    assert interruption[-1]["text"].startswith(gettext("assess.back_to_assessment", "en"))
    assert "4/14" in interruption[-1]["text"]
    report = second[-1]
    assert len(images(report)) == 1
    assessment, answers, result = run_of(own_database, user)
    assert assessment.id == paused.id
    assert assessment.status == "completed"
    assert len(answers) == 14
    assert result is not None


def test_typed_answers_and_words_through_nlu(stack_settings: Settings, tmp_path: Path) -> None:
    user = f"assess-typed-{uuid.uuid4().hex[:8]}"
    lines = [GREETINGS["vi"], START_PAYLOAD, "#6", "2", "ghi hang thang", "bo qua", "quay lai", "tam dung"]

    turns = run_script(stack_settings, lines, user, tmp_path)

    assert "2/11" in texts(turns[3])
    assert "3/11" in texts(turns[4])
    assert "4/11" in texts(turns[5])
    assert "3/11" in texts(turns[6])
    assert gettext("assess.your_answer", "vi", answer=gettext("assess.skipped_mark", "vi")) in texts(turns[6])
    assert gettext("assess.paused", "vi") in texts(turns[7])
    assessment, answers, _result = run_of(stack_settings, user)
    assert assessment.status == "paused"
    assert answers["c_mat"].answer_id == "b"
    assert answers["c_energy"].answer_id == "b"
    assert answers["c_water"].skipped


def test_question_during_run_answered_by_kb(stack_settings: Settings, tmp_path: Path) -> None:
    user = f"assess-kb-{uuid.uuid4().hex[:8]}"
    lines = [
        GREETINGS["en"],
        START_PAYLOAD,
        "#6",
        "#1",
        "How can I reduce plastic packaging for my products?",
        '/press{"cmd":"assess:a:c_energy:b"}',
    ]

    turns = run_script(stack_settings, lines, user, tmp_path)

    interruption = turns[4]["replies"]
    assert interruption[0]["text"] != gettext("core.error", "en"), "the knowledge-base handler failed: see var/logs/actions.log"
    assert interruption[0]["sources"], "the knowledge base cited no article"
    assert interruption[-1]["text"].startswith(gettext("assess.back_to_assessment", "en"))
    assert "2/11" in interruption[-1]["text"]
    assert "3/11" in texts(turns[5])
    _assessment, answers, _result = run_of(stack_settings, user)
    assert answers["c_energy"].answer_id == "b"
