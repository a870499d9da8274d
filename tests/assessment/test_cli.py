"""``spin assess list`` and ``spin assess export``: runs and scores without personal data unless consented."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, select
from typer.testing import CliRunner

from bot.cli.assess import PERSONAL_COLUMNS, RUN_COLUMNS
from bot.cli.main import app
from bot.storage.db import session_scope
from bot.storage.models import User
from bot.storage.types import utc_now
from tests.assessment.conftest import Owner
from tests.assessment.test_chat_flow import answer_until_done

OwnerFactory = Callable[..., Owner]
runner = CliRunner()


def database_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def complete_run(owner: Owner, *, consent: bool) -> None:
    owner.press("assess:s:food")
    answer_until_done(owner, choice=2)
    with session_scope(owner.engine) as session:
        user = session.scalars(select(User).where(User.external_id == owner.external_id)).one()
        user.consent_at = utc_now() if consent else None
        user.country = "vn"


def rows_of(output: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(output)))


def test_export_leaves_out_personal_data_without_consent(make_owner: OwnerFactory, db_engine: Engine) -> None:
    agreed = make_owner("vi")
    declined = make_owner("km")
    complete_run(agreed, consent=True)
    complete_run(declined, consent=False)

    result = runner.invoke(app, ["assess", "export", "--format", "csv", "--url", database_url(db_engine)])

    assert result.exit_code == 0, result.output
    rows = rows_of(result.stdout)
    assert list(rows[0]) == list(RUN_COLUMNS)
    by_consent = {row["consented"]: row for row in rows}
    assert set(by_consent) == {"yes", "no"}
    for column in PERSONAL_COLUMNS:
        assert by_consent["no"][column] == "", column
        assert by_consent["yes"][column] != "", column
    assert by_consent["yes"]["external_id"] == agreed.external_id
    assert declined.external_id not in result.stdout
    for row in rows:
        assert row["sector"] == "food"
        assert row["user_id"].isdigit()
        assert row["status"] == "completed"
        assert 0 <= float(row["overall"]) <= 100
        assert row["score_energy"] != ""


def test_export_answers_to_file(make_owner: OwnerFactory, db_engine: Engine, tmp_path: Path) -> None:
    owner = make_owner()
    complete_run(owner, consent=False)
    target = tmp_path / "out" / "answers.csv"

    result = runner.invoke(app, ["assess", "export", "--answers", "--output", str(target), "--url", database_url(db_engine)])

    assert result.exit_code == 0, result.output
    rows = rows_of(target.read_text(encoding="utf-8"))
    assert len(rows) >= 13
    assert {row["answered_at"] for row in rows} == {""}
    assert owner.external_id not in target.read_text(encoding="utf-8")
    assert rows[0]["question_id"] == "c_mat"
    assert rows[0]["answer_id"] == "b"


def test_export_rejects_unknown_status(db_engine: Engine) -> None:
    result = runner.invoke(app, ["assess", "export", "--status", "finished", "--url", database_url(db_engine)])

    assert result.exit_code != 0
    assert "unknown status 'finished'" in result.output


def test_list_shows_runs(make_owner: OwnerFactory, db_engine: Engine) -> None:
    finished = make_owner()
    complete_run(finished, consent=False)
    started = make_owner()
    started.press("assess:s:handicraft")
    started.press_number(1)

    everything = runner.invoke(app, ["assess", "list", "--url", database_url(db_engine)])
    open_only = runner.invoke(app, ["assess", "list", "--status", "in_progress", "--url", database_url(db_engine)])

    assert everything.exit_code == 0, everything.output
    assert "completed" in everything.stdout
    assert "handicraft" in everything.stdout
    assert "food" in everything.stdout
    assert "food" not in open_only.stdout
    assert "handicraft" in open_only.stdout


def test_check_reports_questionnaires() -> None:
    result = runner.invoke(app, ["assess", "check"])

    assert result.exit_code == 0, result.output
    assert "textiles: 14 questions" in result.stdout


def test_check_fails_on_broken_file(tmp_path: Path) -> None:
    (tmp_path / "broken.yml").write_text("id: broken\nversion: 1\nquestions: []\n", encoding="utf-8")

    result = runner.invoke(app, ["assess", "check", "--dir", str(tmp_path)])

    assert result.exit_code == 1
    assert "broken.yml:3: questions" in result.output


def test_chart_preview_written(tmp_path: Path) -> None:
    target = tmp_path / "preview.png"

    result = runner.invoke(
        app,
        [
            "assess",
            "chart",
            "--questionnaire",
            "food",
            "--language",
            "lo",
            "--buttons",
            "1,3",
            "--previous-buttons",
            "2",
            "--output",
            str(target),
        ],
    )

    assert result.exit_code == 0, result.output
    assert target.read_bytes().startswith(b"\x89PNG")


def test_chart_preview_rejects_bad_buttons(tmp_path: Path) -> None:
    result = runner.invoke(app, ["assess", "chart", "--buttons", "1,x", "--output", str(tmp_path / "x.png")])

    assert result.exit_code != 0
    assert "invalid button list" in result.output
