"""Benchmark: time from an update reaching the bot to its reply reaching the Bot API server.

The real bot (long polling) talks to the fake Bot API server on 127.0.0.1 and to the real
Rasa and action servers, which this script starts on free ports with a fresh SQLite
database (``DATABASE_URL`` when set). Each chat sends its next message only
after the previous reply arrived. Measured per turn:

- ``first``: from the fake handing the update to the bot (getUpdates) to the first
  message of the reply arriving at the fake;
- ``last``: the same, to the last message of the reply.

Run from the repository root (not collected by pytest)::

    .venv/bin/python -m tests.benchmarks.telegram_latency --turns 30
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from bot.channels.telegram import running_bot
from bot.i18n import gettext
from bot.services import free_port, start_services
from bot.settings import Settings, get_settings
from bot.storage.db import create_db_engine
from bot.storage.migrate import upgrade
from tests.fakes.bot_api import FakeBotApi

logger = logging.getLogger(__name__)

#: Workloads: a command answered by a core handler, and questions answered from the knowledge base.
WORKLOADS: dict[str, list[tuple[str, str]]] = {
    "help command": [("/help", "vi"), ("/help", "km"), ("/help", "en")],
    "question": [
        ("Làm sao để giảm bao bì nhựa cho sản phẩm thủ công?", "vi"),
        ("lam sao tiet kiem nang luong trong xuong may", "vi"),
        ("How do I get FSC certification for furniture?", "en"),
        ("តើខ្ញុំអាចកាត់បន្ថយការប្រើប្រាស់ថង់ប្លាស្ទិកដោយរបៀបណា?", "km"),
    ],
}

#: After this long without a new message, a warm-up reply is taken as complete.
QUIET_SECONDS = 1.5

#: Maximum wait for one reply, in seconds.
REPLY_TIMEOUT_SECONDS = 120.0


@dataclasses.dataclass
class Turn:
    first: float
    last: float


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


async def _wait_count(api: FakeBotApi, chat_id: int, count: int) -> None:
    deadline = time.monotonic() + REPLY_TIMEOUT_SECONDS
    while len(api.bot_messages(chat_id)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"chat {chat_id} got no complete reply within {REPLY_TIMEOUT_SECONDS} s")
        await asyncio.sleep(0.005)


async def _learn_reply_sizes(api: FakeBotApi, messages: list[tuple[str, str]], chat_id: int) -> dict[str, int]:
    """Send each message once and count the messages of its reply (replies are deterministic)."""
    sizes: dict[str, int] = {}
    for text, language in messages:
        before = len(api.bot_messages(chat_id))
        api.inject_message(chat_id, text, language_code=language)
        await _wait_count(api, chat_id, before + 1)
        count = len(api.bot_messages(chat_id))
        while True:
            await asyncio.sleep(QUIET_SECONDS)
            if len(api.bot_messages(chat_id)) == count:
                break
            count = len(api.bot_messages(chat_id))
        sizes[text] = count - before
    return sizes


async def _run_chat(
    api: FakeBotApi, chat_id: int, messages: list[tuple[str, str]], sizes: dict[str, int], turns: int
) -> list[Turn]:
    results: list[Turn] = []
    for turn in range(turns):
        text, language = messages[turn % len(messages)]
        before = len(api.bot_messages(chat_id))
        update_id = api.inject_update({"message": api.build_message(chat_id, text=text, language_code=language)})
        await _wait_count(api, chat_id, before + sizes[text])
        delivered = next(at for update, _injected, at in api.delivered_updates() if update["update_id"] == update_id)
        replies = [
            request.received_at
            for request in api.successful(chat_id=chat_id)
            if request.method in ("sendMessage", "sendPhoto", "sendDocument") and request.received_at >= delivered
        ][: sizes[text]]
        results.append(Turn(first=replies[0] - delivered, last=replies[-1] - delivered))
    return results


async def _measure(
    settings: Settings, turns: int, concurrency_levels: list[int], workloads: list[str]
) -> list[dict[str, object]]:
    engine = create_db_engine(settings.database_url)
    rows: list[dict[str, object]] = []
    async with FakeBotApi() as api:
        bot_settings = settings.model_copy(
            update={
                "telegram_bot_token": api.token,
                "telegram_base_url": api.base_url,
                "telegram_base_file_url": api.base_file_url,
                "telegram_webhook_url": "",
            }
        )
        async with running_bot(bot_settings, engine=engine):
            chat_ids = iter(range(500_000, 600_000))
            for workload in workloads:
                messages = WORKLOADS[workload]
                warm_up_chat = next(chat_ids)
                sizes = await _learn_reply_sizes(api, messages, warm_up_chat)
                apologies = {gettext(key, language) for key in ("core.error", "core.try_again") for _text, language in messages}
                failed = [message["text"] for message in api.bot_messages(warm_up_chat) if message.get("text") in apologies]
                if failed:
                    logger.error(
                        "workload %r skipped: the stack answered with an apology (%s); see var/logs", workload, failed[0]
                    )
                    continue
                for concurrency in concurrency_levels:
                    chats = [next(chat_ids) for _ in range(concurrency)]
                    for chat_id in chats:  # each chat's first turn creates its user row: not measured
                        await _learn_reply_sizes(api, messages[:1], chat_id)
                    per_chat = max(1, turns // concurrency)
                    started = time.monotonic()
                    results = await asyncio.gather(*(_run_chat(api, chat_id, messages, sizes, per_chat) for chat_id in chats))
                    elapsed = time.monotonic() - started
                    flat = [turn for chat in results for turn in chat]
                    row = {
                        "workload": workload,
                        "concurrent chats": concurrency,
                        "turns": len(flat),
                        "first median ms": round(statistics.median(t.first for t in flat) * 1000),
                        "first p95 ms": round(_percentile([t.first for t in flat], 0.95) * 1000),
                        "last median ms": round(statistics.median(t.last for t in flat) * 1000),
                        "last p95 ms": round(_percentile([t.last for t in flat], 0.95) * 1000),
                        "turns/s": round(len(flat) / elapsed, 1),
                    }
                    rows.append(row)
                    print(json.dumps(row, ensure_ascii=False), flush=True)
    return rows


def _markdown(rows: list[dict[str, object]]) -> str:
    headers = list(rows[0])
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(row[header]) for header in headers) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=30, help="Measured turns per concurrency level and workload.")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10], help="Numbers of chats talking at once.")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), nargs="+", default=list(WORKLOADS), help="Workloads to run.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    base = get_settings()
    database = Path(tempfile.mkdtemp(prefix="spin-bench-")) / "spin.db"
    if not base.database_url:
        base = base.model_copy(update={"database_url": f"sqlite:///{database}"})
    upgrade(create_db_engine(base.database_url))
    services = start_services(base, rasa_port=free_port(), action_port=free_port())
    try:
        rows = asyncio.run(_measure(services.settings(base), args.turns, args.concurrency, args.workload))
    finally:
        services.stop()
    if not rows:
        raise SystemExit("no workload completed: see the errors above")
    print()
    machine = platform.processor() or platform.machine()
    print(f"{dt.date.today().isoformat()}, {machine}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(_markdown(rows))


if __name__ == "__main__":
    main()
