"""``spin``: drive the assistant from a terminal (chat, questions, knowledge base, data)."""

from __future__ import annotations

import logging
import os

import typer

from bot.cli import chat, db, kb, run

app = typer.Typer(help="SPIN Assistant command line.", no_args_is_help=True, add_completion=False)
app.command("ask", help="Answer one question from the knowledge base (retrieval only).")(kb.ask)
app.command("chat", help="Chat through the full stack (Rasa + action server).")(chat.chat)
app.command("run", help="Start Rasa, the action server and Telegram or the console chat.")(run.run)
app.add_typer(kb.app, name="kb")
app.add_typer(db.app, name="db")


def _register_optional_groups() -> None:
    """Add command groups of capabilities that live in their own modules."""
    from bot.cli import assess, events, scheduler

    app.add_typer(assess.app, name="assess")
    app.add_typer(events.app, name="events")
    app.add_typer(scheduler.app, name="scheduler")


_register_optional_groups()


@app.callback()
def configure(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at INFO level to stderr.")) -> None:
    """Configure logging for every command."""
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request URL at INFO, and Rasa's API takes its auth token in the URL.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    """Entry point of the ``spin`` script."""
    app()
