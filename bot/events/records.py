"""Validated event data, independent of the file format it came from."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

from bot.settings import SUPPORTED_LANGUAGES

#: Event kinds, as stored in ``events.kind``.
KINDS = ("workshop", "training", "trade_fair", "exhibition")
#: Event statuses: ``changed`` is set by an update that moved the time or place.
STATUS_SCHEDULED = "scheduled"
STATUS_CHANGED = "changed"
STATUS_CANCELLED = "cancelled"
STATUSES = (STATUS_SCHEDULED, STATUS_CHANGED, STATUS_CANCELLED)
#: Countries served, with the venue time zone used when a row names none.
COUNTRY_TIMEZONES = {"vn": "Asia/Ho_Chi_Minh", "la": "Asia/Vientiane", "kh": "Asia/Phnom_Penh"}
#: Venue time zones accepted; all three are UTC+7 without daylight saving time.
VENUE_TIMEZONES = frozenset(COUNTRY_TIMEZONES.values())
#: Sectors, as in ``users.sector`` and the NLU ``sector`` entity.
SECTORS = ("textiles", "footwear", "furniture", "handicraft", "food", "packaging")

#: Column limits of the ``events`` table.
UID_MAX_LENGTH = 255
PROVINCE_MAX_LENGTH = 128
#: Maximum title length, so list lines and buttons stay readable.
TITLE_MAX_LENGTH = 200
#: Maximum description length, well under Telegram's 4096-character message limit.
DESCRIPTION_MAX_LENGTH = 2000

_KIND_ALIASES = {"trade fair": "trade_fair", "tradefair": "trade_fair", "trade-fair": "trade_fair", "fair": "trade_fair"}
_STATUS_ALIASES = {
    "": STATUS_SCHEDULED,
    "scheduled": STATUS_SCHEDULED,
    "confirmed": STATUS_SCHEDULED,
    "tentative": STATUS_SCHEDULED,
    "changed": STATUS_SCHEDULED,
    "cancelled": STATUS_CANCELLED,
    "canceled": STATUS_CANCELLED,
}
_TRUE = {"1", "true", "yes", "y"}
_FALSE = {"", "0", "false", "no", "n"}
_SPACES = re.compile(r"\s+")


class InvalidEventError(ValueError):
    """An event row that cannot be imported; the message names the field and the fix."""


@dataclasses.dataclass(frozen=True)
class EventRecord:
    """One event as read from a file or the command line, already validated.

    ``status`` is the source's status (scheduled or cancelled). ``changed`` is never
    read from a source, because the catalogue sets it by comparing versions.
    """

    uid: str
    kind: str
    titles: Mapping[str, str]
    starts_at: dt.datetime
    timezone: str
    country: str
    descriptions: Mapping[str, str] = dataclasses.field(default_factory=dict)
    ends_at: dt.datetime | None = None
    place: str | None = None
    province: str | None = None
    sectors: tuple[str, ...] = ()
    organiser: str | None = None
    url: str | None = None
    status: str = STATUS_SCHEDULED
    is_sample: bool = False

    def content_hash(self) -> str:
        """Return a SHA-256 of every field, so an unchanged re-import is detected."""
        payload = {
            "uid": self.uid,
            "kind": self.kind,
            "titles": dict(sorted(self.titles.items())),
            "descriptions": dict(sorted(self.descriptions.items())),
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat() if self.ends_at else None,
            "timezone": self.timezone,
            "place": self.place,
            "country": self.country,
            "province": self.province,
            "sectors": list(self.sectors),
            "organiser": self.organiser,
            "url": self.url,
            "status": self.status,
            "is_sample": self.is_sample,
        }
        encoded = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def clean_text(value: object) -> str | None:
    """Return ``value`` as stripped text, or None when it is empty."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def parse_kind(value: str | None) -> str:
    """Return the kind id for ``value`` ("Trade fair" gives ``trade_fair``)."""
    key = _SPACES.sub(" ", (value or "").strip().lower())
    if not key:
        raise InvalidEventError(f"kind is missing: use one of {', '.join(KINDS)}")
    kind = _KIND_ALIASES.get(key, key.replace(" ", "_"))
    if kind not in KINDS:
        raise InvalidEventError(f"kind {value!r} is invalid: use one of {', '.join(KINDS)}")
    return kind


def parse_status(value: str | None) -> str:
    """Return ``scheduled`` or ``cancelled`` for a source status."""
    key = (value or "").strip().lower()
    if key not in _STATUS_ALIASES:
        raise InvalidEventError(f"status {value!r} is invalid: use scheduled or cancelled")
    return _STATUS_ALIASES[key]


def parse_bool(value: str | bool | None, field: str) -> bool:
    """Return a boolean from yes/no, true/false or 1/0."""
    if isinstance(value, bool):
        return value
    key = (value or "").strip().lower()
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise InvalidEventError(f"{field} {value!r} is invalid: use true or false")


def parse_sectors(values: Iterable[str]) -> tuple[str, ...]:
    """Return known sector ids, sorted and without repeats; empty means every sector."""
    sectors: set[str] = set()
    for raw in values:
        sector = raw.strip().lower()
        if not sector:
            continue
        if sector in ("all", "*"):
            return ()
        if sector not in SECTORS:
            raise InvalidEventError(f"sector {raw!r} is invalid: use {', '.join(SECTORS)} or all")
        sectors.add(sector)
    return tuple(sorted(sectors))


