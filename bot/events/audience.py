"""The audience of an event: owners who requested its reminders, and matching subscribers."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import ColumnElement, and_, or_, select, true
from sqlalchemy.orm import Session

from bot.storage.models import Event, EventReminder, Subscription, User


@dataclasses.dataclass(frozen=True)
class Member:
    """One owner in an event's audience.

    ``joined_at`` is when the owner started following the event: the reminder request,
    or the later of subscription and event creation. Messages due before it are not
    planned. ``subscribed`` is True when a subscription matches, and ``requested`` when
    the owner pressed "remind me".
    """

    user_id: int
    joined_at: dt.datetime
    timezone: str
    reminder_offsets: tuple[int, ...] | None
    requested: bool
    subscribed: bool
    subscribed_at: dt.datetime | None


def subscription_matches(event: Event) -> ColumnElement[bool]:
    """Return the SQL condition "this subscription covers ``event``".

    A subscription with no sector or country covers every one; an event with no
    sectors is for every sector.
    """
    sector_condition: ColumnElement[bool] = true()
    if event.sectors:
        sector_condition = or_(Subscription.sector.is_(None), Subscription.sector.in_(list(event.sectors)))
    country_condition = or_(Subscription.country.is_(None), Subscription.country == event.country)
    return and_(sector_condition, country_condition)


def subscription_covers(sector: str | None, country: str | None, event: Event) -> bool:
    """Return True when a subscription to (``sector``, ``country``) covers ``event``; None means any."""
    sector_ok = sector is None or not event.sectors or sector in event.sectors
    return sector_ok and (country is None or country == event.country)


def followers(session: Session, event: Event, user_ids: list[int]) -> set[int]:
    """Return which of ``user_ids`` still follow ``event`` (a reminder request or a covering subscription)."""
    if not user_ids:
        return set()
    requested = select(EventReminder.user_id).where(EventReminder.event_id == event.id, EventReminder.user_id.in_(user_ids))
    following = set(session.scalars(requested))
    subscriptions = select(Subscription.user_id, Subscription.sector, Subscription.country)
    subscriptions = subscriptions.where(Subscription.user_id.in_(user_ids))
    rows = session.execute(subscriptions)
    following.update(user_id for user_id, sector, country in rows if subscription_covers(sector, country, event))
    return following


def _offsets(raw: object) -> tuple[int, ...] | None:
    if not isinstance(raw, list) or not raw:
        return None
    offsets = tuple(int(value) for value in raw if isinstance(value, int | float) and value > 0)
    return offsets or None


def event_audience(session: Session, event: Event) -> dict[int, Member]:
    """Return the active owners who follow ``event``, by user id."""
    members: dict[int, Member] = {}
    created = event.created_at

    subscribed = session.execute(
        select(User.id, User.timezone, User.reminder_offsets, Subscription.created_at)
        .join(Subscription, Subscription.user_id == User.id)
        .where(User.active.is_(True), subscription_matches(event))
    )
    for user_id, timezone, offsets, subscribed_at in subscribed:
        known = members.get(user_id)
        if known is not None and known.subscribed_at is not None and known.subscribed_at <= subscribed_at:
            continue
        members[user_id] = Member(
            user_id=user_id,
            joined_at=max(subscribed_at, created),
            timezone=timezone,
            reminder_offsets=_offsets(offsets),
            requested=False,
            subscribed=True,
            subscribed_at=subscribed_at,
        )

    requested = session.execute(
        select(User.id, User.timezone, User.reminder_offsets, EventReminder.created_at)
        .join(EventReminder, EventReminder.user_id == User.id)
        .where(User.active.is_(True), EventReminder.event_id == event.id)
    )
    for user_id, timezone, offsets, requested_at in requested:
        known = members.get(user_id)
        joined = requested_at if known is None else min(requested_at, known.joined_at)
        members[user_id] = Member(
            user_id=user_id,
            joined_at=joined,
            timezone=timezone,
            reminder_offsets=_offsets(offsets),
            requested=True,
            subscribed=known is not None,
            subscribed_at=known.subscribed_at if known else None,
        )
    return members
