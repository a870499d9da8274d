"""Quiet hours: no messages at night in the owner's time zone.

The window is ``[start, end)`` in local time and may cross midnight (21:00-07:00).
A message due inside it moves to the window's end (the next morning), unless the event
would have started by then; it then moves back to the minute before the window began
(the evening before). When that minute has passed as well, the message keeps its time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: How long before quiet hours begin a message that cannot wait for the morning is sent.
EVENING_LEAD = dt.timedelta(minutes=1)


@dataclasses.dataclass(frozen=True)
class QuietHours:
    """A daily local-time window without messages; ``start == end`` disables it."""

    start: dt.time
    end: dt.time

    def contains(self, local: dt.time) -> bool:
        """Return True when the local wall-clock time ``local`` is inside the window."""
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@functools.cache
def zone(name: str | None, fallback: str = "Asia/Ho_Chi_Minh") -> ZoneInfo:
    """Return the time zone ``name``, or ``fallback`` when it is empty or unknown."""
    try:
        return ZoneInfo(name or fallback)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(fallback)


def is_quiet(instant: dt.datetime, timezone: ZoneInfo, quiet: QuietHours) -> bool:
    """Return True when ``instant`` falls in quiet hours in ``timezone``."""
    return quiet.contains(instant.astimezone(timezone).time().replace(tzinfo=None))


def quiet_window(instant: dt.datetime, timezone: ZoneInfo, quiet: QuietHours) -> tuple[dt.datetime, dt.datetime]:
    """Return the (begin, end) instants of the quiet period that contains ``instant``.

    ``instant`` must be inside quiet hours (see :func:`is_quiet`).
    """
    local = instant.astimezone(timezone)
    day = local.date()
    if quiet.start > quiet.end and local.time() >= quiet.start:
        begin_day, end_day = day, day + dt.timedelta(days=1)
    elif quiet.start > quiet.end:
        begin_day, end_day = day - dt.timedelta(days=1), day
    else:
        begin_day, end_day = day, day
    begin = dt.datetime.combine(begin_day, quiet.start, tzinfo=timezone)
    end = dt.datetime.combine(end_day, quiet.end, tzinfo=timezone)
    return begin.astimezone(dt.UTC), end.astimezone(dt.UTC)


def adjust_for_quiet_hours(
    due: dt.datetime,
    deadline: dt.datetime,
    timezone: ZoneInfo,
    quiet: QuietHours,
    *,
    not_before: dt.datetime | None = None,
) -> dt.datetime:
    """Return when a message due at ``due`` should go out, given quiet hours.

    ``deadline`` is the event's start: a reminder after it is useless. ``not_before``
    is the earliest instant the message may be sent (when it was planned); the evening
    slot is used only when it is not earlier than that.
    """
    if not is_quiet(due, timezone, quiet):
        return due
    begin, end = quiet_window(due, timezone, quiet)
    if end < deadline:
        return end
    evening = begin - EVENING_LEAD
    if not_before is None or evening >= not_before:
        return evening
    return due
