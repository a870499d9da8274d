"""Events as iCalendar (RFC 5545): import, export and "add to calendar" files.

RFC 5545 allows one SUMMARY and one DESCRIPTION per VEVENT, so other languages travel
in ``X-SPIN-TITLE;LANGUAGE=xx`` and ``X-SPIN-DESCRIPTION;LANGUAGE=xx``. Catalogue
fields without a standard property use ``X-SPIN-KIND``, ``X-SPIN-COUNTRY``,
``X-SPIN-PROVINCE``, ``X-SPIN-SECTORS``, ``X-SPIN-ORGANISER``, ``X-SPIN-TIMEZONE`` and
``X-SPIN-SAMPLE``. Calendar programs ignore these and show SUMMARY, DTSTART, DTEND,
LOCATION and URL.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar

from bot.events.catalogue import localized
from bot.events.presentation import place_text
from bot.events.problems import ImportProblem
from bot.events.records import (
    COUNTRY_TIMEZONES,
    KINDS,
    STATUS_CANCELLED,
    EventRecord,
    InvalidEventError,
    build_record,
)
from bot.i18n import gettext
from bot.settings import DEFAULT_LANGUAGE, SUPPORTED_LANGUAGES
from bot.storage.models import Event

logger = logging.getLogger(__name__)

PRODID = "-//SPIN Assistant//Events//EN"
#: Folder under ``settings.var_dir`` where "add to calendar" files are written.
ICS_FOLDER = "ics"
_BEGIN_EVENT = re.compile(r"^BEGIN:VEVENT\s*$", re.IGNORECASE)
#: RFC 5545 section 3.3.11 TEXT escapes: \\ \; \, \n \N.
_TEXT_ESCAPE = re.compile(r"\\([\\;,nN])")
_TIMEZONE_COUNTRIES = {zone: country for country, zone in COUNTRY_TIMEZONES.items()}
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/GMT", "GMT"})


def _text(value: Any) -> str | None:
    """Return an iCalendar property value as plain text (X- properties arrive escaped)."""
    if value is None:
        return None
    if isinstance(value, icalendar.vText):
        return str(value)
    return _TEXT_ESCAPE.sub(_unescape, str(value))


def _unescape(match: re.Match[str]) -> str:
    """Undo one RFC 5545 TEXT escape (backslash, semicolon, comma, newline)."""
    char = match.group(1)
    return "\n" if char in "nN" else char


def _values(component: icalendar.cal.Component, name: str) -> list[Any]:
    value = component.get(name)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _language_texts(component: icalendar.cal.Component, standard: str, extension: str) -> dict[str, str | None]:
    texts: dict[str, str | None] = {}
    for value in _values(component, standard) + _values(component, extension):
        language = str(getattr(value, "params", {}).get("LANGUAGE", DEFAULT_LANGUAGE)).split("-")[0].lower()
        texts.setdefault(language, _text(value))
    return texts


def _instant(component: icalendar.cal.Component, name: str) -> dt.datetime | dt.date | None:
    value = component.get(name)
    if value is None:
        return None
    return value.dt  # type: ignore[no-any-return]


def _kind(component: icalendar.cal.Component) -> str | None:
    explicit = _text(component.get("X-SPIN-KIND"))
    if explicit:
        return explicit
    for categories in _values(component, "CATEGORIES"):
        for category in getattr(categories, "cats", []):
            name = str(category).strip().lower().replace(" ", "_")
            if name in KINDS:
                return name
    return None


def _record_from_vevent(component: icalendar.cal.Component) -> EventRecord:
    errors = getattr(component, "errors", [])
    if errors:
        name, message = errors[0]
        raise InvalidEventError(f"property {name} is invalid ({message})")
    if component.get("RRULE") is not None:
        raise InvalidEventError("recurring events (RRULE) are not supported: give each date its own VEVENT and UID")
    start = _instant(component, "DTSTART")
    if start is None:
        raise InvalidEventError("DTSTART is missing: every event needs a start")
    end = _instant(component, "DTEND")
    duration = component.get("DURATION")
    if end is None and duration is not None:
        end = start + duration.dt
    zone_name = _text(component.get("X-SPIN-TIMEZONE"))
    start_zone = start.tzinfo.key if isinstance(start, dt.datetime) and isinstance(start.tzinfo, ZoneInfo) else None
    if start_zone is not None and start_zone not in _TIMEZONE_COUNTRIES and start_zone not in _UTC_NAMES:
        venues = ", ".join(sorted(_TIMEZONE_COUNTRIES))
        raise InvalidEventError(f"DTSTART time zone {start_zone} is not a venue zone: use one of {venues} or UTC")
    if zone_name is None and start_zone in _TIMEZONE_COUNTRIES:
        zone_name = start_zone
    country = _text(component.get("X-SPIN-COUNTRY")) or (_TIMEZONE_COUNTRIES.get(zone_name) if zone_name else None)
    organiser = _text(component.get("X-SPIN-ORGANISER"))
    organizer_property = component.get("ORGANIZER")
    if organiser is None and organizer_property is not None:
        organiser = str(organizer_property.params.get("CN") or "") or str(organizer_property).removeprefix("mailto:")
    sample = _text(component.get("X-SPIN-SAMPLE"))
    return build_record(
        uid=_text(component.get("UID")),
        kind=_kind(component),
        titles=_language_texts(component, "SUMMARY", "X-SPIN-TITLE"),
        descriptions=_language_texts(component, "DESCRIPTION", "X-SPIN-DESCRIPTION"),
        starts_at=start,
        ends_at=end,
        timezone=zone_name,
        country=country,
        province=_text(component.get("X-SPIN-PROVINCE")),
        place=_text(component.get("LOCATION")),
        sectors=(_text(component.get("X-SPIN-SECTORS")) or "").split(","),
        organiser=organiser,
        url=_text(component.get("URL")),
        status=_text(component.get("STATUS")),
        is_sample=sample or None,
    )


def read_ical(data: bytes, file: str) -> Iterator[tuple[int | None, EventRecord | ImportProblem]]:
    """Yield (line of BEGIN:VEVENT, record or problem) for each VEVENT in ``data``."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        yield None, ImportProblem(file, None, f"file is not UTF-8 ({error}): RFC 5545 files are UTF-8")
        return
    lines = [number for number, line in enumerate(text.splitlines(), start=1) if _BEGIN_EVENT.match(line)]
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except ValueError as error:
        yield None, ImportProblem(file, None, f"not an iCalendar file ({error}): it must start with BEGIN:VCALENDAR")
        return
    for index, component in enumerate(calendar.walk("VEVENT")):
        line = lines[index] if index < len(lines) else None
        try:
            yield line, _record_from_vevent(component)
        except InvalidEventError as error:
            yield line, ImportProblem(file, line, str(error))
        except (ValueError, TypeError, AttributeError) as error:
            # icalendar raises these for broken property values it parsed leniently.
            yield line, ImportProblem(file, line, f"event is invalid ({type(error).__name__}: {error})")


