"""Benchmark: one reminder to many subscribers through the local fake Bot API, with and without a kill.

Not a pytest test (run it by hand; results go in docs/events.md)::

    .venv/bin/python tests/events/bench_reminders.py --subscribers 10000 --rate-limit 30

The script creates a fresh SQLite database (or uses ``--database-url``), one event and
``--subscribers`` owners whose reminder falls due a few seconds after the scheduler
starts, and a fake Bot API server (tests/fakes/bot_api.py) that returns 429 above
``--rate-limit`` sends per sliding second. ``spin scheduler run`` runs as a child
process and sends through python-telegram-bot. With ``--kill-at F`` the child is
SIGKILLed once a fraction F of the messages is confirmed in the ledger, then started
again. Printed (and written to ``--json``): total time, messages per second between
the first and the last message the server accepted, duplicates (chats that got more
than one message) and missing (chats that got none).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import itertools
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, func, insert, select  # noqa: E402

from bot.events.catalogue import upsert_event  # noqa: E402
from bot.events.records import build_record  # noqa: E402
from bot.scheduler import ledger  # noqa: E402
from bot.scheduler.policy import ReminderPolicy  # noqa: E402
from bot.storage.db import create_db_engine, session_scope  # noqa: E402
from bot.storage.migrate import upgrade  # noqa: E402
from bot.storage.models import ReminderDelivery, Subscription, User  # noqa: E402
from tests.fakes.bot_api import FakeBotApi  # noqa: E402

FIRST_CHAT_ID = 1_000_000
#: Seconds between setup and the moment every reminder falls due (time for the child to start).
DUE_AFTER_SECONDS = 15
EVENT_STARTS_AFTER = dt.timedelta(hours=2)
#: How often the server's count is checked before a kill, and the ledger before the end.
POLL_SECONDS = 0.02
DONE_POLL_SECONDS = 1.0


def setup_database(engine: Engine, subscribers: int) -> None:
    """Insert one event and ``subscribers`` Telegram owners subscribed to it."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    policy = ReminderPolicy()
    record = build_record(
        uid="bench-event",
        kind="trade_fair",
        titles={"en": "Sample: Benchmark fair", "vi": "Mẫu: Hội chợ đo hiệu năng"},
        starts_at=now + EVENT_STARTS_AFTER,
        country="vn",
        sectors=["textiles"],
        place="Sample venue",
        is_sample=True,
    )
    offset = int(EVENT_STARTS_AFTER.total_seconds()) - DUE_AFTER_SECONDS
    with session_scope(engine) as session:
        # Created a day ago, so subscribers get the reminder but no "new event" message.
        upsert_event(session, record, now - dt.timedelta(days=1), policy)
        users = [
            {"channel": "telegram", "external_id": str(FIRST_CHAT_ID + index), "language": "vi", "reminder_offsets": [offset]}
            for index in range(subscribers)
        ]
        for start in range(0, subscribers, 1000):
            session.execute(insert(User), users[start : start + 1000])
        user_ids = list(session.scalars(select(User.id)))
        session.execute(
            insert(Subscription),
            [{"user_id": user_id, "sector": "textiles", "country": "vn", "created_at": now} for user_id in user_ids],
        )


class Child:
    """``spin scheduler run`` sending to the fake Bot API."""

    def __init__(self, database_url: str, api: FakeBotApi, var_dir: Path, name: str) -> None:
        environment = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": database_url,
            "VAR_DIR": str(var_dir),
            "TELEGRAM_BOT_TOKEN": api.token,
            "TELEGRAM_BASE_URL": api.base_url,
            "TELEGRAM_BASE_FILE_URL": api.base_file_url,
            "TELEGRAM_WEBHOOK_URL": "",
            "SCHEDULER_PLAN_INTERVAL_SECONDS": "5",
            "SCHEDULER_WAKE_INTERVAL_SECONDS": "5",
            "QUIET_HOURS_START": "00:00",
            "QUIET_HOURS_END": "00:00",
        }
        self.log_path = var_dir / f"{name}.log"
        self.cpu_seconds = 0.0
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("spin")), "scheduler", "run", "--channel", "telegram"],
            cwd=ROOT,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self._reap()

    def stop(self) -> None:
        if self.process.returncode is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self._reap()
        self._log.close()

    def _reap(self) -> None:
        """Wait for the child and keep the CPU seconds it used."""
        _pid, status, usage = os.wait4(self.process.pid, 0)
        self.process.returncode = os.waitstatus_to_exitcode(status)
        self.cpu_seconds = usage.ru_utime + usage.ru_stime


