"""Names of the messages owed to an owner (``reminder_deliveries.kind``).

- ``remind:<offset>:<start>``: a reminder ``offset`` (ISO 8601 duration) before the
  event start ``start`` (UTC, basic format). A moved event gets new kinds, so its
  owners are reminded again for the new time, while a repeat of the same plan is a
  no-op thanks to the unique (user, event, kind) key.
- ``new``: a new event in a subscribed category.
- ``changed:v<version>`` and ``cancelled:v<version>``: a notice about the event's
  version ``version``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

REMIND = "remind"
NEW = "new"
CHANGED = "changed"
CANCELLED = "cancelled"

#: ``reminder_deliveries.kind`` column length.
KIND_MAX_LENGTH = 64

_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclasses.dataclass(frozen=True)
class Kind:
    """A parsed delivery kind."""

    type: str
    offset_seconds: int | None = None
    starts_at: dt.datetime | None = None
    version: int | None = None


def format_offset(seconds: int) -> str:
    """Return ``seconds`` as an ISO 8601 duration (604800 gives ``P7D``, 7200 ``PT2H``)."""
    if seconds <= 0:
        raise ValueError(f"reminder offset {seconds} s is invalid: use a positive number of seconds")
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    date_part = f"{days}D" if days else ""
    time_part = ""
    if hours:
        time_part += f"{hours}H"
    if minutes:
        time_part += f"{minutes}M"
    if secs:
        time_part += f"{secs}S"
    if time_part:
        time_part = "T" + time_part
    return "P" + date_part + time_part


def parse_offset(text: str) -> int:
    """Return the seconds of an ISO 8601 duration made of days, hours, minutes, seconds."""
    match = _DURATION.match(text.strip().upper())
    if not match or not any(match.groups()):
        raise ValueError(f"reminder offset {text!r} is invalid: use an ISO 8601 duration such as P7D, PT2H or PT30S")
    days, hours, minutes, secs = (int(group or 0) for group in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + secs


def stamp(instant: dt.datetime) -> str:
    """Return ``instant`` in UTC basic format, as used inside reminder kinds."""
    return instant.astimezone(dt.UTC).strftime(_STAMP_FORMAT)


def remind_kind(offset_seconds: int, starts_at: dt.datetime) -> str:
    """Return the kind of the reminder ``offset_seconds`` before ``starts_at``."""
    return f"{REMIND}:{format_offset(offset_seconds)}:{stamp(starts_at)}"


def notice_kind(notice: str, version: int) -> str:
    """Return the kind of a ``changed`` or ``cancelled`` notice about ``version``."""
    if notice not in (CHANGED, CANCELLED):
        raise ValueError(f"notice {notice!r} is invalid: use {CHANGED} or {CANCELLED}")
    return f"{notice}:v{version}"


def parse_kind(kind: str) -> Kind:
    """Parse a kind written by this module; raises ValueError for anything else."""
    head, _, rest = kind.partition(":")
    if head == NEW and not rest:
        return Kind(NEW)
    if head == REMIND:
        offset_text, _, start_text = rest.partition(":")
        try:
            starts_at = dt.datetime.strptime(start_text, _STAMP_FORMAT).replace(tzinfo=dt.UTC)
            return Kind(REMIND, offset_seconds=parse_offset(offset_text), starts_at=starts_at)
        except ValueError as error:
            raise ValueError(f"delivery kind {kind!r} is invalid ({error})") from None
    if head in (CHANGED, CANCELLED) and rest.startswith("v") and rest[1:].isdigit():
        return Kind(head, version=int(rest[1:]))
    raise ValueError(f"delivery kind {kind!r} is invalid")
