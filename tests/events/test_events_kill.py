"""Exactly-once reminders across SIGKILL and restart, through the real Telegram client.

The scheduler runs as a real subprocess (``spin scheduler run``) that sends through
python-telegram-bot to the local fake Bot API server (tests/fakes/bot_api.py), on
SQLite and PostgreSQL. The event starts two minutes after setup; reminders fall due
seconds apart, so a kill lands between two deliveries.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from bot.scheduler import ledger
from bot.scheduler.policy import ReminderPolicy
from bot.scheduler.service import drop_job_store
from bot.settings import PROJECT_ROOT
from bot.storage.db import session_scope
from bot.storage.models import ReminderDelivery
from bot.storage.types import utc_now
from tests.events.conftest import add_event, add_user, request_reminder
from tests.fakes.bot_api import FakeBotApi

#: The event starts this many seconds after setup.
START_IN = 120
#: Reminder offsets in seconds: due 10 s, 40 s and 70 s after setup.
OFFSETS = [110, 80, 50]
OWNERS = 4
FIRST_CHAT_ID = 70_000


@pytest.fixture
def api() -> Iterator[FakeBotApi]:
    with FakeBotApi.serve_in_thread() as fake:
        yield fake


@pytest.fixture
def job_store_cleanup(db_engine: Engine) -> Iterator[None]:
    yield
    drop_job_store(db_engine)


class SchedulerProcess:
    """``spin scheduler run`` as a child process with its own log file."""

    def __init__(self, engine: Engine, api: FakeBotApi, var_dir: Path, name: str) -> None:
        self.log_path = var_dir / f"{name}.log"
        spin = Path(sys.executable).with_name("spin")
        environment = {
            **os.environ,
            "PYTHONPATH": str(PROJECT_ROOT),
            "DATABASE_URL": engine.url.render_as_string(hide_password=False),
            "VAR_DIR": str(var_dir),
            "TELEGRAM_BOT_TOKEN": api.token,
            "TELEGRAM_BASE_URL": api.base_url,
            "TELEGRAM_BASE_FILE_URL": api.base_file_url,
            "TELEGRAM_WEBHOOK_URL": "",
            "SCHEDULER_PLAN_INTERVAL_SECONDS": "1",
            "SCHEDULER_WAKE_INTERVAL_SECONDS": "1",
            "SCHEDULER_STANDBY_POLL_SECONDS": "0.2",
            # No quiet hours: the test may run at night in Vietnam.
            "QUIET_HOURS_START": "00:00",
            "QUIET_HOURS_END": "00:00",
        }
        var_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(spin), "scheduler", "run", "--channel", "telegram"],
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def owns_lock(self) -> bool:
        return "scheduler took ownership" in self.log()

    def kill(self) -> None:
        """SIGKILL the process: no cleanup, no release, like a power cut."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


@contextlib.contextmanager
def processes() -> Iterator[list[SchedulerProcess]]:
    started: list[SchedulerProcess] = []
    try:
        yield started
    finally:
        for process in started:
            process.stop()


