"""Building and running the Telegram bot, by long polling or by webhook."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable

from sqlalchemy import Engine
from telegram.error import TelegramError
from telegram.ext import Application

from bot.channels.telegram.channel import TelegramChannel, make_rate_limiter
from bot.channels.telegram.commands import register_commands
from bot.channels.telegram.handlers import ALLOWED_UPDATES, TelegramBot
from bot.channels.telegram.keyboard import purge_expired_tokens
from bot.channels.telegram.webhook import WebhookServer, webhook_path, webhook_secret
from bot.conversation import Conversation
from bot.rasa_client import RasaClient
from bot.settings import Settings
from bot.storage.db import create_db_engine

logger = logging.getLogger(__name__)

#: Updates handled at the same time (one at a time per chat, see ChatLocks).
CONCURRENT_UPDATES = 64

#: Long-polling timeout of getUpdates, in seconds.
POLL_TIMEOUT_SECONDS = 30

#: How often expired button tokens are deleted, in seconds.
TOKEN_PURGE_INTERVAL_SECONDS = 6 * 3600

#: httpx logs every request URL at INFO, and Bot API URLs contain the bot token.
HTTPX_LOG_LEVEL = logging.WARNING

#: Called with the channel once the bot runs, e.g. to start the reminder scheduler.
StartHook = Callable[[TelegramChannel], Awaitable[None]]


def build_application(
    settings: Settings, conversation: Conversation, *, engine: Engine | None = None, webhook: bool = False
) -> tuple[Application, TelegramBot]:  # type: ignore[type-arg]
    """Return the python-telegram-bot application and the handlers it calls.

    ``settings.telegram_base_url`` selects the Bot API server (a local fake in tests).
    With ``webhook`` the application has no updater; :class:`WebhookServer` feeds it.
    """
    if not settings.telegram_bot_token:
        raise ValueError("TELEGRAM_BOT_TOKEN is empty: create a bot with @BotFather and set the token it gives you")
    builder = (
        Application.builder()
        .token(settings.telegram_bot_token)
        .base_url(settings.telegram_base_url)
        .base_file_url(settings.telegram_base_file_url)
        .rate_limiter(make_rate_limiter())
        .concurrent_updates(CONCURRENT_UPDATES)
    )
    if webhook:
        builder = builder.updater(None)
    application = builder.build()
    engine = engine or create_db_engine(settings.resolved_database_url)
    channel = TelegramChannel(application.bot, engine)
    handlers = TelegramBot(settings, channel, conversation)
    handlers.register(application)
    return application, handlers


async def _purge_tokens_forever(engine: Engine) -> None:
    while True:
        try:
            await asyncio.to_thread(purge_expired_tokens, engine)
        except Exception:
            logger.exception("deleting expired button tokens failed; retrying in %d s", TOKEN_PURGE_INTERVAL_SECONDS)
        await asyncio.sleep(TOKEN_PURGE_INTERVAL_SECONDS)


@contextlib.asynccontextmanager
async def running_bot(
    settings: Settings,
    *,
    engine: Engine | None = None,
    conversation: Conversation | None = None,
    on_start: StartHook | None = None,
    webhook_port: int | None = None,
) -> AsyncIterator[TelegramBot]:
    """Run the bot while the block runs: long polling, or a webhook when ``telegram_webhook_url`` is set.

    ``webhook_port`` overrides ``telegram_webhook_port`` (0 picks a free port).
    """
    logging.getLogger("httpx").setLevel(max(HTTPX_LOG_LEVEL, logging.getLogger("httpx").getEffectiveLevel()))
    use_webhook = bool(settings.telegram_webhook_url)
    rasa_client = RasaClient(settings) if conversation is None else None
    if conversation is None:
        assert rasa_client is not None
        conversation = Conversation(rasa_client)
    application, handlers = build_application(settings, conversation, engine=engine, webhook=use_webhook)
    server: WebhookServer | None = None
    purge_task: asyncio.Task[None] | None = None
    await application.initialize()
    try:
        try:
            await register_commands(application.bot)
        except TelegramError as error:
            logger.error("registering the command menu failed: %s; the bot runs without it", error)
        purge_task = asyncio.create_task(_purge_tokens_forever(handlers.engine))

        if use_webhook:
            secret = webhook_secret(settings)
            server = WebhookServer(
                application,
                path=webhook_path(settings.telegram_webhook_url),
                secret=secret,
                listen=settings.telegram_webhook_listen,
                port=settings.telegram_webhook_port if webhook_port is None else webhook_port,
            )
            await server.start()
            if not settings.telegram_webhook_url.startswith("https://"):
                logger.warning("TELEGRAM_WEBHOOK_URL is not https; Telegram accepts only https webhooks")
            await application.bot.set_webhook(settings.telegram_webhook_url, secret_token=secret, allowed_updates=ALLOWED_UPDATES)
            logger.info("Telegram bot running with a webhook")
        else:
            assert application.updater is not None
            await application.updater.start_polling(allowed_updates=ALLOWED_UPDATES, timeout=POLL_TIMEOUT_SECONDS)
            logger.info("Telegram bot running with long polling")
        await application.start()
        handlers.webhook_server = server
        if on_start is not None:
            await on_start(handlers.channel)
        yield handlers
    finally:
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        if server is not None:
            await server.stop()
        if purge_task is not None:
            purge_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purge_task
        await application.shutdown()
        if rasa_client is not None:
            await rasa_client.aclose()
        logger.info("Telegram bot stopped")


def run_telegram(settings: Settings, on_start: StartHook | None = None) -> None:
    """Run the Telegram bot until SIGINT or SIGTERM (``spin run`` with a token set)."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with running_bot(settings, on_start=on_start):
            await stop.wait()
        logger.info("stop signal received")

    asyncio.run(main())
