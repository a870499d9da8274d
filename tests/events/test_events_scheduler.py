"""The scheduler service in real time: APScheduler jobs, ownership, standby takeover."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from bot.scheduler import ledger
from bot.scheduler.policy import ReminderPolicy
from bot.scheduler.runner import telegram_bot_with_scheduler
from bot.scheduler.service import JOBSTORE_TABLE, PLAN_JOB_ID, WAKE_JOB_ID, SchedulerService, drop_job_store
from bot.services import free_port
from bot.settings import Settings, get_settings
from bot.storage.db import session_scope
from bot.storage.models import ReminderDelivery
from bot.storage.types import utc_now
from tests.events.conftest import RecordingChannel, add_event, add_user, request_reminder
from tests.fakes.bot_api import FakeBotApi, RecordedRequest

#: Offsets in seconds before the event start; the event starts START_IN seconds after setup.
OFFSETS = [9, 6, 3]
START_IN = 12
OWNERS = 5


@pytest.fixture
def fast_settings(tmp_path: Path) -> Settings:
    """Settings with one-second jobs and no quiet hours (the tests run at any time of day)."""
    return get_settings().model_copy(
        update={
            "var_dir": tmp_path / "var",
            "scheduler_plan_interval_seconds": 1,
            "scheduler_wake_interval_seconds": 1,
            "scheduler_standby_poll_seconds": 0.2,
            "quiet_hours_start": dt.time(0, 0),
            "quiet_hours_end": dt.time(0, 0),
        }
    )


@pytest.fixture
def job_store_cleanup(db_engine: Engine) -> Iterator[None]:
    yield
    drop_job_store(db_engine)


def setup_event(engine: Engine, policy: ReminderPolicy) -> list[str]:
    now = utc_now()
    event_id = add_event(engine, now, policy, starts_at=now + dt.timedelta(seconds=START_IN))
    external_ids = []
    for index in range(OWNERS):
        external_id = f"90{index}"
        request_reminder(engine, add_user(engine, external_id, reminder_offsets=OFFSETS), event_id, now)
        external_ids.append(external_id)
    return external_ids


async def wait_for(condition, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def ledger_statuses(engine: Engine) -> collections.Counter[str]:
    with session_scope(engine) as session:
        return collections.Counter(session.scalars(select(ReminderDelivery.status)))


@pytest.mark.usefixtures("job_store_cleanup")
async def test_second_scheduler_does_not_double_sends(db_engine: Engine, fast_settings: Settings, policy: ReminderPolicy) -> None:
    channel = RecordingChannel()
    external_ids = setup_event(db_engine, policy)
    services = [SchedulerService(db_engine, {channel.name: channel}, fast_settings) for _ in range(2)]
    tasks = [asyncio.create_task(service.run()) for service in services]
    try:
        await wait_for(lambda: len(channel.sent) >= OWNERS * len(OFFSETS), timeout=START_IN + 10)
        await asyncio.sleep(1.5)
        owners = [service.owner for service in services]
    finally:
        for service in services:
            service.stop()
        await asyncio.gather(*tasks)

    assert sorted(owners) == [False, True]
    per_user = collections.Counter(item.external_id for item in channel.sent)
    assert per_user == dict.fromkeys(external_ids, len(OFFSETS))
    assert ledger_statuses(db_engine) == {ledger.SENT: OWNERS * len(OFFSETS)}


@pytest.mark.usefixtures("job_store_cleanup")
async def test_standby_takes_over_without_repeats(db_engine: Engine, fast_settings: Settings, policy: ReminderPolicy) -> None:
    channel = RecordingChannel()
    external_ids = setup_event(db_engine, policy)
    first = SchedulerService(db_engine, {channel.name: channel}, fast_settings)
    second = SchedulerService(db_engine, {channel.name: channel}, fast_settings)
    first_task = asyncio.create_task(first.run())
    await wait_for(lambda: first.owner, timeout=5)
    second_task = asyncio.create_task(second.run())
    try:
        await wait_for(lambda: len(channel.sent) >= OWNERS, timeout=START_IN)
        first.stop()
        await first_task
        delivered_by_first = len(channel.sent)
        await wait_for(lambda: second.owner, timeout=5)
        await wait_for(lambda: len(channel.sent) >= OWNERS * len(OFFSETS), timeout=START_IN + 10)
        await asyncio.sleep(1.5)
    finally:
        first.stop()
        second.stop()
        await asyncio.gather(first_task, second_task)

    assert OWNERS <= delivered_by_first < OWNERS * len(OFFSETS)
    per_user = collections.Counter(item.external_id for item in channel.sent)
    assert per_user == dict.fromkeys(external_ids, len(OFFSETS))


@pytest.mark.usefixtures("job_store_cleanup")
async def test_jobs_kept_in_job_store(db_engine: Engine, fast_settings: Settings) -> None:
    channel = RecordingChannel()
    service = SchedulerService(db_engine, {channel.name: channel}, fast_settings)
    task = asyncio.create_task(service.run())
    await wait_for(lambda: service.owner, timeout=5)
    await asyncio.sleep(0.5)
    service.stop()
    await task

    with db_engine.connect() as connection:
        stored = {row[0]: row[1] for row in connection.execute(text(f"SELECT id, next_run_time FROM {JOBSTORE_TABLE}"))}
    assert set(stored) == {PLAN_JOB_ID, WAKE_JOB_ID}
    assert all(next_run is not None for next_run in stored.values())


@pytest.mark.usefixtures("job_store_cleanup")
async def test_scheduler_beside_telegram_bot(db_engine: Engine, fast_settings: Settings, policy: ReminderPolicy) -> None:
    """``spin run`` with a token: reminders go out through the chat bot's own channel."""
    async with FakeBotApi() as api:
        now = utc_now()
        event_id = add_event(db_engine, now, policy, starts_at=now + dt.timedelta(seconds=START_IN))
        chat_ids = [80_001, 80_002]
        for chat_id in chat_ids:
            api.inject_message(chat_id, "xin chao", language_code="vi")  # the owner opened the chat earlier
            request_reminder(db_engine, add_user(db_engine, str(chat_id), reminder_offsets=OFFSETS), event_id, now)
        settings = fast_settings.model_copy(
            update={
                "database_url": db_engine.url.render_as_string(hide_password=False),
                "telegram_bot_token": api.token,
                "telegram_base_url": api.base_url,
                "telegram_base_file_url": api.base_file_url,
                "telegram_webhook_url": "",
                "rasa_port": free_port(),
            }
        )

        def reminders() -> list[RecordedRequest]:
            return [request for request in api.successful("sendMessage") if str(request.params.get("text", "")).startswith("🔔")]

        async with telegram_bot_with_scheduler(settings, engine=db_engine) as service:
            await wait_for(lambda: len(reminders()) >= len(chat_ids) * len(OFFSETS), timeout=START_IN + 10)
            await asyncio.sleep(1.5)
            assert service.owner

    per_chat = collections.Counter(request.chat_id for request in reminders())
    assert per_chat == dict.fromkeys(chat_ids, len(OFFSETS))
    assert ledger_statuses(db_engine) == {ledger.SENT: len(chat_ids) * len(OFFSETS)}
