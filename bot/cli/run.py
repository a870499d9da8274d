"""``spin run``: start everything and talk to users on Telegram or in this terminal."""

from __future__ import annotations

import logging

import typer

from bot.services import running_services
from bot.settings import get_settings

logger = logging.getLogger(__name__)


def run(
    user: str = typer.Option("local", "--user", help="Console user id when no Telegram token is set."),
) -> None:
    """Start Rasa and the action server, then Telegram (token set) or the console chat."""
    settings = get_settings()
    logging.getLogger().setLevel(logging.INFO)
    with running_services(settings) as services:
        service_settings = services.settings(settings)
        if settings.telegram_bot_token:
            from bot.channels.telegram import run_telegram

            run_telegram(service_settings)
            return

        import asyncio

        from rich.console import Console

        from bot.cli.chat import _interactive
        from bot.conversation import Conversation
        from bot.rasa_client import RasaClient

        async def console_chat() -> None:
            client = RasaClient(service_settings)
            try:
                await _interactive(Conversation(client), user, Console())
            finally:
                await client.aclose()

        logging.getLogger().setLevel(logging.WARNING)
        asyncio.run(console_chat())
