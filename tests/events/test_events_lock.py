"""Scheduler ownership locks: one holder per database, released when the holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import Engine, text

from bot.scheduler.lock import POSTGRES_LOCK_KEY, FileLock, PostgresAdvisoryLock, scheduler_lock


def test_second_lock_refused_until_release(db_engine: Engine, tmp_path: Path) -> None:
    first = scheduler_lock(db_engine, tmp_path)
    second = scheduler_lock(db_engine, tmp_path)

    assert first.acquire()
    assert first.is_held()
    assert not second.acquire()
    assert not second.is_held()

    first.release()

    assert not first.is_held()
    assert second.acquire()
    second.release()


def test_lock_kind_follows_backend(db_engine: Engine, tmp_path: Path) -> None:
    lock = scheduler_lock(db_engine, tmp_path)

    if db_engine.url.get_backend_name() == "postgresql":
        assert isinstance(lock, PostgresAdvisoryLock)
    else:
        assert isinstance(lock, FileLock)
        assert lock.describe().endswith("spin.db.scheduler.lock")


def test_postgres_lock_lost_with_connection(db_engine: Engine, tmp_path: Path) -> None:
    lock = scheduler_lock(db_engine, tmp_path)
    if not isinstance(lock, PostgresAdvisoryLock):
        return
    assert lock.acquire()
    with db_engine.connect() as admin:
        holder_pid = admin.execute(
            text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND ((classid::bigint << 32) | objid::bigint) = :key"
            ),
            {"key": POSTGRES_LOCK_KEY},
        ).scalar_one()
        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": holder_pid})

    assert not lock.is_held()
    other = scheduler_lock(db_engine, tmp_path)
    assert other.acquire()
    other.release()


def test_lock_freed_when_holder_killed(db_engine: Engine, tmp_path: Path) -> None:
    url = db_engine.url.render_as_string(hide_password=False)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pathlib import Path\n"
            "from bot.storage.db import create_db_engine\n"
            "from bot.scheduler.lock import scheduler_lock\n"
            f"lock = scheduler_lock(create_db_engine({url!r}), Path({str(tmp_path)!r}))\n"
            "assert lock.acquire()\n"
            "print('held', flush=True)\n"
            "time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        waiting = scheduler_lock(db_engine, tmp_path)
        assert not waiting.acquire()

        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        deadline = time.monotonic() + 10
        while not waiting.acquire():
            assert time.monotonic() < deadline, "the lock was not released after its holder was killed"
            time.sleep(0.1)
        waiting.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
