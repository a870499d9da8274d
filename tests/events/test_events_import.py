"""Importing events from CSV and iCalendar, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from bot.events.catalogue import all_events, cancel_event, upcoming_events
from bot.events.csv_io import write_csv
from bot.events.ical import export_calendar
from bot.events.importer import import_events
from bot.scheduler.policy import ReminderPolicy
from bot.settings import PROJECT_ROOT
from bot.storage.db import session_scope
from bot.storage.models import Event, ReminderDelivery
from tests.events.conftest import MORNING, add_user, request_reminder, subscribe

SAMPLES = PROJECT_ROOT / "knowledge_base" / "events"
NOW = MORNING

CSV_HEADER = "uid,kind,status,start,end,country,province,place,sectors,organiser,url,is_sample,title_en,title_vi\n"


def run_import(engine: Engine, path: Path, policy: ReminderPolicy, now: dt.datetime = NOW):  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        return import_events(session, path, now, policy)


def event_count(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.scalar(select(func.count()).select_from(Event)) or 0)


def test_samples_are_marked_as_samples(db_engine: Engine, policy: ReminderPolicy) -> None:
    run_import(db_engine, SAMPLES / "samples.csv", policy)
    run_import(db_engine, SAMPLES / "samples.ics", policy)

    with session_scope(db_engine) as session:
        events = all_events(session)
        assert len(events) == 8
        for event in events:
            assert event.is_sample, event.uid
            assert event.titles["en"].startswith("Sample:"), event.titles
            assert event.url is not None and event.url.startswith("https://example.org/"), event.url
            assert "example" in (event.organiser or "").lower()


def test_csv_import_twice_changes_nothing(db_engine: Engine, policy: ReminderPolicy) -> None:
    first = run_import(db_engine, SAMPLES / "samples.csv", policy)
    second = run_import(db_engine, SAMPLES / "samples.csv", policy)

    assert (first.created, first.updated, first.problems) == (6, 0, [])
    assert (second.created, second.updated, second.unchanged) == (0, 0, 6)
    assert event_count(db_engine) == 6


def test_ical_import_twice_no_duplicates(db_engine: Engine, policy: ReminderPolicy) -> None:
    first = run_import(db_engine, SAMPLES / "samples.ics", policy)
    with session_scope(db_engine) as session:
        versions = {event.uid: (event.id, event.version) for event in all_events(session)}

    second = run_import(db_engine, SAMPLES / "samples.ics", policy)

    assert (first.created, first.problems) == (2, [])
    assert (second.created, second.updated, second.unchanged) == (0, 0, 2)
    assert event_count(db_engine) == 2
    with session_scope(db_engine) as session:
        assert {event.uid: (event.id, event.version) for event in all_events(session)} == versions


def test_ical_times_use_venue_zone(db_engine: Engine, policy: ReminderPolicy) -> None:
    run_import(db_engine, SAMPLES / "samples.ics", policy)

    with session_scope(db_engine) as session:
        fair = session.scalars(select(Event).where(Event.uid.like("%natural-dyes%"))).one()
        assert fair.timezone == "Asia/Vientiane"
        assert fair.country == "la"
        assert fair.starts_at == dt.datetime(2027, 7, 9, 2, 0, tzinfo=dt.UTC)
        assert fair.sectors == ["handicraft", "textiles"]
        assert fair.titles["lo"].startswith("ຕົວຢ່າງ")
        assert fair.descriptions["km"]


def test_changed_event_updates_in_place(db_engine: Engine, policy: ReminderPolicy, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        CSV_HEADER
        + "e1,workshop,,2027-03-20 09:00,,vn,Hà Nội,Hall 1,textiles,Example Org,https://example.org/e1,true,Sample: E1,Mẫu: E1\n"
    )
    run_import(db_engine, path, policy)
    with session_scope(db_engine) as session:
        event_id = session.scalars(select(Event.id)).one()

    path.write_text(
        CSV_HEADER
        + "e1,workshop,,2027-03-20 09:00,,vn,Hà Nội,Hall 1,textiles,Example Org,"
        + "https://example.org/e1,true,Sample: E1 renamed,Mẫu: E1\n"
    )
    renamed = run_import(db_engine, path, policy)
    path.write_text(
        CSV_HEADER
        + "e1,workshop,,2027-03-21 14:00,,vn,Hà Nội,Hall 1,textiles,Example Org,"
        + "https://example.org/e1,true,Sample: E1 renamed,Mẫu: E1\n"
    )
    moved = run_import(db_engine, path, policy)

    assert (renamed.updated, moved.updated) == (1, 1)
    with session_scope(db_engine) as session:
        event = session.get(Event, event_id)
        assert event is not None
        assert event.version == 3
        assert event.status == "changed"
        assert event.titles["en"] == "Sample: E1 renamed"
        assert event.starts_at == dt.datetime(2027, 3, 21, 7, 0, tzinfo=dt.UTC)
        assert event.rescheduled_at == NOW
    assert event_count(db_engine) == 1


def test_title_change_keeps_status(db_engine: Engine, policy: ReminderPolicy, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(CSV_HEADER + "e1,workshop,,2027-03-20 09:00,,vn,,,,,,true,Sample: E1,\n")
    run_import(db_engine, path, policy)
    path.write_text(CSV_HEADER + "e1,workshop,,2027-03-20 09:00,,vn,,,,,,true,Sample: E1 (full day),\n")

    report = run_import(db_engine, path, policy)

    assert report.updated == 1
    assert report.notices == 0
    with session_scope(db_engine) as session:
        event = session.scalars(select(Event)).one()
        assert (event.status, event.version) == ("scheduled", 2)


def test_bad_rows_reported_good_rows_imported(db_engine: Engine, policy: ReminderPolicy, tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text(
        CSV_HEADER
        + "ok1,workshop,,2027-03-20 09:00,,vn,,,,,,true,Sample: OK 1,\n"
        + "bad1,party,,2027-03-20 09:00,,vn,,,,,,true,Sample: Bad kind,\n"
        + 'ok2,training,,2027-03-22 09:00,,kh,,"Hall, 2",,,,true,Sample: OK 2,\n'
        + "bad2,workshop,,not a date,,vn,,,,,,true,Sample: Bad date,\n"
        + "ok1,workshop,,2027-03-20 09:00,,vn,,,,,,true,Sample: OK 1 again,\n"
        + "bad3,workshop,,2027-03-20 09:00,,vn,,,,,,true,Sample: Too many,x,y\n"
    )

    report = run_import(db_engine, path, policy)

    assert report.created == 2
    problems = {problem.line: problem for problem in report.problems}
    assert sorted(problems) == [3, 5, 6, 7]
    assert all(problem.file == str(path) for problem in report.problems)
    assert "kind 'party' is invalid" in problems[3].reason
    assert "start 'not a date' is invalid" in problems[5].reason
    assert "repeats the event at line 2" in problems[6].reason
    assert "fields but the header has" in problems[7].reason
    assert str(problems[3]).startswith(f"{path}:3: ")
    assert event_count(db_engine) == 2


def test_missing_column_is_one_file_problem(db_engine: Engine, policy: ReminderPolicy, tmp_path: Path) -> None:
    path = tmp_path / "no-start.csv"
    path.write_text("uid,kind,country,title_en\ne1,workshop,vn,Sample: E1\n")

    report = run_import(db_engine, path, policy)

    assert report.created == 0
    assert len(report.problems) == 1
    assert report.problems[0].line == 1
    assert "start" in report.problems[0].reason


def test_bad_vevent_reported_with_line(db_engine: Engine, policy: ReminderPolicy, tmp_path: Path) -> None:
    path = tmp_path / "mixed.ics"
    path.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
        "BEGIN:VEVENT\r\nUID:good-1\r\nDTSTART;TZID=Asia/Phnom_Penh:20270320T090000\r\nSUMMARY:Sample: Good\r\n"
        "X-SPIN-KIND:training\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:bad-1\r\nDTSTART:someday\r\nSUMMARY:Sample: Bad\r\n"
        "X-SPIN-KIND:training\r\nX-SPIN-COUNTRY:kh\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:bad-2\r\nDTSTART:20270320T090000Z\r\nSUMMARY:Sample: No kind\r\nX-SPIN-COUNTRY:kh\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:bad-3\r\nDTSTART;TZID=Europe/Berlin:20270320T090000\r\nSUMMARY:Sample: Far\r\n"
        "X-SPIN-KIND:training\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )

    report = run_import(db_engine, path, policy)

    assert report.created == 1
    lines = {problem.line: problem.reason for problem in report.problems}
    assert sorted(lines) == [10, 17, 23]
    assert "DTSTART" in lines[10]
    assert "kind is missing" in lines[17]
    assert "Europe/Berlin" in lines[23]
    with session_scope(db_engine) as session:
        good = session.scalars(select(Event)).one()
        assert good.country == "kh"
        assert good.starts_at == dt.datetime(2027, 3, 20, 2, 0, tzinfo=dt.UTC)


def test_not_a_calendar_reported(db_engine: Engine, policy: ReminderPolicy, tmp_path: Path) -> None:
    path = tmp_path / "notes.ics"
    path.write_text("these are my notes\n")

    report = run_import(db_engine, path, policy)

    assert report.created == 0
    assert len(report.problems) == 1
    assert "not an iCalendar file" in report.problems[0].reason


@pytest.mark.parametrize("suffix", [".csv", ".ics"])
def test_export_round_trip_unchanged(db_engine: Engine, policy: ReminderPolicy, tmp_path: Path, suffix: str) -> None:
    run_import(db_engine, SAMPLES / "samples.csv", policy)
    run_import(db_engine, SAMPLES / "samples.ics", policy)
    path = tmp_path / f"export{suffix}"
    with session_scope(db_engine) as session:
        events = all_events(session)
        if suffix == ".csv":
            path.write_text(write_csv(events), encoding="utf-8")
        else:
            path.write_bytes(export_calendar(events, NOW))

    report = run_import(db_engine, path, policy)

    assert (report.created, report.updated, report.unchanged, report.problems) == (0, 0, 8, [])


def test_cancel_through_import_queues_one_notice(db_engine: Engine, policy: ReminderPolicy, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(CSV_HEADER + "e1,workshop,scheduled,2027-03-20 09:00,,vn,,,textiles,,,true,Sample: E1,\n")
    run_import(db_engine, path, policy)
    owner = add_user(db_engine, "501")
    subscriber = add_user(db_engine, "502")
    with session_scope(db_engine) as session:
        event_id = session.scalars(select(Event.id)).one()
    request_reminder(db_engine, owner, event_id, NOW)
    subscribe(db_engine, subscriber, NOW, sector="textiles", country="vn")
    path.write_text(CSV_HEADER + "e1,workshop,cancelled,2027-03-20 09:00,,vn,,,textiles,,,true,Sample: E1,\n")

    report = run_import(db_engine, path, policy, NOW + dt.timedelta(hours=1))
    again = run_import(db_engine, path, policy, NOW + dt.timedelta(hours=2))
    with session_scope(db_engine) as session:
        cancel_event(session, event_id, NOW + dt.timedelta(hours=3), policy)

    assert (report.updated, report.cancelled, report.notices) == (1, 1, 2)
    assert (again.unchanged, again.notices) == (1, 0)
    with session_scope(db_engine) as session:
        notices = session.scalars(select(ReminderDelivery).where(ReminderDelivery.kind.like("cancelled:%"))).all()
        assert sorted(notice.user_id for notice in notices) == [owner, subscriber]
        assert upcoming_events(session, NOW)[1] == 0


def test_cli_import_list_add_cancel(db_engine: Engine, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bot.cli.events import EXIT_SOME_ROWS_REJECTED, app

    url = db_engine.url.render_as_string(hide_password=False)
    path = tmp_path / "mixed.csv"
    path.write_text(
        CSV_HEADER
        + "ok1,workshop,,2099-03-20 09:00,,vn,,,,,,true,Sample: OK 1,\nbad1,party,,2099-03-20 09:00,,vn,,,,,,true,Sample: Bad,\n"
    )
    runner = CliRunner()

    imported = runner.invoke(app, ["import", str(path), "--db", url])
    added = runner.invoke(
        app,
        [
            "add",
            "--uid",
            "cli-1",
            "--kind",
            "training",
            "--title",
            "en=Sample: CLI",
            "--title",
            "vi=Mẫu: CLI",
            "--start",
            "2099-04-01 08:00",
            "--country",
            "kh",
            "--sector",
            "food",
            "--sample",
            "--db",
            url,
        ],
    )
    listed = runner.invoke(app, ["list", "--json", "--db", url])
    events = [json.loads(line) for line in listed.stdout.splitlines()]
    cancelled = runner.invoke(app, ["cancel", str(events[0]["id"]), "--db", url])
    missing = runner.invoke(app, ["cancel", "999999", "--db", url])
    invalid = runner.invoke(
        app,
        ["add", "--uid", "x", "--kind", "party", "--title", "en=Sample", "--start", "2099-01-01", "--country", "vn", "--db", url],
    )

    assert imported.exit_code == EXIT_SOME_ROWS_REJECTED
    assert "1 new" in imported.stdout
    assert f"{path}:3: kind 'party' is invalid" in imported.stderr
    assert added.exit_code == 0, added.output
    assert [event["uid"] for event in events] == ["ok1", "cli-1"]
    assert events[1]["timezone"] == "Asia/Phnom_Penh"
    assert events[1]["sectors"] == ["food"]
    assert cancelled.exit_code == 0
    assert "cancelled" in cancelled.stdout
    assert missing.exit_code == 1
    assert "event 999999 not found" in missing.stderr
    assert invalid.exit_code == 1
    assert "kind 'party' is invalid" in invalid.stderr


@pytest.mark.parametrize("event_id", ["99999999999999999999", "2147483648", "abc", "４２", "12.5"])
def test_cli_cancel_rejects_impossible_id(db_engine: Engine, event_id: str) -> None:
    from typer.testing import CliRunner

    from bot.cli.events import app

    url = db_engine.url.render_as_string(hide_password=False)

    result = CliRunner().invoke(app, ["cancel", event_id, "--db", url])

    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert f"event id {event_id!r} is invalid: give a whole number from 1 to 2147483647" in result.stderr
