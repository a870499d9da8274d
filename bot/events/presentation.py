"""Event texts for chat and reminders, in the owner's language."""

from __future__ import annotations

import datetime as dt
from typing import Literal
from zoneinfo import ZoneInfo

from babel.dates import format_datetime, format_timedelta
from babel.lists import format_list

from bot.events.catalogue import localized
from bot.events.records import STATUS_CANCELLED, STATUS_CHANGED
from bot.i18n import gettext
from bot.storage.models import Event

#: Date and time pattern (CLDR) for event times, e.g. "Monday 15 March 2027, 09:00".
DATETIME_PATTERN = "EEEE d MMMM y, HH:mm"
TIME_PATTERN = "HH:mm"
_UNITS: tuple[tuple[Literal["day", "hour", "minute", "second"], int], ...] = (
    ("day", 86400),
    ("hour", 3600),
    ("minute", 60),
    ("second", 1),
)


def kind_label(kind: str, language: str) -> str:
    """Return the name of an event kind (workshop, training, trade fair, exhibition)."""
    return gettext(f"events.kind.{kind}", language)


def sector_label(sector: str | None, language: str) -> str:
    """Return the name of a sector, or "all sectors" for None."""
    return gettext(f"events.sector.{sector or 'all'}", language)


def country_label(country: str | None, language: str) -> str:
    """Return the name of a country, or "all countries" for None."""
    return gettext(f"events.country.{country or 'all'}", language)


def filter_label(sector: str | None, country: str | None, language: str) -> str:
    """Return "<sector> · <country>" for a list filter or a subscription."""
    return gettext("events.filter", language, sector=sector_label(sector, language), country=country_label(country, language))


def when_text(event: Event, language: str) -> str:
    """Return the event's start (and end) in the venue's local time."""
    venue = ZoneInfo(event.timezone)
    start = format_datetime(event.starts_at, DATETIME_PATTERN, tzinfo=venue, locale=language)
    if event.ends_at is None:
        return start
    if event.ends_at.astimezone(venue).date() == event.starts_at.astimezone(venue).date():
        return f"{start}–{format_datetime(event.ends_at, TIME_PATTERN, tzinfo=venue, locale=language)}"
    return f"{start} – {format_datetime(event.ends_at, DATETIME_PATTERN, tzinfo=venue, locale=language)}"


def place_text(event: Event, language: str) -> str:
    """Return "place, province, country", or "to be announced"."""
    parts = [part for part in (event.place, event.province) if part]
    if event.country:
        parts.append(country_label(event.country, language))
    return ", ".join(parts) if parts else gettext("events.place_unknown", language)


def relative_text(start: dt.datetime, now: dt.datetime, language: str) -> str:
    """Return how far ``start`` is from ``now`` ("in 2 hours")."""
    return format_timedelta(start - now, add_direction=True, threshold=1, locale=language)


def duration_text(seconds: int, language: str) -> str:
    """Return a reminder offset such as "1 week", "1 day" or "2 hours 30 minutes"."""
    parts = []
    rest = seconds
    for unit, size in _UNITS:
        count, rest = divmod(rest, size)
        if count:
            parts.append(format_timedelta(dt.timedelta(seconds=count * size), threshold=1, granularity=unit, locale=language))
    return " ".join(parts) if parts else format_timedelta(dt.timedelta(0), locale=language)


def offsets_text(offsets: list[int] | tuple[int, ...], language: str) -> str:
    """Return the reminder offsets as a list ("1 week, 1 day and 2 hours")."""
    return format_list([duration_text(offset, language) for offset in sorted(offsets, reverse=True)], locale=language)


def event_card(event: Event, language: str) -> str:
    """Return the short text of an event in a list: kind, title, status, time and place."""
    title = localized(event.titles, language)
    status = ""
    if event.status == STATUS_CHANGED:
        status = " " + gettext("events.status.changed", language)
    elif event.status == STATUS_CANCELLED:
        status = " " + gettext("events.status.cancelled", language)
    return gettext(
        "events.card",
        language,
        kind=kind_label(event.kind, language),
        title=title,
        status=status,
        when=when_text(event, language),
        place=place_text(event, language),
    )


def event_details(event: Event, language: str) -> str:
    """Return the full text of an event: card, sectors, organiser, link and description."""
    lines = [event_card(event, language)]
    sectors = (
        format_list([sector_label(sector, language) for sector in event.sectors], locale=language)
        if event.sectors
        else sector_label(None, language)
    )
    lines.append(gettext("events.details.sectors", language, sectors=sectors))
    if event.organiser:
        lines.append(gettext("events.details.organiser", language, organiser=event.organiser))
    if event.url:
        lines.append(gettext("events.details.link", language, url=event.url))
    description = localized(event.descriptions, language)
    if description:
        lines.append("")
        lines.append(description)
    if event.is_sample:
        lines.append("")
        lines.append(gettext("events.details.sample", language))
    return "\n".join(lines)
