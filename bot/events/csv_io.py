"""Events as CSV: one row per event, one column per language for titles and descriptions.

Times are ISO 8601; a time without an offset is local time at the venue (``timezone``,
or the country's zone). ``sectors`` lists sector ids separated by ``;`` (empty or
``all`` means every sector).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.events.problems import ImportProblem
from bot.events.records import EventRecord, InvalidEventError, build_record
from bot.settings import SUPPORTED_LANGUAGES
from bot.storage.models import Event

TITLE_COLUMNS = tuple(f"title_{language}" for language in SUPPORTED_LANGUAGES)
DESCRIPTION_COLUMNS = tuple(f"description_{language}" for language in SUPPORTED_LANGUAGES)
#: Every column, in the order ``spin events export`` writes them.
COLUMNS = (
    "uid",
    "kind",
    "status",
    "start",
    "end",
    "timezone",
    "country",
    "province",
    "place",
    "sectors",
    "organiser",
    "url",
    "is_sample",
    *TITLE_COLUMNS,
    *DESCRIPTION_COLUMNS,
)
REQUIRED_COLUMNS = ("uid", "kind", "start", "country")
_SECTOR_SEPARATORS = re.compile(r"[;,|]")


def _record_from_row(row: dict[str, str | None]) -> EventRecord:
    def cell(name: str) -> str | None:
        value = row.get(name)
        return value if value is None else value.strip()

    return build_record(
        uid=cell("uid"),
        kind=cell("kind"),
        status=cell("status"),
        starts_at=cell("start") or "",
        ends_at=cell("end"),
        timezone=cell("timezone"),
        country=cell("country"),
        province=cell("province"),
        place=cell("place"),
        sectors=_SECTOR_SEPARATORS.split(cell("sectors") or ""),
        organiser=cell("organiser"),
        url=cell("url"),
        is_sample=cell("is_sample"),
        titles={language: cell(f"title_{language}") for language in SUPPORTED_LANGUAGES},
        descriptions={language: cell(f"description_{language}") for language in SUPPORTED_LANGUAGES},
    )


def read_csv(text: str, file: str) -> Iterator[tuple[int, EventRecord | ImportProblem]]:
    """Yield (line, record or problem) for each data row of CSV ``text``.

    ``line`` is the physical line where the row starts (the header is line 1). A
    missing required column is one problem for the whole file.
    """
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        yield (
            1,
            ImportProblem(
                file, 1, f"header lacks column(s) {', '.join(missing)}: the first line must name the columns {', '.join(COLUMNS)}"
            ),
        )
        return
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        yield 1, ImportProblem(file, 1, f"unknown column(s) {', '.join(unknown)}: use only {', '.join(COLUMNS)}")
        return
    reader.fieldnames = header
    previous_end = reader.line_num
    for row in reader:
        line = previous_end + 1
        previous_end = reader.line_num
        extra = row.get(None)  # type: ignore[call-overload]
        if extra is not None:
            fields = len(header) + len(extra)
            reason = f"row has {fields} fields but the header has {len(header)}: quote fields that contain commas"
            yield line, ImportProblem(file, line, reason)
            continue
        if not any((value or "").strip() for value in row.values()):
            continue
        try:
            yield line, _record_from_row(row)
        except InvalidEventError as error:
            yield line, ImportProblem(file, line, str(error))


def read_csv_file(path: Path) -> Iterator[tuple[int, EventRecord | ImportProblem]]:
    """Yield (line, record or problem) for each row of the CSV file ``path`` (UTF-8, BOM allowed)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        yield 1, ImportProblem(str(path), None, f"file is not UTF-8 ({error}): save it as UTF-8 CSV")
        return
    yield from read_csv(text, str(path))


def _local_iso(event: Event, instant_name: str) -> str:
    instant = getattr(event, instant_name)
    if instant is None:
        return ""
    return str(instant.astimezone(ZoneInfo(event.timezone)).isoformat(timespec="minutes"))


def write_csv(events: Sequence[Event]) -> str:
    """Return ``events`` as CSV text with every column, times local to the venue with offset."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for event in events:
        row = {
            "uid": event.uid,
            "kind": event.kind,
            "status": "cancelled" if event.status == "cancelled" else "scheduled",
            "start": _local_iso(event, "starts_at"),
            "end": _local_iso(event, "ends_at"),
            "timezone": event.timezone,
            "country": event.country or "",
            "province": event.province or "",
            "place": event.place or "",
            "sectors": ";".join(event.sectors or []),
            "organiser": event.organiser or "",
            "url": event.url or "",
            "is_sample": "true" if event.is_sample else "false",
        }
        for language in SUPPORTED_LANGUAGES:
            row[f"title_{language}"] = (event.titles or {}).get(language, "")
            row[f"description_{language}"] = (event.descriptions or {}).get(language, "")
        writer.writerow(row)
    return buffer.getvalue()