def wait_until(condition: Callable[[], bool], timeout: float, what: str, logs: list[SchedulerProcess] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            tails = "\n".join(process.log()[-3000:] for process in logs or [])
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")
        time.sleep(0.05)


def setup(
    engine: Engine, api: FakeBotApi, policy: ReminderPolicy, owners: int = OWNERS, offsets: list[int] = OFFSETS
) -> tuple[int, list[int]]:
    now = utc_now()
    event_id = add_event(engine, now, policy, starts_at=now + dt.timedelta(seconds=START_IN))
    chat_ids = []
    for index in range(owners):
        chat_id = FIRST_CHAT_ID + index
        api.inject_message(chat_id, "xin chao", language_code="vi")
        request_reminder(engine, add_user(engine, str(chat_id), language="vi", reminder_offsets=offsets), event_id, now)
        chat_ids.append(chat_id)
    return event_id, chat_ids


def ledger_counts(engine: Engine) -> collections.Counter[str]:
    with session_scope(engine) as session:
        return collections.Counter(session.scalars(select(ReminderDelivery.status)))


def delivered(api: FakeBotApi) -> collections.Counter[int]:
    """Return the number of reminder messages each chat received."""
    return collections.Counter(request.chat_id for request in api.successful("sendMessage"))


def settled_after_wave(engine: Engine, api: FakeBotApi, wave: int, owners: int = OWNERS) -> Callable[[], bool]:
    """Return a check: ``wave`` reminders per owner are confirmed in the ledger and none is in flight."""

    def check() -> bool:
        counts = ledger_counts(engine)
        return (
            counts[ledger.SENT] == owners * wave and counts[ledger.SENDING] == 0 and sum(delivered(api).values()) == owners * wave
        )

    return check


@pytest.mark.usefixtures("job_store_cleanup")
def test_killed_between_deliveries_exactly_once(
    db_engine: Engine, api: FakeBotApi, policy: ReminderPolicy, tmp_path: Path
) -> None:
    _event_id, chat_ids = setup(db_engine, api, policy)

    with processes() as started:
        started.append(SchedulerProcess(db_engine, api, tmp_path / "var", "first"))
        wait_until(settled_after_wave(db_engine, api, 1), timeout=40, what="the first reminders", logs=started)
        started[-1].kill()

        started.append(SchedulerProcess(db_engine, api, tmp_path / "var", "second"))
        wait_until(settled_after_wave(db_engine, api, 2), timeout=45, what="the second reminders", logs=started)
        started[-1].kill()

        started.append(SchedulerProcess(db_engine, api, tmp_path / "var", "third"))
        wait_until(settled_after_wave(db_engine, api, 3), timeout=45, what="the third reminders", logs=started)
        time.sleep(2)

    assert delivered(api) == dict.fromkeys(chat_ids, len(OFFSETS))
    assert ledger_counts(db_engine) == {ledger.SENT: OWNERS * len(OFFSETS)}
    with session_scope(db_engine) as session:
        attempts = set(session.scalars(select(ReminderDelivery.attempts)))
    assert attempts == {1}
    texts = [request.params["text"] for request in api.successful("sendMessage")]
    assert all(text.startswith("🔔 Nhắc lịch") for text in texts), texts[:3]


@pytest.mark.usefixtures("job_store_cleanup")
def test_second_process_does_not_double_sends(db_engine: Engine, api: FakeBotApi, policy: ReminderPolicy, tmp_path: Path) -> None:
    _event_id, chat_ids = setup(db_engine, api, policy)

    with processes() as started:
        started.append(SchedulerProcess(db_engine, api, tmp_path / "var", "a"))
        started.append(SchedulerProcess(db_engine, api, tmp_path / "var", "b"))
        wait_until(lambda: any(process.owns_lock() for process in started), timeout=30, what="an owner", logs=started)
        wait_until(settled_after_wave(db_engine, api, 1), timeout=40, what="the first reminders", logs=started)
        owner, standby = started if started[0].owns_lock() else reversed(started)
        assert not standby.owns_lock()
        assert "waiting as standby" in standby.log()
        owner.kill()

        wait_until(standby.owns_lock, timeout=15, what="the standby to take over", logs=started)
        wait_until(settled_after_wave(db_engine, api, 3), timeout=80, what="every reminder", logs=started)
        time.sleep(2)

    assert delivered(api) == dict.fromkeys(chat_ids, len(OFFSETS))
    assert ledger_counts(db_engine) == {ledger.SENT: OWNERS * len(OFFSETS)}


@pytest.mark.usefixtures("job_store_cleanup")
def test_kill_during_send_resends_at_least_once(
    db_engine: Engine, api: FakeBotApi, policy: ReminderPolicy, tmp_path: Path
) -> None:
    """The documented trade-off: a message in flight at the kill is sent again, never lost."""
    _event_id, [chat_id] = setup(db_engine, api, policy, owners=1, offsets=[START_IN - 10])

    with processes() as started:
        started.append(SchedulerProcess(db_engine, api, tmp_path / "var", "first"))
        wait_until(lambda: api.requests("getMe") != [], timeout=30, what="the bot to start", logs=started)
        api.latency_seconds = 5.0  # Hold each answer, so the kill lands inside the HTTP round trip.
        wait_until(lambda: api.requests("sendMessage") != [], timeout=40, what="the reminder request", logs=started)
        started[-1].kill()
        assert ledger_counts(db_engine) == {ledger.SENDING: 1}
        api.latency_seconds = 0.0

        started.append(SchedulerProcess(db_engine, api, tmp_path / "var", "second"))
        wait_until(lambda: ledger_counts(db_engine) == {ledger.SENT: 1}, timeout=40, what="the re-send", logs=started)
        wait_until(lambda: delivered(api)[chat_id] == 2, timeout=10, what="the held first send to complete", logs=started)

    assert "re-queued 1 deliveries whose send was not confirmed" in started[-1].log()
    with session_scope(db_engine) as session:
        row = session.scalars(select(ReminderDelivery)).one()
        assert (row.status, row.attempts) == (ledger.SENT, 2)