def sent_count(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.scalar(select(func.count()).where(ReminderDelivery.status == ledger.SENT)) or 0)


def ledger_counts(engine: Engine) -> collections.Counter[str]:
    with session_scope(engine) as session:
        rows = session.execute(select(ReminderDelivery.status, func.count()).group_by(ReminderDelivery.status))
        return collections.Counter({status: int(count) for status, count in rows})


def run(subscribers: int, rate_limit: int, kill_at: float | None, database_url: str | None, workdir: Path) -> dict[str, Any]:
    """Run one broadcast and return its measurements."""
    url = database_url or f"sqlite:///{workdir / 'spin.db'}"
    engine = create_db_engine(url)
    upgrade(engine)
    setup_database(engine, subscribers)
    var_dir = workdir / "var"
    var_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"subscribers": subscribers, "rate_limit_per_second": rate_limit, "kill_at": kill_at}

    with FakeBotApi.serve_in_thread(rate_limit_per_second=rate_limit) as api:
        for index in range(subscribers):
            api._chat(FIRST_CHAT_ID + index)  # a private chat the owner opened earlier
        started = time.monotonic()
        children = [Child(url, api, var_dir, "first")]
        requeued = 0
        try:
            if kill_at is not None:
                # Counted at the server rather than in the database, so polling adds no
                # database load and the kill lands at a random point of the stream.
                target = int(subscribers * kill_at)
                while len(api.successful("sendMessage")) < target:
                    time.sleep(POLL_SECONDS)
                children[-1].kill()
                counts = ledger_counts(engine)
                requeued = counts[ledger.SENDING]
                result["at_kill"] = dict(counts)
                children.append(Child(url, api, var_dir, "second"))
            while sent_count(engine) < subscribers:
                if children[-1].process.returncode is not None or children[-1].process.poll() is not None:
                    raise RuntimeError(f"scheduler exited early: see {children[-1].log_path}")
                time.sleep(DONE_POLL_SECONDS)
            finished = time.monotonic()
            time.sleep(2)  # let a late duplicate show up, if any
        finally:
            for child in children:
                child.stop()

        accepted = api.successful("sendMessage")
        per_chat = collections.Counter(request.chat_id for request in accepted)
        first, last = accepted[0].received_at, accepted[-1].received_at
        result.update(
            {
                "total_seconds": round(finished - started, 1),
                "sending_seconds": round(last - first, 1),
                "messages_accepted": len(accepted),
                "messages_per_second": round((len(accepted) - 1) / (last - first), 2) if last > first else None,
                "longest_gap_seconds": round(
                    max((b.received_at - a.received_at for a, b in itertools.pairwise(accepted)), default=0.0), 2
                ),
                "answered_429": len([request for request in api.requests("sendMessage") if request.status == 429]),
                "duplicates": sum(count - 1 for count in per_chat.values() if count > 1),
                "missing": subscribers - len(per_chat),
                "requeued_at_restart": requeued,
                "scheduler_cpu_seconds": round(sum(child.cpu_seconds for child in children), 1),
                "ledger": dict(ledger_counts(engine)),
            }
        )
    engine.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=10_000, help="Owners to remind (default 10000).")
    parser.add_argument("--rate-limit", type=int, default=30, help="Sends per second the fake server accepts (default 30).")
    parser.add_argument(
        "--kill-at", type=float, action="append", default=None, help="Also run with a SIGKILL at this fraction; repeatable."
    )
    parser.add_argument("--no-plain", action="store_true", help="Skip the run without a kill.")
    parser.add_argument("--database-url", default="", help="Empty database to use instead of a new SQLite file.")
    parser.add_argument("--json", type=Path, default=None, help="Write the results to this file.")
    arguments = parser.parse_args()
    # SIGTERM raises SystemExit, so the children are stopped by the finally blocks.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(1))

    runs: list[float | None] = ([] if arguments.no_plain else [None]) + list(arguments.kill_at or [])
    results = []
    for kill_at in runs:
        with tempfile.TemporaryDirectory(prefix="spin-bench-") as workdir:
            result = run(arguments.subscribers, arguments.rate_limit, kill_at, arguments.database_url or None, Path(workdir))
        print(json.dumps(result), flush=True)
        results.append(result)
    if arguments.json:
        machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
        arguments.json.write_text(
            json.dumps({"date": dt.datetime.now(dt.UTC).isoformat(), "machine": machine, "runs": results}, indent=2)
        )


if __name__ == "__main__":
    main()
