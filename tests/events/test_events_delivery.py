"""Planning and delivering reminders with a clock the tests control, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select, update

from bot.events.catalogue import cancel_event, upsert_event
from bot.events.records import build_record
from bot.scheduler import kinds, ledger
from bot.scheduler.clock import ManualClock
from bot.scheduler.planning import plan_upcoming
from bot.scheduler.policy import ReminderPolicy
from bot.scheduler.worker import DeliveryWorker
from bot.storage.db import session_scope
from bot.storage.models import ReminderDelivery, User
from tests.events.conftest import MORNING, RecordingChannel, add_event, add_user, request_reminder, subscribe

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")


def plan(engine: Engine, clock: ManualClock, policy: ReminderPolicy) -> int:
    with session_scope(engine) as session:
        return plan_upcoming(session, clock.now(), policy).inserted


def rows(engine: Engine, **filters: object) -> list[ReminderDelivery]:
    with session_scope(engine) as session:
        query = select(ReminderDelivery).order_by(ReminderDelivery.due_at, ReminderDelivery.id)
        for name, value in filters.items():
            query = query.where(getattr(ReminderDelivery, name) == value)
        found = list(session.scalars(query))
        session.expunge_all()
        return found


def worker(engine: Engine, channel: RecordingChannel, policy: ReminderPolicy, clock: ManualClock) -> DeliveryWorker:
    return DeliveryWorker(engine, {channel.name: channel}, policy, clock=clock, rate_per_second=None)


async def run_until(
    engine: Engine, delivery: DeliveryWorker, clock: ManualClock, policy: ReminderPolicy, end: dt.datetime, step: dt.timedelta
) -> None:
    """Advance the clock to ``end`` in ``step``s, planning and delivering at each step."""
    while clock.now() < end:
        clock.advance(step)
        plan(engine, clock, policy)
        await delivery.run_pass()


async def test_each_offset_delivered_once(
    db_engine: Engine, channel: RecordingChannel, policy: ReminderPolicy, clock: ManualClock
) -> None:
    start = MORNING + dt.timedelta(days=10)
    event_id = add_event(db_engine, clock.now(), policy, starts_at=start)
    owner = add_user(db_engine, "1001")
    request_reminder(db_engine, owner, event_id, clock.now())
    delivery = worker(db_engine, channel, policy, clock)

    await run_until(db_engine, delivery, clock, policy, start - dt.timedelta(minutes=1), dt.timedelta(minutes=30))
    await delivery.run_pass()

    texts = [message.text for message in channel.to("1001")]
    assert len(texts) == 3, texts
    sent = rows(db_engine, status=ledger.SENT)
    assert sorted(kinds.parse_kind(row.kind).offset_seconds or 0 for row in sent) == [7200, 86400, 604800]
    for row in sent:
        assert row.sent_at is not None and row.sent_at >= row.due_at
        assert row.attempts == 1


async def test_quiet_hours_reminder_moves_to_morning(
    db_engine: Engine, channel: RecordingChannel, policy: ReminderPolicy, clock: ManualClock
) -> None:
    # The event starts at 10:00 local, so a reminder 12 hours before falls due at 22:00.
    start = dt.datetime(2027, 3, 5, 10, 0, tzinfo=HANOI)
    event_id = add_event(db_engine, clock.now(), policy, starts_at=start)
    owner = add_user(db_engine, "1002", reminder_offsets=[12 * 3600])
    request_reminder(db_engine, owner, event_id, clock.now())
    plan(db_engine, clock, policy)
    delivery = worker(db_engine, channel, policy, clock)

    [planned] = rows(db_engine, user_id=owner)
    assert planned.due_at == dt.datetime(2027, 3, 5, 7, 0, tzinfo=HANOI)

    clock.set(dt.datetime(2027, 3, 4, 22, 0, tzinfo=HANOI))
    await delivery.run_pass()
    clock.set(dt.datetime(2027, 3, 5, 6, 59, tzinfo=HANOI))
    await delivery.run_pass()
    assert channel.to("1002") == []

    clock.set(dt.datetime(2027, 3, 5, 7, 0, tzinfo=HANOI))
    await delivery.run_pass()

    assert len(channel.to("1002")) == 1
    [row] = rows(db_engine, user_id=owner)
    assert row.status == ledger.SENT
    assert row.sent_at == dt.datetime(2027, 3, 5, 7, 0, tzinfo=HANOI)


async def test_late_send_in_quiet_hours_postponed(
    db_engine: Engine, channel: RecordingChannel, policy: ReminderPolicy, clock: ManualClock
) -> None:
    start = dt.datetime(2027, 3, 6, 15, 0, tzinfo=HANOI)
    event_id = add_event(db_engine, clock.now(), policy, starts_at=start)
    owner = add_user(db_engine, "1003", reminder_offsets=[24 * 3600])
    request_reminder(db_engine, owner, event_id, clock.now())
    plan(db_engine, clock, policy)
    delivery = worker(db_engine, channel, policy, clock)

    # The process was down from before 15:00 until 22:30: the reminder is late and it is night.
    clock.set(dt.datetime(2027, 3, 5, 22, 30, tzinfo=HANOI))
    await delivery.run_pass()

    assert channel.to("1003") == []
    [row] = rows(db_engine, user_id=owner)
    assert row.status == ledger.PENDING
    assert row.due_at == dt.datetime(2027, 3, 6, 7, 0, tzinfo=HANOI)
    assert delivery.stats.postponed == 1


async def test_due_before_request_not_planned(db_engine: Engine, policy: ReminderPolicy, clock: ManualClock) -> None:
    event_id = add_event(db_engine, clock.now(), policy, starts_at=MORNING + dt.timedelta(days=3))
    owner = add_user(db_engine, "1004")
    request_reminder(db_engine, owner, event_id, clock.now())

    plan(db_engine, clock, policy)
    plan(db_engine, clock, policy)

    planned = rows(db_engine, user_id=owner)
    assert sorted(kinds.parse_kind(row.kind).offset_seconds or 0 for row in planned) == [7200, 86400]


async def test_cancelled_event_notifies_subscribers_once(
    db_engine: Engine, channel: RecordingChannel, policy: ReminderPolicy, clock: ManualClock
) -> None:
    event_id = add_event(db_engine, clock.now(), policy)
    subscribers = [add_user(db_engine, f"20{index}") for index in range(3)]
    for user_id in subscribers:
        subscribe(db_engine, user_id, clock.now() - dt.timedelta(days=1), sector="textiles")
    outsider = add_user(db_engine, "2999")
    subscribe(db_engine, outsider, clock.now() - dt.timedelta(days=1), sector="food")
    delivery = worker(db_engine, channel, policy, clock)
    plan(db_engine, clock, policy)
    await delivery.run_pass()
    announcements = len(channel.sent)
    assert all(item.message.text.startswith("🆕") for item in channel.sent)
    assert all(any("events:remind:" in button.payload for button in item.message.buttons) for item in channel.sent)

    clock.advance(dt.timedelta(hours=1))
    with session_scope(db_engine) as session:
        cancel_event(session, event_id, clock.now(), policy)
        cancel_event(session, event_id, clock.now(), policy)
    for _ in range(3):
        plan(db_engine, clock, policy)
        await delivery.run_pass()
        clock.advance(dt.timedelta(days=2))

    assert announcements == 3
    notices = [item for item in channel.sent[announcements:]]
    assert sorted(item.external_id for item in notices) == ["200", "201", "202"]
    assert all(item.message.text.startswith("❌") for item in notices)
    assert all(any("events:stop:" in button.payload for button in item.message.buttons) for item in notices)
    assert channel.to("2999") == []
    assert rows(db_engine, status=ledger.PENDING) == []
    assert len(rows(db_engine, status=ledger.OBSOLETE)) == 9


async def test_moved_event_notice_and_new_reminders(
    db_engine: Engine, channel: RecordingChannel, policy: ReminderPolicy, clock: ManualClock
) -> None:
    start = MORNING + dt.timedelta(days=10)
    event_id = add_event(db_engine, clock.now(), policy, starts_at=start)
    owner = add_user(db_engine, "3001")
    request_reminder(db_engine, owner, event_id, clock.now())
    plan(db_engine, clock, policy)
    delivery = worker(db_engine, channel, policy, clock)

    clock.advance(dt.timedelta(days=3, hours=1))
    await delivery.run_pass()
    assert len(channel.to("3001")) == 1
    new_start = start + dt.timedelta(days=2)
    with session_scope(db_engine) as session:
        fields: dict[str, Any] = {
            "uid": "test-event-1",
            "kind": "workshop",
            "titles": {"en": "Sample: Test workshop", "vi": "Mẫu: Hội thảo thử"},
            "starts_at": new_start,
            "country": "vn",
            "sectors": ["textiles"],
            "place": "Sample venue",
            "is_sample": True,
        }
        result = upsert_event(session, build_record(**fields), clock.now(), policy)
    assert (result.outcome, result.moved, result.notices) == ("updated", True, 1)

    await run_until(db_engine, delivery, clock, policy, new_start - dt.timedelta(minutes=1), dt.timedelta(hours=1))

    texts = [message.text for message in channel.to("3001")]
    assert texts[1].startswith("⚠️"), texts
    assert len(texts) == 1 + 1 + 3, texts
    stamps = {
        kinds.parse_kind(row.kind).starts_at for row in rows(db_engine, status=ledger.SENT) if row.kind.startswith("remind:")
    }
    assert stamps == {start, new_start}
    assert len(rows(db_engine, status=ledger.OBSOLETE)) == 2


async def test_blocked_user_marked_inactive(
    db_engine: Engine, channel: RecordingChannel, policy: ReminderPolicy, clock: ManualClock
) -> None:
    event_id = add_event(db_engine, clock.now(), policy, starts_at=MORNING + dt.timedelta(hours=3))
    owners = [add_user(db_engine, f"40{index}", reminder_offsets=[3600]) for index in range(3)]
    for user_id in owners:
        request_reminder(db_engine, user_id, event_id, clock.now())
    channel.blocked.add("401")
    plan(db_engine, clock, policy)
    delivery = worker(db_engine, channel, policy, clock)

    clock.advance(dt.timedelta(hours=2))
    await delivery.run_pass()

    assert sorted(item.external_id for item in channel.sent) == ["400", "402"]
    with session_scope(db_engine) as session:
        blocked = session.get(User, owners[1])
        assert blocked is not None
        assert blocked.active is False
        assert blocked.blocked_at == clock.now()
    [failed] = rows(db_engine, status=ledger.FAILED)
    assert failed.user_id == owners[1]
    assert "blocked" in (failed.error or "")


async def test_rate_limit_waited_out(
    db_engine: Engine, channel: RecordingChannel, policy: ReminderPolicy, clock: ManualClock
) -> None:
    event_id = add_event(db_engine, clock.now(), policy, starts_at=MORNING + dt.timedelta(hours=3))
    owner = add_user(db_engine, "501", reminder_offsets=[3600])
    request_reminder(db_engine, owner, event_id, clock.now())
    plan(db_engine, clock, policy)
    channel.rate_limited.extend([0.05, 0.05])
    delivery = worker(db_engine, channel, policy, clock)

    clock.advance(dt.timedelta(hours=2))
    await delivery.run_pass()

    assert len(channel.to("501")) == 1
    assert delivery.stats.rate_limited == 2
    [row] = rows(db_engine, user_id=owner)
    assert (row.status, row.attempts) == (ledger.SENT, 1)


async def test_late_within_grace_sent_beyond_missed(
    db_engine: Engine, channel: RecordingChannel, policy: ReminderPolicy, clock: ManualClock
) -> None:
    start = MORNING + dt.timedelta(days=10)
    event_id = add_event(db_engine, clock.now(), policy, starts_at=start)
    owner = add_user(db_engine, "601", reminder_offsets=[9 * 86400, 8 * 86400])
    request_reminder(db_engine, owner, event_id, clock.now())
    plan(db_engine, clock, policy)
    delivery = worker(db_engine, channel, policy, clock)

    # Down from day 1 to day 2 + 6 h: the 9-day reminder is 30 h late, the 8-day one 6 h late.
    clock.set(MORNING + dt.timedelta(days=2, hours=6))
    await delivery.run_pass()

    assert len(channel.to("601")) == 1
    [missed] = rows(db_engine, status=ledger.MISSED)
    assert missed.kind.startswith("remind:P9D")
    [sent] = rows(db_engine, status=ledger.SENT)
    assert sent.kind.startswith("remind:P8D")


async def test_unconfirmed_send_recovered_once(
    db_engine: Engine, channel: RecordingChannel, policy: ReminderPolicy, clock: ManualClock
) -> None:
    event_id = add_event(db_engine, clock.now(), policy, starts_at=MORNING + dt.timedelta(hours=3))
    owners = [add_user(db_engine, f"70{index}", reminder_offsets=[3600]) for index in range(2)]
    for user_id in owners:
        request_reminder(db_engine, user_id, event_id, clock.now())
    plan(db_engine, clock, policy)
    # A process died after claiming the first owner's row: it is left in "sending".
    with session_scope(db_engine) as session:
        session.execute(
            update(ReminderDelivery).where(ReminderDelivery.user_id == owners[0]).values(status=ledger.SENDING, attempts=1)
        )
    clock.advance(dt.timedelta(hours=2))
    delivery = worker(db_engine, channel, policy, clock)

    await delivery.run_pass()
    assert [item.external_id for item in channel.sent] == ["701"]
    with session_scope(db_engine) as session:
        assert ledger.recover_unconfirmed(session) == 1
    await delivery.run_pass()
    await delivery.run_pass()

    assert sorted(item.external_id for item in channel.sent) == ["700", "701"]
    statuses = {row.user_id: (row.status, row.attempts) for row in rows(db_engine)}
    assert statuses == {owners[0]: (ledger.SENT, 2), owners[1]: (ledger.SENT, 1)}


async def test_unsubscribed_owner_gets_nothing_queued(
    db_engine: Engine, channel: RecordingChannel, policy: ReminderPolicy, clock: ManualClock
) -> None:
    add_event(db_engine, clock.now(), policy, starts_at=MORNING + dt.timedelta(hours=5))
    owner = add_user(db_engine, "801", reminder_offsets=[3600])
    subscribe(db_engine, owner, clock.now() - dt.timedelta(days=1))
    plan(db_engine, clock, policy)
    with session_scope(db_engine) as session:
        user = session.get(User, owner)
        assert user is not None
        for subscription in list(user.subscriptions):
            session.delete(subscription)
    clock.advance(dt.timedelta(hours=4, minutes=30))
    delivery = worker(db_engine, channel, policy, clock)

    await delivery.run_pass()

    assert channel.sent == []
    assert {row.status for row in rows(db_engine, user_id=owner)} == {ledger.OBSOLETE}


async def test_reminder_message_buttons(
    db_engine: Engine, channel: RecordingChannel, policy: ReminderPolicy, clock: ManualClock
) -> None:
    event_id = add_event(db_engine, clock.now(), policy, starts_at=MORNING + dt.timedelta(hours=3))
    owner = add_user(db_engine, "901", language="vi", reminder_offsets=[3600])
    request_reminder(db_engine, owner, event_id, clock.now())
    plan(db_engine, clock, policy)
    clock.advance(dt.timedelta(hours=2))

    await worker(db_engine, channel, policy, clock).run_pass()

    [message] = channel.to("901")
    assert message.language == "vi"
    assert "Mẫu: Hội thảo thử" in message.text
    assert message.text.startswith("🔔 Nhắc lịch")
    payloads = [button.payload for button in message.buttons]
    assert payloads == [
        f'/press{{"cmd":"events:details:{event_id}"}}',
        f'/press{{"cmd":"events:ics:{event_id}"}}',
        f'/press{{"cmd":"events:stop:{event_id}"}}',
    ]
