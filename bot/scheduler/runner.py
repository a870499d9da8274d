"""Running the scheduler: on its own (``spin scheduler run``) or beside the Telegram bot (``spin run``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from bot.channels.base import Channel
from bot.scheduler.console import CONSOLE_CHANNEL, ConsoleChannel
from bot.scheduler.service import SchedulerService
from bot.settings import Settings
from bot.storage.db import create_db_engine

if TYPE_CHECKING:
    from bot.channels.telegram import TelegramChannel

logger = logging.getLogger(__name__)

TELEGRAM_CHANNEL = "telegram"
#: HTTP connections kept beyond the worker's concurrency (getMe, a retry in flight).
HTTP_POOL_SPARE = 2


def standalone_telegram_channel(settings: Settings, engine: Engine) -> TelegramChannel:
    """Return a Telegram channel whose bot has no rate limiter of its own.

    The standalone scheduler throttles in its delivery worker: a token bucket of
    ``delivery_rate_per_second`` with bursts of one message, per-chat spacing, and a
    global pause on 429. python-telegram-bot's AIORateLimiter allows bursts of 30
    (aiolimiter's leaky bucket), and a server that counts a sliding second rejects such
    a burst with 429 and a one-second ``retry_after``. One throttle, not two, keeps the
    pace even.
    """
    from telegram.ext import ExtBot
    from telegram.request import HTTPXRequest

    from bot.channels.telegram import TelegramChannel

    if not settings.telegram_bot_token:
        raise ValueError("TELEGRAM_BOT_TOKEN is empty: set it, or run the scheduler with --channel console")
    request = HTTPXRequest(connection_pool_size=settings.delivery_concurrency + HTTP_POOL_SPARE)
    bot: ExtBot[None] = ExtBot(
        settings.telegram_bot_token,
        base_url=settings.telegram_base_url,
        base_file_url=settings.telegram_base_file_url,
        request=request,
    )
    return TelegramChannel(bot, engine, owns_bot=True)


@contextlib.asynccontextmanager
async def scheduler_running(
    settings: Settings,
    channels: Mapping[str, Channel],
    *,
    engine: Engine | None = None,
    rate_per_second: float | None = None,
) -> AsyncIterator[SchedulerService]:
    """Run a scheduler for ``channels`` while the block runs; on exit, drain and release the lock.

    ``rate_per_second`` None leaves throttling to the channels (see :class:`DeliveryWorker`).
    """
    engine = engine or create_db_engine(settings.resolved_database_url)
    service = SchedulerService(engine, channels, settings, rate_per_second=rate_per_second)
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
                channels[name] = await stack.enter_async_context(standalone_telegram_channel(settings, engine))
            elif name == CONSOLE_CHANNEL:
                channels[name] = ConsoleChannel(as_json=console_json)
            else:
                raise ValueError(f"channel {name!r} is unknown: use {TELEGRAM_CHANNEL} or {CONSOLE_CHANNEL}")
        rate = settings.delivery_rate_per_second or None
        async with scheduler_running(settings, channels, engine=engine, rate_per_second=rate) as service:
            stopped = asyncio.create_task(stop.wait())
            finished = asyncio.create_task(service.finished.wait())
            await asyncio.wait({stopped, finished}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            finished.cancel()
        logger.info("scheduler process exiting")


@contextlib.asynccontextmanager
async def telegram_bot_with_scheduler(settings: Settings, *, engine: Engine | None = None) -> AsyncIterator[SchedulerService]:
    """Run the Telegram bot and a scheduler that sends through the bot's own channel.

    Chat replies and reminders then share one rate limiter (the bot's AIORateLimiter),
    and the worker adds none. On exit the scheduler drains before the bot stops.
    """
    from bot.channels.telegram import running_bot

    started: list[SchedulerService] = []
    async with contextlib.AsyncExitStack() as stack:

        async def start_scheduler(channel: TelegramChannel) -> None:
            service = await stack.enter_async_context(
                scheduler_running(settings, {TELEGRAM_CHANNEL: channel}, engine=channel.engine)
            )
            started.append(service)

        async with running_bot(settings, engine=engine, on_start=start_scheduler):
            try:
                yield started[0]
            finally:
                await stack.aclose()


def run_telegram_with_scheduler(settings: Settings) -> None:
    """Run the Telegram bot and the scheduler in one event loop until SIGINT or SIGTERM (``spin run``)."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with telegram_bot_with_scheduler(settings):
            await stop.wait()
            logger.info("stop signal received")

    asyncio.run(main())
