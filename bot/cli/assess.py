"""``spin assess``: self-assessment runs and results for Green Office staff.

Exports carry no personal data beyond the user id and the sector unless the owner
consented (``users.consent_at``): channel, external id, language, country and the
times of a run are left empty for everyone else.
"""

from __future__ import annotations

import contextlib
import csv
import enum
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.storage.db import create_db_engine, session_scope
from bot.storage.models import Assessment, AssessmentAnswer, AssessmentResult, User

app = typer.Typer(help="Self-assessments: list runs, export results, check questionnaires.", no_args_is_help=True)

#: Dimension columns of the export, in chart order (kept in step with actions.assessment.schema.Dimension).
DIMENSIONS = (
    "materials",
    "energy",
    "water",
    "waste_packaging",
    "chemicals",
    "health_safety",
    "design_innovation",
    "market_communication",
)
STATUSES = ("in_progress", "paused", "completed", "cancelled")
#: Columns filled only for owners who consented to data use.
PERSONAL_COLUMNS = ("channel", "external_id", "language", "country", "started_at", "completed_at")
RUN_COLUMNS = (
    "assessment_id",
    "user_id",
    "sector",
    "questionnaire_id",
    "questionnaire_version",
    "status",
    "overall",
    "level",
    *(f"score_{dimension}" for dimension in DIMENSIONS),
    "consented",
    *PERSONAL_COLUMNS,
)
ANSWER_COLUMNS = (
    "assessment_id",
    "user_id",
    "sector",
    "questionnaire_id",
    "question_id",
    "answer_id",
    "points",
    "not_applicable",
    "skipped",
    "consented",
    "answered_at",
)


class ExportFormat(enum.StrEnum):
    """File formats of ``spin assess export``."""

    CSV = "csv"


def _check_status(status: str) -> str:
    if status and status != "all" and status not in STATUSES:
        raise typer.BadParameter(f"unknown status {status!r}: use one of {', '.join(STATUSES)} or all")
    return status


def _runs(
    session: Session, status: str, sector: str, limit: int | None
) -> list[tuple[Assessment, User, AssessmentResult | None]]:
    query = (
        select(Assessment, User, AssessmentResult)
        .join(User, User.id == Assessment.user_id)
        .outerjoin(AssessmentResult, AssessmentResult.assessment_id == Assessment.id)
        .order_by(Assessment.id)
    )
    if status and status != "all":
        query = query.where(Assessment.status == status)
    if sector:
        query = query.where(Assessment.sector == sector)
    if limit is not None:
        query = query.order_by(None).order_by(Assessment.id.desc()).limit(limit)
    rows = [(row[0], row[1], row[2]) for row in session.execute(query)]
    return sorted(rows, key=lambda row: row[0].id)


def _iso(value: Any) -> str:
    return value.isoformat() if value is not None else ""


def _score(value: Any) -> str:
    return "" if value is None else f"{float(value):.1f}"


def run_row(assessment: Assessment, user: User, result: AssessmentResult | None) -> dict[str, str]:
    """Return one export row; personal columns stay empty unless the owner consented."""
    consented = user.consent_at is not None
    scores = result.dimension_scores if result is not None else {}
    row = {
        "assessment_id": str(assessment.id),
        "user_id": str(user.id),
        "sector": assessment.sector or "",
        "questionnaire_id": assessment.questionnaire_id,
        "questionnaire_version": assessment.questionnaire_version or "",
        "status": assessment.status,
        "overall": _score(result.overall) if result is not None and result.level != "unscored" else "",
        "level": result.level if result is not None else "",
        **{f"score_{dimension}": _score(scores.get(dimension)) for dimension in DIMENSIONS},
        "consented": "yes" if consented else "no",
    }
    personal = {
        "channel": user.channel,
        "external_id": user.external_id,
        "language": user.language or "",
        "country": user.country or "",
        "started_at": _iso(assessment.started_at),
        "completed_at": _iso(assessment.completed_at),
    }
    row.update({column: personal[column] if consented else "" for column in PERSONAL_COLUMNS})
    return row


