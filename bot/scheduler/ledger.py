"""The delivery ledger: ``reminder_deliveries`` rows and their states.

A row is written before its message is sent, and the unique (user, event, kind) key
makes a second plan of the same message a no-op. States::

    pending --claim--> sending --confirm--> sent
       ^                  |
       +--- retry / crash recovery (re-send: at least once, see docs/events.md)
    pending --> obsolete | expired | missed | skipped      (never sent, with a reason)
    sending --> failed                                     (permanent error or too many attempts)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bot.storage.models import ReminderDelivery

logger = logging.getLogger(__name__)

PENDING = "pending"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
#: The event was cancelled or moved after the row was planned.
OBSOLETE = "obsolete"
#: The event had started before the row could be sent.
EXPIRED = "expired"
#: The row was due longer ago than the grace window allows.
MISSED = "missed"
#: The owner is inactive (blocked the bot or left).
SKIPPED = "skipped"

FINAL_STATES = frozenset({SENT, FAILED, OBSOLETE, EXPIRED, MISSED, SKIPPED})

#: Rows inserted per statement; keeps PostgreSQL under its 65,535 bind parameters.
INSERT_CHUNK = 1000


@dataclasses.dataclass(frozen=True)
class PlannedDelivery:
    """A row to add to the ledger."""

    user_id: int
    event_id: int
    kind: str
    due_at: dt.datetime


def insert_deliveries(session: Session, rows: Sequence[PlannedDelivery]) -> int:
    """Insert ``rows`` that are not in the ledger yet and return how many were new.

    Uses INSERT ... ON CONFLICT DO NOTHING, so a concurrent planner (a chat turn and
    the scheduler) cannot create a second row for the same (user, event, kind).
    """
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    if dialect not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"database {dialect!r} is not supported: use SQLite or PostgreSQL")
    inserted = 0
    for start in range(0, len(rows), INSERT_CHUNK):
        chunk = rows[start : start + INSERT_CHUNK]
        values: list[dict[str, Any]] = [
            {
                "user_id": row.user_id,
                "event_id": row.event_id,
                "kind": row.kind,
                "due_at": row.due_at,
                "status": PENDING,
                "attempts": 0,
            }
            for row in chunk
        ]
        statement = insert(ReminderDelivery).values(values).on_conflict_do_nothing(index_elements=["user_id", "event_id", "kind"])
        # RETURNING lists only the rows inserted; rowcount is not reliable for this statement with psycopg.
        inserted += len(session.execute(statement.returning(ReminderDelivery.id)).all())
    return inserted


def recover_unconfirmed(session: Session) -> int:
    """Put rows left in ``sending`` by a dead process back to ``pending`` and return how many.

    Only the scheduler that holds the ownership lock may call this: the lock proves the
    process that claimed these rows is gone. Their messages may or may not have reached
    the owner, and they are sent again (at-least-once).
    """
    result = session.execute(update(ReminderDelivery).where(ReminderDelivery.status == SENDING).values(status=PENDING))
    count = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if count:
        logger.warning("re-queued %d deliveries whose send was not confirmed before the last stop; they are sent again", count)
    return count


def status_counts(session: Session, event_id: int | None = None) -> dict[str, int]:
    """Return the number of ledger rows per status (for one event when given)."""
    query = select(ReminderDelivery.status, func.count()).group_by(ReminderDelivery.status)
    if event_id is not None:
        query = query.where(ReminderDelivery.event_id == event_id)
    return {status: int(count) for status, count in session.execute(query)}
