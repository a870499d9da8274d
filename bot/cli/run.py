"""``spin run``: start everything and talk to users on Telegram or in this terminal."""

from __future__ import annotations

import logging

import typer

from bot.services import running_services
from bot.settings import get_settings

logger = logging.getLogger(__name__)


def run(
    user: str = typer.Option("local", "--user", help="Console user id when no Telegram token is set."),
    scheduler: bool = typer.Option(True, "--scheduler/--no-scheduler", help="Also run the event reminder scheduler."),
) -> None:
    """Start Rasa and the action server, then Telegram (token set) or the console chat, with the reminder scheduler."""
    settings = get_settings()
    logging.getLogger().setLevel(logging.INFO)
    with running_services(settings) as services:
        service_settings = services.settings(settings)
        if settings.telegram_bot_token:
            if scheduler:
                from bot.scheduler.runner import run_telegram_with_scheduler

                run_telegram_with_scheduler(service_settings)
                return
            from bot.channels.telegram import run_telegram

            run_telegram(service_settings)
            return

        import asyncio

        from rich.console import Console

        from bot.cli.chat import _interactive
        from bot.conversation import Conversation
        from bot.rasa_client import RasaClient

        async def console_chat() -> None:
            import contextlib

            from bot.scheduler.console import CONSOLE_CHANNEL, ConsoleChannel
            from bot.scheduler.runner import scheduler_running

            client = RasaClient(service_settings)
            try:
                async with contextlib.AsyncExitStack() as stack:
                    if scheduler:
                        # Reminders for console users are printed between the chat lines.
                        await stack.enter_async_context(scheduler_running(service_settings, {CONSOLE_CHANNEL: ConsoleChannel()}))
                    await _interactive(Conversation(client), user, Console())
            finally:
                await client.aclose()

        logging.getLogger().setLevel(logging.WARNING)
        asyncio.run(console_chat())
