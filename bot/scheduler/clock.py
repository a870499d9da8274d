"""A clock the scheduler reads instead of the system time, so tests can set the time."""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class Clock(Protocol):
    """Source of the current instant."""

    def now(self) -> dt.datetime:
        """Return the current instant, timezone-aware in UTC."""
        ...


class SystemClock:
    """The real time."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class ManualClock:
    """A clock that only moves when told to; for tests and simulations."""

    def __init__(self, start: dt.datetime) -> None:
        self._now = _require_aware(start)

    def now(self) -> dt.datetime:
        return self._now

    def set(self, instant: dt.datetime) -> None:
        """Jump to ``instant`` (forwards or backwards)."""
        self._now = _require_aware(instant)

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        """Move forwards by ``delta`` and return the new time."""
        self._now += delta
        return self._now


def _require_aware(instant: dt.datetime) -> dt.datetime:
    if instant.tzinfo is None:
        raise ValueError(f"naive datetime {instant!r}: pass an aware datetime (e.g. with tzinfo=dt.UTC)")
    return instant.astimezone(dt.UTC)
