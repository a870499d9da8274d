"""``spin events``: the events catalogue from the command line (import, export, list, add, cancel)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from bot.settings import get_settings

app = typer.Typer(help="Events catalogue: import, export, list, add and cancel workshops and trade fairs.", no_args_is_help=True)

#: Exit code when some rows of an import were rejected (the good rows were still imported).
EXIT_SOME_ROWS_REJECTED = 2


def _engine(url: str) -> Any:
    from bot.storage.db import create_db_engine, init_database

    engine = create_db_engine(url or None)
    init_database(engine)
    return engine


def _policy() -> Any:
    from bot.scheduler.policy import ReminderPolicy

    return ReminderPolicy.from_settings(get_settings())


def _event_json(event: Any) -> dict[str, Any]:
    return {
        "id": event.id,
        "uid": event.uid,
        "kind": event.kind,
        "status": event.status,
        "version": event.version,
        "titles": event.titles,
        "starts_at": event.starts_at.isoformat(),
        "ends_at": event.ends_at.isoformat() if event.ends_at else None,
        "timezone": event.timezone,
        "country": event.country,
        "province": event.province,
        "place": event.place,
        "sectors": event.sectors,
        "organiser": event.organiser,
        "url": event.url,
        "is_sample": event.is_sample,
    }


@app.command("import")
def import_file(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV (.csv) or iCalendar (.ics) file."),
    url: str = typer.Option("", "--db", help="SQLAlchemy URL; default: DATABASE_URL or SQLite in var/."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
) -> None:
    """Import events; re-importing an unchanged file changes nothing, a changed event is updated in place.

    Rows with errors are listed as FILE:LINE: REASON on stderr and the exit code is 2;
    the good rows are imported all the same.
    """
    from bot.events.importer import import_events
    from bot.storage.db import session_scope
    from bot.storage.types import utc_now

    with session_scope(_engine(url)) as session:
        report = import_events(session, path, utc_now(), _policy())
    if as_json:
        payload = {
            "file": report.file,
            "created": report.created,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "cancelled": report.cancelled,
            "notices": report.notices,
            "problems": [{"file": problem.file, "line": problem.line, "reason": problem.reason} for problem in report.problems],
        }
        typer.echo(json.dumps(payload, ensure_ascii=False))
    else:
        typer.echo(
            f"{path}: {report.created} new, {report.updated} updated, {report.unchanged} unchanged, "
            f"{len(report.problems)} rejected; {report.notices} change notices queued"
        )
    for problem in report.problems:
        print(str(problem), file=sys.stderr)
    if report.problems:
        raise typer.Exit(EXIT_SOME_ROWS_REJECTED)


@app.command("export")
def export_file(
    path: Path = typer.Argument(..., dir_okay=False, help="Output file: .csv or .ics."),
    url: str = typer.Option("", "--db", help="SQLAlchemy URL; default: DATABASE_URL or SQLite in var/."),
    upcoming: bool = typer.Option(False, "--upcoming", help="Only events that have not started."),
) -> None:
    """Write the catalogue as CSV or iCalendar (every language and field, ready to re-import)."""
    from bot.events.catalogue import all_events
    from bot.events.csv_io import write_csv
    from bot.events.ical import export_calendar
    from bot.storage.db import session_scope
    from bot.storage.types import utc_now

    suffix = path.suffix.lower()
    if suffix not in (".csv", ".ics"):
        typer.echo(f"error: unknown file type {suffix!r}: name the output .csv or .ics", err=True)
        raise typer.Exit(1)
    now = utc_now()
    with session_scope(_engine(url)) as session:
        events = all_events(session, now=now if upcoming else None)
        if suffix == ".csv":
            path.write_text(write_csv(events), encoding="utf-8")
        else:
            path.write_bytes(export_calendar(events, now))
    typer.echo(f"wrote {len(events)} events to {path}")


@app.command("list")
def list_events(
    url: str = typer.Option("", "--db", help="SQLAlchemy URL; default: DATABASE_URL or SQLite in var/."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per event."),
    include_past: bool = typer.Option(False, "--all", help="Include events that have started."),
    language: str = typer.Option("en", "--lang", help="Language of titles: vi, en, km or lo."),
) -> None:
    """List events in start order (upcoming only unless --all)."""
    from bot.events.catalogue import all_events, localized
    from bot.events.presentation import when_text
    from bot.i18n import normalize_language
    from bot.storage.db import session_scope
    from bot.storage.types import utc_now

    language = normalize_language(language)
    with session_scope(_engine(url)) as session:
        events = all_events(session, now=None if include_past else utc_now())
        for event in events:
            if as_json:
                typer.echo(json.dumps(_event_json(event), ensure_ascii=False))
                continue
            sample = " [sample]" if event.is_sample else ""
            typer.echo(
                f"{event.id:>5}  {event.status:<9}  {event.kind:<10}  {event.country or '-':<2}  "
                f"{when_text(event, language)}  {localized(event.titles, language)}{sample}"
            )
    if not events and not as_json:
        typer.echo("no events: import some with `spin events import knowledge_base/events/samples.csv`")


@app.command("add")
def add_event(
    uid: str = typer.Option(..., "--uid", help="Stable unique id; adding the same uid again updates the event."),
    kind: str = typer.Option(..., "--kind", help="workshop, training, trade_fair or exhibition."),
    title: list[str] = typer.Option(
        ..., "--title", help="Title as LANG=TEXT (e.g. en=Sample: Dyeing workshop); repeat per language."
    ),
    start: str = typer.Option(..., "--start", help="Start, ISO 8601; without an offset it is local time at the venue."),
    country: str = typer.Option(..., "--country", help="vn, la or kh."),
    end: str = typer.Option("", "--end", help="End, ISO 8601 (same rules as --start)."),
    timezone: str = typer.Option("", "--timezone", help="Venue time zone; default: the country's."),
    place: str = typer.Option("", "--place", help="Venue name and address."),
    province: str = typer.Option("", "--province", help="Province or city."),
    sector: list[str] = typer.Option([], "--sector", help="Sector id; repeat for several; none means every sector."),
    organiser: str = typer.Option("", "--organiser", help="Organiser's name."),
    link: str = typer.Option("", "--url", help="Web page of the event (http or https)."),
    description: list[str] = typer.Option([], "--description", help="Description as LANG=TEXT; repeat per language."),
    sample: bool = typer.Option(False, "--sample", help="Mark the event as a sample (not a real event)."),
    url: str = typer.Option("", "--db", help="SQLAlchemy URL; default: DATABASE_URL or SQLite in var/."),
) -> None:
    """Add an event, or update the event with the same uid."""
    from bot.events.catalogue import upsert_event
    from bot.events.records import InvalidEventError, build_record
    from bot.storage.db import session_scope
    from bot.storage.types import utc_now

    try:
        record = build_record(
            uid=uid,
            kind=kind,
            titles=_language_pairs(title, "--title"),
            descriptions=_language_pairs(description, "--description"),
            starts_at=start,
            ends_at=end or None,
            country=country,
            timezone=timezone or None,
            place=place,
            province=province,
            sectors=sector,
            organiser=organiser,
            url=link,
            is_sample=sample,
        )
    except InvalidEventError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    with session_scope(_engine(url)) as session:
        result = upsert_event(session, record, utc_now(), _policy())
        typer.echo(f"event {result.event.id} {result.outcome} (version {result.event.version}, status {result.event.status})")


def _language_pairs(values: list[str], option: str) -> dict[str, str | None]:
    pairs: dict[str, str | None] = {}
    for value in values:
        language, separator, text = value.partition("=")
        if not separator:
            typer.echo(f"error: {option} {value!r} is invalid: write LANG=TEXT, e.g. en=Sample: Dyeing workshop", err=True)
            raise typer.Exit(1)
        pairs[language.strip().lower()] = text
    return pairs


@app.command("cancel")
def cancel(
    event_text: str = typer.Argument(..., metavar="EVENT_ID", help="Event id (see `spin events list`)."),
    url: str = typer.Option("", "--db", help="SQLAlchemy URL; default: DATABASE_URL or SQLite in var/."),
) -> None:
    """Cancel an event; everyone who follows it gets one cancellation notice."""
    from bot.events.catalogue import EventNotFoundError, cancel_event
    from bot.events.ids import MAX_DATABASE_INTEGER, parse_database_integer
    from bot.storage.db import session_scope
    from bot.storage.types import utc_now

    event_id = parse_database_integer(event_text)
    if event_id is None:
        typer.echo(
            f"error: event id {event_text!r} is invalid: give a whole number from 1 to {MAX_DATABASE_INTEGER}, "
            "as `spin events list` shows",
            err=True,
        )
        raise typer.Exit(1)
    try:
        with session_scope(_engine(url)) as session:
            result = cancel_event(session, event_id, utc_now(), _policy())
    except EventNotFoundError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    if result.outcome == "unchanged":
        typer.echo(f"event {event_id} was already cancelled")
    else:
        typer.echo(f"event {event_id} cancelled; {result.notices} notices queued")
