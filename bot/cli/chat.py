"""``spin chat``: talk to the full stack interactively or from a script file."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from bot.channels.base import IncomingMessage
from bot.channels.console import START_MESSAGE, ButtonNotFoundError, print_replies, resolve_input, turn_buttons, turn_language
from bot.conversation import Conversation
from bot.rasa_client import RasaClient
from bot.services import running_services
from bot.settings import get_settings

__all__ = ["ButtonNotFoundError", "chat", "resolve_input"]

CHANNEL = "console"


async def _run_script(conversation: Conversation, lines: list[str], user: str, as_json: bool, console: Console) -> int:
    latest_buttons: list[tuple[str, str]] = []
    latest_language: str | None = None
    failures = 0
    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        try:
            text, _shown = resolve_input(line, latest_buttons, latest_language)
        except ButtonNotFoundError as error:
            failures += 1
            print(json.dumps({"input": line, "error": str(error), "replies": []}, ensure_ascii=False), flush=True)
            continue
        replies = await conversation.handle(IncomingMessage(channel=CHANNEL, external_id=user, text=text))
        latest_buttons = turn_buttons(replies) or latest_buttons
        latest_language = turn_language(replies) or latest_language
        if as_json:
            print(json.dumps({"input": line, "replies": [reply.to_json() for reply in replies]}, ensure_ascii=False), flush=True)
        else:
            console.print(f"> {line}", style="bold", markup=False, highlight=False)
            print_replies(console, replies)
    return failures


async def _interactive(conversation: Conversation, user: str, console: Console) -> None:
    console.print(START_MESSAGE, style="bold", markup=False, highlight=False)
    latest_buttons: list[tuple[str, str]] = []
    latest_language: str | None = None
    while True:
        try:
            line = await asyncio.to_thread(input, "you> ")
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        if not line.strip():
            continue
        try:
            text, _shown = resolve_input(line, latest_buttons, latest_language)
        except ButtonNotFoundError as error:
            console.print(str(error), style="red", markup=False)
            continue
        replies = await conversation.handle(IncomingMessage(channel=CHANNEL, external_id=user, text=text))
        latest_buttons = turn_buttons(replies) or latest_buttons
        latest_language = turn_language(replies) or latest_language
        print_replies(console, replies)


def chat(
    script: Path | None = typer.Option(
        None,
        "--script",
        exists=True,
        dir_okay=False,
        # Typer renders help as Rich markup, where "[#N]" would be read as a style tag.
        help=escape("File with one input per line (blank lines are skipped); '#N' presses the button shown as [#N]."),
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per input."),
    user: str = typer.Option(
        "",
        "--user",
        help=(
            "Console user id; keep it to resume a conversation (#N works again only after new buttons are shown)."
            " Default: new id for scripts, 'local' otherwise."
        ),
    ),
) -> None:
    """Chat through Rasa and the action server, starting them when they are not running."""
    settings = get_settings()
    console = Console(stderr=as_json)
    user = user or (f"script-{uuid.uuid4().hex[:12]}" if script else "local")

    async def main(service_settings: object) -> int:
        client = RasaClient(service_settings)  # type: ignore[arg-type]
        conversation = Conversation(client)
        try:
            if script is not None:
                lines = script.read_text(encoding="utf-8").splitlines()
                return await _run_script(conversation, lines, user, as_json, console)
            await _interactive(conversation, user, console)
            return 0
        finally:
            await client.aclose()

    with running_services(settings) as services:
        failures = asyncio.run(main(services.settings(settings)))
    if failures:
        sys.exit(1)