@contextlib.contextmanager
def _open_output(output: Path | None) -> Iterator[IO[str]]:
    if output is None:
        yield sys.stdout
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8", newline="") as handle:
        yield handle


@app.command("list")
def list_runs(
    status: str = typer.Option("", help="Only runs with this status: in_progress, paused, completed or cancelled."),
    sector: str = typer.Option("", help="Only runs of this sector (textiles, footwear, furniture, handicraft, food, general)."),
    limit: int = typer.Option(50, min=1, help="Show at most this many runs, newest first."),
    url: str = typer.Option("", help="SQLAlchemy URL; default: DATABASE_URL or SQLite in var/."),
) -> None:
    """List self-assessment runs with their status and scores."""
    _check_status(status)
    engine = create_db_engine(url or None)
    table = Table("id", "user", "questionnaire", "status", "answers", "overall", "level", "updated (UTC)")
    with session_scope(engine) as session:
        runs = _runs(session, status, sector, limit)
        counts = dict(
            session.execute(
                select(AssessmentAnswer.assessment_id, func.count())
                .where(AssessmentAnswer.assessment_id.in_([run[0].id for run in runs]))
                .group_by(AssessmentAnswer.assessment_id)
            ).all()
        )
        for assessment, user, result in runs:
            overall = _score(result.overall) if result is not None and result.level != "unscored" else ""
            table.add_row(
                str(assessment.id),
                str(user.id),
                assessment.questionnaire_id,
                assessment.status,
                str(counts.get(assessment.id, 0)),
                overall,
                result.level if result is not None else "",
                assessment.updated_at.strftime("%Y-%m-%d %H:%M"),
            )
    Console(width=140).print(table)
    engine.dispose()


@app.command("export")
def export(
    export_format: ExportFormat = typer.Option(ExportFormat.CSV, "--format", help="Output format."),
    output: Path | None = typer.Option(
        None, "--output", "-o", dir_okay=False, help="Write to this file instead of standard output."
    ),
    answers: bool = typer.Option(False, "--answers", help="One row per answer instead of one row per run."),
    status: str = typer.Option("completed", help="Runs with this status, or 'all'."),
    sector: str = typer.Option("", help="Only runs of this sector."),
    url: str = typer.Option("", help="SQLAlchemy URL; default: DATABASE_URL or SQLite in var/."),
) -> None:
    """Export runs (or their answers) as CSV, without personal data of owners who did not consent."""
    _check_status(status)
    engine = create_db_engine(url or None)
    with session_scope(engine) as session, _open_output(output) as handle:
        runs = _runs(session, status, sector, None)
        if answers:
            writer = csv.DictWriter(handle, fieldnames=ANSWER_COLUMNS, lineterminator="\n")
            writer.writeheader()
            by_id = {assessment.id: (assessment, user) for assessment, user, _result in runs}
            rows = session.scalars(
                select(AssessmentAnswer)
                .where(AssessmentAnswer.assessment_id.in_(list(by_id)))
                .order_by(AssessmentAnswer.assessment_id, AssessmentAnswer.sequence)
            )
            for answer in rows:
                assessment, user = by_id[answer.assessment_id]
                consented = user.consent_at is not None
                writer.writerow(
                    {
                        "assessment_id": answer.assessment_id,
                        "user_id": user.id,
                        "sector": assessment.sector or "",
                        "questionnaire_id": assessment.questionnaire_id,
                        "question_id": answer.question_id,
                        "answer_id": answer.answer_id or "",
                        "points": "" if answer.points is None else answer.points,
                        "not_applicable": "yes" if answer.not_applicable else "no",
                        "skipped": "yes" if answer.skipped else "no",
                        "consented": "yes" if consented else "no",
                        "answered_at": _iso(answer.answered_at) if consented else "",
                    }
                )
        else:
            writer = csv.DictWriter(handle, fieldnames=RUN_COLUMNS, lineterminator="\n")
            writer.writeheader()
            for assessment, user, result in runs:
                writer.writerow(run_row(assessment, user, result))
    engine.dispose()
    if output is not None:
        typer.echo(f"wrote {len(runs)} run(s) ({export_format.value}) to {output}", err=True)