def parse_instant(value: str | dt.datetime | dt.date, timezone: ZoneInfo, field: str) -> dt.datetime:
    """Return an aware UTC instant from ISO 8601 text or a datetime.

    Text without an offset is local time in the venue's ``timezone``; a bare date means
    local midnight.
    """
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = dt.datetime.combine(value, dt.time())
    else:
        text = (value or "").strip()
        if not text:
            raise InvalidEventError(f"{field} is missing: give a date and time such as 2027-03-15 09:00")
        try:
            parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as error:
            raise InvalidEventError(f"{field} {text!r} is invalid: use ISO 8601 such as 2027-03-15 09:00 ({error})") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone)
    return parsed.astimezone(dt.UTC)


def resolve_timezone(name: str | None, country: str) -> str:
    """Return the venue time zone: ``name`` when given and accepted, else the country's."""
    if not name:
        return COUNTRY_TIMEZONES[country]
    if name not in VENUE_TIMEZONES:
        raise InvalidEventError(f"timezone {name!r} is invalid: use one of {', '.join(sorted(VENUE_TIMEZONES))}")
    return name


def parse_country(value: str | None) -> str:
    """Return the country code (vn, la or kh)."""
    code = (value or "").strip().lower()
    if code not in COUNTRY_TIMEZONES:
        raise InvalidEventError(f"country {value!r} is invalid: use one of {', '.join(COUNTRY_TIMEZONES)}")
    return code


def _language_texts(texts: Mapping[str, str | None], field: str, max_length: int) -> dict[str, str]:
    cleaned: dict[str, str] = {}
    for language, text in texts.items():
        value = clean_text(text)
        if value is None:
            continue
        if language not in SUPPORTED_LANGUAGES:
            raise InvalidEventError(f"{field} language {language!r} is invalid: use one of {', '.join(SUPPORTED_LANGUAGES)}")
        if len(value) > max_length:
            raise InvalidEventError(f"{field} in {language} has {len(value)} characters: shorten it to {max_length}")
        cleaned[language] = value
    return cleaned


def _check_url(url: str | None) -> str | None:
    if url is None:
        return None
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidEventError(f"link {url!r} is invalid: give a full http(s):// address")
    return url


def build_record(
    *,
    uid: str | None,
    kind: str | None,
    titles: Mapping[str, str | None],
    starts_at: str | dt.datetime | dt.date,
    country: str | None,
    timezone: str | None = None,
    ends_at: str | dt.datetime | dt.date | None = None,
    descriptions: Mapping[str, str | None] | None = None,
    place: str | None = None,
    province: str | None = None,
    sectors: Iterable[str] = (),
    organiser: str | None = None,
    url: str | None = None,
    status: str | None = None,
    is_sample: str | bool | None = None,
) -> EventRecord:
    """Validate raw values and return an :class:`EventRecord`.

    Raises :class:`InvalidEventError` naming the first invalid field.
    """
    uid_text = clean_text(uid)
    if uid_text is None:
        raise InvalidEventError("uid is missing: give each event a stable unique id so a re-import updates it")
    if len(uid_text) > UID_MAX_LENGTH:
        raise InvalidEventError(f"uid has {len(uid_text)} characters: shorten it to {UID_MAX_LENGTH}")
    title_texts = _language_texts(titles, "title", TITLE_MAX_LENGTH)
    if not title_texts:
        raise InvalidEventError("title is missing: give a title in at least one of vi, en, km, lo")
    country_code = parse_country(country)
    zone_name = resolve_timezone(clean_text(timezone), country_code)
    venue_zone = ZoneInfo(zone_name)
    start = parse_instant(starts_at, venue_zone, "start")
    end = None
    if ends_at is not None and not (isinstance(ends_at, str) and not ends_at.strip()):
        end = parse_instant(ends_at, venue_zone, "end")
        if end < start:
            raise InvalidEventError(f"end {end.isoformat()} is before start {start.isoformat()}: fix one of them")
    province_text = clean_text(province)
    if province_text and len(province_text) > PROVINCE_MAX_LENGTH:
        raise InvalidEventError(f"province has {len(province_text)} characters: shorten it to {PROVINCE_MAX_LENGTH}")
    return EventRecord(
        uid=uid_text,
        kind=parse_kind(kind),
        titles=title_texts,
        descriptions=_language_texts(descriptions or {}, "description", DESCRIPTION_MAX_LENGTH),
        starts_at=start,
        ends_at=end,
        timezone=zone_name,
        place=clean_text(place),
        country=country_code,
        province=province_text,
        sectors=parse_sectors(sectors),
        organiser=clean_text(organiser),
        url=_check_url(clean_text(url)),
        status=parse_status(status),
        is_sample=parse_bool(is_sample, "is_sample"),
    )


def record_fields(record: EventRecord) -> dict[str, Any]:
    """Return the ``events`` column values of ``record`` (without ids and bookkeeping)."""
    return {
        "uid": record.uid,
        "kind": record.kind,
        "titles": dict(record.titles),
        "descriptions": dict(record.descriptions),
        "starts_at": record.starts_at,
        "ends_at": record.ends_at,
        "timezone": record.timezone,
        "place": record.place,
        "country": record.country,
        "province": record.province,
        "sectors": list(record.sectors),
        "organiser": record.organiser,
        "url": record.url,
        "is_sample": record.is_sample,
    }
