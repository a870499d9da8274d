"""Fixtures for the events and reminder tests: a recording channel, a settable clock, helpers."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Engine

from bot.channels.base import Channel, DeliveryError, OutgoingMessage
from bot.events.catalogue import upsert_event
from bot.events.records import build_record
from bot.scheduler.clock import ManualClock
from bot.scheduler.policy import ReminderPolicy
from bot.scheduler.quiet_hours import QuietHours
from bot.storage.db import session_scope
from bot.storage.models import Event, EventReminder, Subscription, User
from bot.storage.types import utc_now

#: Monday 1 March 2027, 03:00 UTC = 10:00 in Vietnam, Laos and Cambodia (UTC+7).
MORNING = dt.datetime(2027, 3, 1, 3, 0, tzinfo=dt.UTC)


@dataclasses.dataclass
class Sent:
    """One message the recording channel received."""

    external_id: str
    message: OutgoingMessage


class RecordingChannel(Channel):
    """A channel that keeps every message; ``blocked`` ids raise a permanent DeliveryError."""

    def __init__(self, name: str = "telegram") -> None:
        self.name = name
        self.sent: list[Sent] = []
        self.blocked: set[str] = set()
        self.rate_limited: list[float] = []

    async def send(self, external_id: str, message: OutgoingMessage) -> None:
        if external_id in self.blocked:
            raise DeliveryError(f"user {external_id} blocked the bot", permanent=True)
        if self.rate_limited:
            error = DeliveryError("Too Many Requests")
            error.retry_after = self.rate_limited.pop(0)  # type: ignore[attr-defined]
            raise error
        self.sent.append(Sent(external_id, message))

    def to(self, external_id: str) -> list[OutgoingMessage]:
        """Return the messages sent to one user, in order."""
        return [item.message for item in self.sent if item.external_id == external_id]


@pytest.fixture
def channel() -> RecordingChannel:
    return RecordingChannel()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MORNING)


@pytest.fixture
def policy() -> ReminderPolicy:
    return ReminderPolicy(
        offsets_seconds=(7 * 86400, 86400, 2 * 3600),
        quiet_hours=QuietHours(dt.time(21, 0), dt.time(7, 0)),
        grace=dt.timedelta(hours=12),
    )


def add_event(engine: Engine, now: dt.datetime, policy: ReminderPolicy, **overrides: Any) -> int:
    """Store an event (default: a Vietnamese textiles workshop 10 days after ``now``) and return its id."""
    fields: dict[str, Any] = {
        "uid": "test-event-1",
        "kind": "workshop",
        "titles": {"en": "Sample: Test workshop", "vi": "Mẫu: Hội thảo thử"},
        "starts_at": now + dt.timedelta(days=10),
        "country": "vn",
        "sectors": ["textiles"],
        "place": "Sample venue",
        "is_sample": True,
    }
    fields.update(overrides)
    with session_scope(engine) as session:
        return upsert_event(session, build_record(**fields), now, policy).event.id


def add_user(engine: Engine, external_id: str, *, channel: str = "telegram", language: str = "en", **fields: Any) -> int:
    """Insert a user and return the id."""
    # A user who has written before, so no turn is their first (which adds the privacy notice).
    fields.setdefault("last_seen_at", utc_now())
    with session_scope(engine) as session:
        user = User(channel=channel, external_id=external_id, language=language, **fields)
        session.add(user)
        session.flush()
        return user.id


def request_reminder(engine: Engine, user_id: int, event_id: int, at: dt.datetime) -> None:
    """Record that ``user_id`` pressed "remind me" on ``event_id`` at ``at``."""
    with session_scope(engine) as session:
        session.add(EventReminder(user_id=user_id, event_id=event_id, created_at=at))


def subscribe(engine: Engine, user_id: int, at: dt.datetime, sector: str | None = None, country: str | None = None) -> None:
    """Subscribe ``user_id`` to (sector, country) at ``at``."""
    with session_scope(engine) as session:
        session.add(Subscription(user_id=user_id, sector=sector, country=country, created_at=at))


def load_event(engine: Engine, event_id: int) -> Event:
    with session_scope(engine) as session:
        event = session.get(Event, event_id)
        assert event is not None
        session.expunge(event)
        return event
