"""Planning: turning events and their audiences into ledger rows with due times.

Planning only inserts rows; it never sends. It is idempotent, so the periodic job,
a "remind me" button and an import may all plan the same event.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.events.audience import Member, event_audience
from bot.events.records import STATUS_CANCELLED
from bot.scheduler import kinds, ledger
from bot.scheduler.policy import ReminderPolicy
from bot.scheduler.quiet_hours import adjust_for_quiet_hours, zone
from bot.storage.models import Event, ReminderDelivery

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class PlanReport:
    """What one planning pass did."""

    events: int = 0
    inserted: int = 0


def _reminder_rows(event: Event, member: Member, policy: ReminderPolicy) -> list[ledger.PlannedDelivery]:
    timezone = zone(member.timezone, policy.default_timezone)
    earliest = member.joined_at
    if event.rescheduled_at is not None and event.rescheduled_at > earliest:
        earliest = event.rescheduled_at
    rows = []
    for offset in member.reminder_offsets or policy.offsets_seconds:
        due = event.starts_at - dt.timedelta(seconds=offset)
        if due < earliest:
            # Due before the owner followed the event (or before it moved): a 7-day
            # reminder makes no sense to someone who pressed "remind me" a day ahead.
            continue
        due = adjust_for_quiet_hours(due, event.starts_at, timezone, policy.quiet_hours, not_before=earliest)
        rows.append(ledger.PlannedDelivery(member.user_id, event.id, kinds.remind_kind(offset, event.starts_at), due))
    return rows


def _announcement_row(event: Event, member: Member, policy: ReminderPolicy) -> ledger.PlannedDelivery | None:
    if not member.subscribed or member.subscribed_at is None or member.subscribed_at > event.created_at:
        return None
    timezone = zone(member.timezone, policy.default_timezone)
    due = adjust_for_quiet_hours(event.created_at, event.starts_at, timezone, policy.quiet_hours, not_before=event.created_at)
    return ledger.PlannedDelivery(member.user_id, event.id, kinds.NEW, due)


def plan_event(session: Session, event: Event, now: dt.datetime, policy: ReminderPolicy, *, user_id: int | None = None) -> int:
    """Add the missing ledger rows of ``event`` and return how many were added.

    ``user_id`` limits planning to one owner (after a "remind me" button).
    """
    if event.status == STATUS_CANCELLED or event.starts_at <= now:
        return 0
    members = event_audience(session, event)
    if user_id is not None:
        members = {user_id: members[user_id]} if user_id in members else {}
    if not members:
        return 0
    existing_query = select(ReminderDelivery.user_id, ReminderDelivery.kind).where(ReminderDelivery.event_id == event.id)
    if user_id is not None:
        existing_query = existing_query.where(ReminderDelivery.user_id == user_id)
    existing = set(session.execute(existing_query).tuples())

    rows: list[ledger.PlannedDelivery] = []
    for member in members.values():
        candidates = _reminder_rows(event, member, policy)
        announcement = _announcement_row(event, member, policy)
        if announcement is not None:
            candidates.append(announcement)
        rows.extend(row for row in candidates if (row.user_id, row.kind) not in existing)
    inserted = ledger.insert_deliveries(session, rows)
    if inserted:
        logger.info("planned %d deliveries for event %s", inserted, event.id)
    return inserted


def plan_upcoming(session: Session, now: dt.datetime, policy: ReminderPolicy) -> PlanReport:
    """Plan every event that has not started and is not cancelled."""
    report = PlanReport()
    events = session.scalars(
        select(Event).where(Event.starts_at > now, Event.status != STATUS_CANCELLED).order_by(Event.starts_at)
    )
    for event in events:
        report.events += 1
        report.inserted += plan_event(session, event, now, policy)
    return report


def record_notice(session: Session, event: Event, notice: str, now: dt.datetime, policy: ReminderPolicy) -> int:
    """Owe every follower of ``event`` one notice that it changed or was cancelled.

    Call it in the transaction that changes the event, so the notice rows exist exactly
    when the change does. Pending reminders that no longer apply become obsolete (all
    of them on cancellation, the ones for an old start time on a move), as do older
    pending notices, which the new one replaces. Returns the number of notices added.
    """
    kind = kinds.notice_kind(notice, event.version)
    pending_for_event = (ReminderDelivery.event_id == event.id) & (ReminderDelivery.status == ledger.PENDING)
    superseded = ReminderDelivery.kind.like(f"{kinds.CHANGED}:%") | ReminderDelivery.kind.like(f"{kinds.CANCELLED}:%")
    if notice == kinds.CANCELLED:
        superseded = superseded | ReminderDelivery.kind.like(f"{kinds.REMIND}:%") | (ReminderDelivery.kind == kinds.NEW)
    else:
        current_stamp = f":{kinds.stamp(event.starts_at)}"
        superseded = superseded | (
            ReminderDelivery.kind.like(f"{kinds.REMIND}:%") & ~ReminderDelivery.kind.endswith(current_stamp)
        )
    obsolete = session.execute(update(ReminderDelivery).where(pending_for_event, superseded).values(status=ledger.OBSOLETE))

    rows = []
    for member in event_audience(session, event).values():
        timezone = zone(member.timezone, policy.default_timezone)
        due = adjust_for_quiet_hours(now, event.starts_at, timezone, policy.quiet_hours, not_before=now)
        rows.append(ledger.PlannedDelivery(member.user_id, event.id, kind, due))
    inserted = ledger.insert_deliveries(session, rows)
    logger.info(
        "event %s %s (version %s): %d notices owed, %d pending messages made obsolete",
        event.id,
        notice,
        event.version,
        inserted,
        obsolete.rowcount or 0,  # type: ignore[attr-defined]
    )
    return inserted
