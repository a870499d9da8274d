"""Reminder settings gathered in one object, so tests can build them without the environment."""

from __future__ import annotations

import dataclasses
import datetime as dt

from bot.scheduler.quiet_hours import QuietHours
from bot.settings import Settings


@dataclasses.dataclass(frozen=True)
class ReminderPolicy:
    """When reminders are due and how late they may still go out."""

    offsets_seconds: tuple[int, ...] = (7 * 86400, 86400, 2 * 3600)
    quiet_hours: QuietHours = dataclasses.field(default_factory=lambda: QuietHours(dt.time(21, 0), dt.time(7, 0)))
    grace: dt.timedelta = dt.timedelta(hours=12)
    default_timezone: str = "Asia/Ho_Chi_Minh"
    max_attempts: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> ReminderPolicy:
        """Return the policy configured in ``settings``."""
        offsets = tuple(sorted({int(value) for value in settings.reminder_offsets_seconds if int(value) > 0}, reverse=True))
        if not offsets:
            raise ValueError(
                f"reminder_offsets_seconds {settings.reminder_offsets_seconds!r} has no positive offset: set at least one"
            )
        return cls(
            offsets_seconds=offsets,
            quiet_hours=QuietHours(settings.quiet_hours_start, settings.quiet_hours_end),
            grace=dt.timedelta(seconds=settings.reminder_grace_seconds),
            default_timezone=settings.default_timezone,
            max_attempts=max(1, settings.delivery_max_attempts),
        )