@app.command("check")
def check(
    folder: Path = typer.Option(
        None, "--dir", file_okay=False, help="Questionnaire folder; default: knowledge_base/assessments."
    ),
) -> None:
    """Validate the questionnaire files and print each questionnaire's size."""
    from actions.assessment.flow import shown_questions
    from actions.assessment.loader import ASSESSMENTS_DIR, QuestionnaireError, load_questionnaires

    try:
        questionnaires = load_questionnaires(folder or ASSESSMENTS_DIR)
    except QuestionnaireError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from error
    for questionnaire in questionnaires.values():
        branched = sum(1 for question in questionnaire.questions if question.show_if or question.skip_if)
        typer.echo(
            f"{questionnaire.id}: {len(shown_questions(questionnaire, {}))} questions "
            f"({branched} behind a branch), version {questionnaire.version}"
        )


def _button_cycle(value: str) -> list[int]:
    try:
        numbers = [int(part) for part in value.split(",") if part.strip()]
    except ValueError as error:
        raise typer.BadParameter(f"invalid button list {value!r}: use numbers separated by commas, e.g. 1,3,2") from error
    if any(number < 1 for number in numbers):
        raise typer.BadParameter(f"invalid button list {value!r}: button numbers start at 1")
    return numbers


@app.command("chart")
def chart(
    questionnaire_id: str = typer.Option("general", "--questionnaire", help="Questionnaire id, e.g. textiles."),
    language: str = typer.Option("en", "--language", help="Label language: vi, en, km or lo."),
    buttons: str = typer.Option(
        "2", "--buttons", help="Answer buttons pressed in turn, e.g. 1,3,2 (repeated; the last answer when a question has fewer)."
    ),
    previous_buttons: str = typer.Option("", "--previous-buttons", help="Also draw an earlier run answered with these buttons."),
    output: Path = typer.Option(..., "--output", "-o", dir_okay=False, help="PNG file to write."),
) -> None:
    """Draw the report chart of a run answered with fixed buttons (to preview questionnaire changes)."""
    import datetime as dt

    from actions.assessment.flow import AnswerState, next_question
    from actions.assessment.loader import get_questionnaires
    from actions.assessment.report import PreviousRun, render_chart
    from actions.assessment.scoring import score
    from bot.settings import SUPPORTED_LANGUAGES

    if language not in SUPPORTED_LANGUAGES:
        raise typer.BadParameter(f"unknown language {language!r}: use one of {', '.join(SUPPORTED_LANGUAGES)}")
    questionnaires = get_questionnaires()
    if questionnaire_id not in questionnaires:
        raise typer.BadParameter(f"unknown questionnaire {questionnaire_id!r}: use one of {', '.join(questionnaires)}")
    questionnaire = questionnaires[questionnaire_id]

    def answered_with(cycle: list[int]) -> dict[str, AnswerState]:
        answers: dict[str, AnswerState] = {}
        while (question := next_question(questionnaire, answers)) is not None:
            choices = [answer for answer in question.answers if not answer.not_applicable]
            number = cycle[len(answers) % len(cycle)]
            answers[question.id] = AnswerState(answer_id=choices[min(number, len(choices)) - 1].id)
        return answers

    result = score(questionnaire, answered_with(_button_cycle(buttons)))
    previous = None
    if previous_buttons:
        earlier = score(questionnaire, answered_with(_button_cycle(previous_buttons)))
        previous = PreviousRun(
            completed_at=dt.datetime(2026, 6, 1, 3, 0, tzinfo=dt.UTC), overall=earlier.overall, dimensions=earlier.dimensions
        )
    render_chart(output, questionnaire, result, language, previous, "Asia/Ho_Chi_Minh")
    typer.echo(f"wrote {output} (overall {result.overall})")
