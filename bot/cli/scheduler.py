"""``spin scheduler``: run the reminder scheduler on its own and inspect the delivery ledger."""

from __future__ import annotations

import asyncio
import json
import logging

import typer

from bot.settings import get_settings

app = typer.Typer(help="Reminder scheduler: run it, or show the delivery ledger.", no_args_is_help=True)

logger = logging.getLogger(__name__)


@app.command("run")
def run(
    channel: list[str] = typer.Option(
        [],
        "--channel",
        help="Channel to deliver to: telegram or console; repeat for both. Default: telegram when a token is set, else console.",
    ),
    console_json: bool = typer.Option(False, "--console-json", help="Print console messages as one JSON object per line."),
) -> None:
    """Run the scheduler until SIGINT or SIGTERM; a second one waits as a standby."""
    from bot.scheduler.console import CONSOLE_CHANNEL
    from bot.scheduler.runner import TELEGRAM_CHANNEL, run_standalone
    from bot.storage.db import create_db_engine, init_database

    settings = get_settings()
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    channels = channel or [TELEGRAM_CHANNEL if settings.telegram_bot_token else CONSOLE_CHANNEL]
    init_database(create_db_engine(settings.resolved_database_url))
    try:
        asyncio.run(run_standalone(settings, channels, console_json=console_json))
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None


@app.command("status")
def status(
    event_id: int = typer.Option(0, "--event", help="Only the deliveries of this event id."),
    url: str = typer.Option("", "--db", help="SQLAlchemy URL; default: DATABASE_URL or SQLite in var/."),
) -> None:
    """Print the number of ledger rows per status as JSON (sent, pending, sending, failed, ...)."""
    from bot.scheduler.ledger import status_counts
    from bot.storage.db import create_db_engine, session_scope

    with session_scope(create_db_engine(url or None)) as session:
        counts = status_counts(session, event_id or None)
    typer.echo(json.dumps(counts, sort_keys=True))
