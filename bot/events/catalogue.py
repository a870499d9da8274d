"""Storing and querying events: upsert by uid, cancel, and the upcoming list."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Literal

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from bot.events.records import STATUS_CANCELLED, STATUS_CHANGED, STATUS_SCHEDULED, EventRecord, record_fields
from bot.scheduler import kinds
from bot.scheduler.planning import record_notice
from bot.scheduler.policy import ReminderPolicy
from bot.settings import DEFAULT_LANGUAGE
from bot.storage.models import Event

logger = logging.getLogger(__name__)

#: Fields whose change makes an event "changed" and owes its followers a notice.
_TIME_FIELDS = ("starts_at", "ends_at")
_PLACE_FIELDS = ("place", "province", "country", "timezone")

Outcome = Literal["created", "updated", "unchanged"]


class EventNotFoundError(LookupError):
    """No event has the given id or uid."""


@dataclasses.dataclass(frozen=True)
class UpsertResult:
    """Outcome of an upsert for one event."""

    event: Event
    outcome: Outcome
    moved: bool = False
    cancelled: bool = False
    notices: int = 0


def _changed_fields(event: Event, values: dict[str, object]) -> set[str]:
    changed = set()
    for name, value in values.items():
        current = getattr(event, name)
        if name == "sectors":
            current, value = sorted(current or []), sorted(value or [])  # type: ignore[call-overload]
        if current != value:
            changed.add(name)
    return changed


def upsert_event(session: Session, record: EventRecord, now: dt.datetime, policy: ReminderPolicy) -> UpsertResult:
    """Create the event ``record.uid`` or update it in place.

    An identical record (same content hash) changes nothing. An update increments
    ``version``; a new time or place sets status ``changed`` and owes a notice; a
    source status of ``cancelled`` cancels the event and owes a cancellation notice.
    """
    content_hash = record.content_hash()
    event = session.scalars(select(Event).where(Event.uid == record.uid)).first()
    values = record_fields(record)
    if event is None:
        event = Event(
            **values,
            status=record.status,
            content_hash=content_hash,
            version=1,
            created_at=now,
            updated_at=now,
        )
        session.add(event)
        session.flush()
        logger.info("created event %s (uid %s)", event.id, record.uid)
        return UpsertResult(event, "created")
    if event.content_hash == content_hash:
        return UpsertResult(event, "unchanged")

    changed = _changed_fields(event, values)
    moved = bool(changed & set(_TIME_FIELDS + _PLACE_FIELDS))
    rescheduled = "starts_at" in changed
    for name in changed:
        setattr(event, name, values[name])
    was_cancelled = event.status == STATUS_CANCELLED
    event.content_hash = content_hash
    event.version += 1
    event.updated_at = now
    if rescheduled:
        event.rescheduled_at = now

    notices = 0
    cancelled = False
    if record.status == STATUS_CANCELLED:
        if not was_cancelled:
            event.status = STATUS_CANCELLED
            cancelled = True
            session.flush()
            notices = record_notice(session, event, kinds.CANCELLED, now, policy)
    elif was_cancelled:
        # The source brings a cancelled event back: tell its followers as a change.
        event.status = STATUS_CHANGED
        session.flush()
        notices = record_notice(session, event, kinds.CHANGED, now, policy)
    elif moved:
        event.status = STATUS_CHANGED
        session.flush()
        notices = record_notice(session, event, kinds.CHANGED, now, policy)
    session.flush()
    logger.info("updated event %s to version %s (fields %s)", event.id, event.version, ",".join(sorted(changed)))
    return UpsertResult(event, "updated", moved=moved, cancelled=cancelled, notices=notices)


def cancel_event(session: Session, event_id: int, now: dt.datetime, policy: ReminderPolicy) -> UpsertResult:
    """Cancel event ``event_id``; its followers are owed one cancellation notice.

    Cancelling a cancelled event changes nothing. Raises :class:`EventNotFoundError`.
    """
    event = session.get(Event, event_id)
    if event is None:
        raise EventNotFoundError(f"event {event_id} not found: see `spin events list` for ids")
    if event.status == STATUS_CANCELLED:
        return UpsertResult(event, "unchanged")
    event.status = STATUS_CANCELLED
    event.version += 1
    event.updated_at = now
    session.flush()
    notices = record_notice(session, event, kinds.CANCELLED, now, policy)
    logger.info("cancelled event %s (version %s)", event.id, event.version)
    return UpsertResult(event, "updated", cancelled=True, notices=notices)


def _matches_sector(event: Event, sector: str | None) -> bool:
    return not sector or not event.sectors or sector in event.sectors


def upcoming_events(
    session: Session,
    now: dt.datetime,
    *,
    sector: str | None = None,
    country: str | None = None,
    kinds: tuple[str, ...] | None = None,
    limit: int = 5,
    offset: int = 0,
) -> tuple[list[Event], int]:
    """Return (one page of upcoming events, total matching), soonest first; ``kinds`` None means any kind.

    An event with no sectors is for every sector. Sector filtering happens in Python
    because ``sectors`` is a JSON list that SQLite and PostgreSQL query differently;
    the list of upcoming events in one country is small.
    """
    query = select(Event).where(Event.starts_at > now, Event.status != STATUS_CANCELLED)
    if country:
        query = query.where(Event.country == country)
    if kinds:
        query = query.where(Event.kind.in_(kinds))
    candidates = session.scalars(query.order_by(Event.starts_at, Event.id)).all()
    matching = [event for event in candidates if _matches_sector(event, sector)]
    return matching[offset : offset + limit], len(matching)


def count_events(session: Session, *, include_past: bool = False, now: dt.datetime | None = None) -> int:
    """Return how many events the catalogue holds (upcoming only unless ``include_past``)."""
    query = select(func.count()).select_from(Event)
    if not include_past and now is not None:
        query = query.where(Event.starts_at > now)
    return int(session.scalar(query) or 0)


def all_events(session: Session, *, now: dt.datetime | None = None, include_cancelled: bool = True) -> list[Event]:
    """Return events in start order (only those not yet started when ``now`` is given)."""
    query = select(Event).order_by(Event.starts_at, Event.id)
    if now is not None:
        query = query.where(Event.starts_at > now)
    if not include_cancelled:
        query = query.where(or_(Event.status == STATUS_SCHEDULED, Event.status == STATUS_CHANGED))
    return list(session.scalars(query))


def localized(texts: dict[str, str] | None, language: str) -> str:
    """Return the text in ``language``, else English, else any language, else ""."""
    if not texts:
        return ""
    return texts.get(language) or texts.get(DEFAULT_LANGUAGE) or next(iter(texts.values()), "")
