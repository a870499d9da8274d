"""``spin events import``: read a CSV or iCalendar file and upsert every good row.

Each row is upserted in its own savepoint, so a row the database rejects is reported
and rolled back alone while the good rows still import.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot.events.catalogue import upsert_event
from bot.events.csv_io import read_csv_file
from bot.events.ical import read_ical
from bot.events.problems import ImportProblem
from bot.events.records import EventRecord
from bot.scheduler.policy import ReminderPolicy

logger = logging.getLogger(__name__)

CSV_SUFFIXES = (".csv",)
ICAL_SUFFIXES = (".ics", ".ical", ".ifb", ".icalendar")


@dataclasses.dataclass
class ImportReport:
    """Counts and problems of one import."""

    file: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    cancelled: int = 0
    notices: int = 0
    problems: list[ImportProblem] = dataclasses.field(default_factory=list)

    @property
    def imported(self) -> int:
        """Return the number of rows that were stored (new, updated or already equal)."""
        return self.created + self.updated + self.unchanged


def read_events_file(path: Path) -> Iterator[tuple[int | None, EventRecord | ImportProblem]]:
    """Yield (line, record or problem) from a CSV or iCalendar file, chosen by suffix."""
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        yield from read_csv_file(path)
    elif suffix in ICAL_SUFFIXES:
        yield from read_ical(path.read_bytes(), str(path))
    else:
        yield None, ImportProblem(str(path), None, f"unknown file type {suffix!r}: use .csv or .ics")


def import_events(session: Session, path: Path, now: dt.datetime, policy: ReminderPolicy) -> ImportReport:
    """Import every valid event of ``path`` and report the rest; the caller commits."""
    report = ImportReport(file=str(path))
    seen: dict[str, int | None] = {}
    for line, item in read_events_file(path):
        if isinstance(item, ImportProblem):
            report.problems.append(item)
            continue
        if item.uid in seen:
            report.problems.append(
                ImportProblem(
                    str(path), line, f"uid {item.uid!r} repeats the event at line {seen[item.uid]}: give each event its own uid"
                )
            )
            continue
        seen[item.uid] = line
        try:
            with session.begin_nested():
                result = upsert_event(session, item, now, policy)
        except SQLAlchemyError as error:
            logger.warning("event uid %s at %s:%s was rejected by the database: %s", item.uid, path, line, error)
            report.problems.append(
                ImportProblem(
                    str(path),
                    line,
                    f"the database rejected the event ({type(error).__name__}); the log has the details",
                )
            )
            continue
        if result.outcome == "created":
            report.created += 1
        elif result.outcome == "updated":
            report.updated += 1
        else:
            report.unchanged += 1
        report.cancelled += int(result.cancelled)
        report.notices += result.notices
    logger.info(
        "imported %s: %d new, %d updated, %d unchanged, %d problems",
        path,
        report.created,
        report.updated,
        report.unchanged,
        len(report.problems),
    )
    return report
