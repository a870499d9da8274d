"""Running the scheduler: on its own (``spin scheduler run``) or beside the Telegram bot (``spin run``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Mapping

from sqlalchemy import Engine

from bot.channels.base import Channel
from bot.scheduler.console import CONSOLE_CHANNEL, ConsoleChannel
from bot.scheduler.service import SchedulerService
from bot.settings import Settings
from bot.storage.db import create_db_engine

logger = logging.getLogger(__name__)

TELEGRAM_CHANNEL = "telegram"


def worker_rate(settings: Settings, channels: Mapping[str, Channel]) -> float | None:
    """Return the worker's own rate limit, or None when the channel throttles itself.

    The Telegram channel's bot carries python-telegram-bot's AIORateLimiter (30/s and
    429 retries), so a second bucket in the worker would only slow it down.
    """
    if TELEGRAM_CHANNEL in channels:
        return None
    return settings.delivery_rate_per_second or None


@contextlib.asynccontextmanager
async def scheduler_running(
    settings: Settings, channels: Mapping[str, Channel], *, engine: Engine | None = None
) -> AsyncIterator[SchedulerService]:
    """Run a scheduler for ``channels`` while the block runs; on exit, drain and release the lock."""
    engine = engine or create_db_engine(settings.resolved_database_url)
    service = SchedulerService(engine, channels, settings, rate_per_second=worker_rate(settings, channels))
    task = asyncio.create_task(service.run(), name="spin-scheduler")
    try:
        yield service
    finally:
        service.stop()
        await task


async def run_standalone(settings: Settings, channel_names: list[str], *, console_json: bool = False) -> None:
    """Run the scheduler until SIGINT or SIGTERM, delivering through ``channel_names``."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    engine = create_db_engine(settings.resolved_database_url)
    async with contextlib.AsyncExitStack() as stack:
        channels: dict[str, Channel] = {}
        for name in channel_names:
            if name == TELEGRAM_CHANNEL:
                from bot.channels.telegram import TelegramChannel

                channels[name] = await stack.enter_async_context(TelegramChannel.from_settings(settings, engine))
            elif name == CONSOLE_CHANNEL:
                channels[name] = ConsoleChannel(as_json=console_json)
            else:
                raise ValueError(f"channel {name!r} is unknown: use {TELEGRAM_CHANNEL} or {CONSOLE_CHANNEL}")
        async with scheduler_running(settings, channels, engine=engine) as service:
            stopped = asyncio.create_task(stop.wait())
            finished = asyncio.create_task(service.finished.wait())
            await asyncio.wait({stopped, finished}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            finished.cancel()
        logger.info("scheduler process exiting")


def run_telegram_with_scheduler(settings: Settings) -> None:
    """Run the Telegram bot and the scheduler in one event loop until SIGINT or SIGTERM.

    The scheduler sends through the bot's own channel, so chat replies and reminders
    share one rate limiter.
    """
    from bot.channels.telegram import TelegramChannel, running_bot

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with contextlib.AsyncExitStack() as stack:

            async def start_scheduler(channel: TelegramChannel) -> None:
                await stack.enter_async_context(scheduler_running(settings, {TELEGRAM_CHANNEL: channel}, engine=channel.engine))

            async with running_bot(settings, on_start=start_scheduler):
                await stop.wait()
                logger.info("stop signal received")
                await stack.aclose()

    asyncio.run(main())