def _new_calendar() -> icalendar.Calendar:
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    return calendar


def _add_times(component: icalendar.Event, event: Event) -> None:
    venue = ZoneInfo(event.timezone)
    component.add("dtstart", event.starts_at.astimezone(venue))
    if event.ends_at is not None:
        component.add("dtend", event.ends_at.astimezone(venue))


def _vevent(event: Event, stamp: dt.datetime) -> icalendar.Event:
    component = icalendar.Event()
    component.add("uid", event.uid)
    component.add("dtstamp", stamp)
    component.add("sequence", max(event.version - 1, 0))
    _add_times(component, event)
    component.add("status", "CANCELLED" if event.status == STATUS_CANCELLED else "CONFIRMED")
    if event.place:
        component.add("location", event.place)
    if event.url:
        component.add("url", event.url)
    return component


def export_calendar(events: Sequence[Event], stamp: dt.datetime) -> bytes:
    """Return ``events`` as one iCalendar file with every language and catalogue field."""
    calendar = _new_calendar()
    for event in events:
        component = _vevent(event, stamp)
        titles = dict(event.titles or {})
        first = DEFAULT_LANGUAGE if DEFAULT_LANGUAGE in titles else next(iter(titles))
        component.add("summary", titles[first], parameters={"LANGUAGE": first})
        for language in SUPPORTED_LANGUAGES:
            if language != first and titles.get(language):
                component.add("x-spin-title", icalendar.vText(titles[language]), parameters={"LANGUAGE": language})
        descriptions = dict(event.descriptions or {})
        if descriptions:
            first_description = DEFAULT_LANGUAGE if DEFAULT_LANGUAGE in descriptions else next(iter(descriptions))
            component.add("description", descriptions[first_description], parameters={"LANGUAGE": first_description})
            for language in SUPPORTED_LANGUAGES:
                if language != first_description and descriptions.get(language):
                    component.add(
                        "x-spin-description", icalendar.vText(descriptions[language]), parameters={"LANGUAGE": language}
                    )
        component.add("categories", [event.kind])
        component.add("x-spin-kind", icalendar.vText(event.kind))
        component.add("x-spin-timezone", icalendar.vText(event.timezone))
        if event.country:
            component.add("x-spin-country", icalendar.vText(event.country))
        if event.province:
            component.add("x-spin-province", icalendar.vText(event.province))
        if event.sectors:
            component.add("x-spin-sectors", icalendar.vText(",".join(event.sectors)))
        if event.organiser:
            component.add("x-spin-organiser", icalendar.vText(event.organiser))
        component.add("x-spin-sample", icalendar.vText("TRUE" if event.is_sample else "FALSE"))
        calendar.add_component(component)
    calendar.add_missing_timezones()
    return bytes(calendar.to_ical())


def event_ics(event: Event, language: str, stamp: dt.datetime) -> bytes:
    """Return a one-event calendar in ``language`` for "add to calendar"."""
    calendar = _new_calendar()
    calendar.add("method", "PUBLISH")
    component = _vevent(event, stamp)
    if event.place or event.province or event.country:
        # The owner's calendar gets the whole address in their language. The catalogue
        # export keeps the venue alone in LOCATION, because import reads it back as the venue.
        component.pop("LOCATION", None)
        component.add("location", place_text(event, language), parameters={"LANGUAGE": language})
    component.add("summary", localized(event.titles, language), parameters={"LANGUAGE": language})
    details = [localized(event.descriptions, language)]
    if event.organiser:
        details.append(event.organiser)
    if event.url:
        details.append(event.url)
    if event.is_sample:
        # The same notice as the chat's details, so a sample is never taken for a real event.
        details.append(gettext("events.details.sample", language))
    description = "\n\n".join(part for part in details if part)
    if description:
        component.add("description", description, parameters={"LANGUAGE": language})
    calendar.add_component(component)
    calendar.add_missing_timezones()
    return bytes(calendar.to_ical())


def write_event_ics(event: Event, language: str, var_dir: Path, stamp: dt.datetime) -> Path:
    """Write the "add to calendar" file of ``event`` under ``var_dir/ics`` and return its absolute path.

    The name carries the event id, version and language, so a changed event gets a new
    file. The file is written under a temporary name and renamed, so no reader sees half
    a file.
    """
    folder = (var_dir / ICS_FOLDER).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"event-{event.id}-v{event.version}-{language}.ics"
    if path.exists():
        return path
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_bytes(event_ics(event, language, stamp))
    temporary.replace(path)
    return path
