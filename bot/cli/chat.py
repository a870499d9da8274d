"""``spin chat``: talk to the full stack interactively or from a script file."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import uuid
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from bot.channels.base import IncomingMessage, OutgoingMessage
from bot.channels.console import START_MESSAGE, ButtonNotFoundError, print_replies, resolve_input, turn_buttons, turn_language
from bot.conversation import Conversation
from bot.i18n import gettext, normalize_language
from bot.rasa_client import RasaClient
from bot.services import running_services
from bot.settings import Settings, get_settings

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


@dataclasses.dataclass
class _ConsoleState:
    """Buttons, language and unsent line that an interactive chat keeps when the servers start again."""

    latest_buttons: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    latest_language: str | None = None
    #: A line whose turn failed because the servers had stopped, to send again first.
    pending: str | None = None


async def _interactive(
    conversation: Conversation, user: str, console: Console, state: _ConsoleState | None = None, client: RasaClient | None = None
) -> _ConsoleState | None:
    """Chat until end of input and return None, or return the state when the servers stopped.

    Other chats share the servers of the chat that started them, which stops them when
    it ends. A turn that fails while Rasa is down ends this loop, so the caller can start
    the servers again and send that line once more.
    """
    if state is None:
        state = _ConsoleState()
        console.print(START_MESSAGE, style="bold", markup=False, highlight=False)
    while True:
        if state.pending is not None:
            line, state.pending = state.pending, None
        else:
            try:
                line = await asyncio.to_thread(input, "you> ")
            except (EOFError, KeyboardInterrupt):
                console.print()
                return None
        if not line.strip():
            continue
        try:
            text, _shown = resolve_input(line, state.latest_buttons, state.latest_language)
        except ButtonNotFoundError as error:
            console.print(str(error), style="red", markup=False)
            continue
        replies = await conversation.handle(IncomingMessage(channel=CHANNEL, external_id=user, text=text))
        if client is not None and _is_try_again(replies) and not await client.is_ready():
            state.pending = line
            return state
        state.latest_buttons = turn_buttons(replies) or state.latest_buttons
        state.latest_language = turn_language(replies) or state.latest_language
        print_replies(console, replies)


def _is_try_again(replies: list[OutgoingMessage]) -> bool:
    """Return whether ``replies`` is the apology sent when Rasa could not be reached."""
    return len(replies) == 1 and replies[0].text == gettext("core.try_again", replies[0].language)


def _chat_interactively(settings: Settings, user: str, console: Console) -> None:
    """Run the interactive chat, starting the servers again whenever they stop under it."""
    state: _ConsoleState | None = None
    while True:
        with running_services(settings) as services:
            state = asyncio.run(_interactive_session(services.settings(settings), user, console, state))
        if state is None:
            return
        console.print(gettext("core.console.restarting", normalize_language(state.latest_language)), style="yellow", markup=False)


async def _interactive_session(
    service_settings: Settings, user: str, console: Console, state: _ConsoleState | None
) -> _ConsoleState | None:
    client = RasaClient(service_settings)
    try:
        return await _interactive(Conversation(client), user, console, state, client)
    finally:
        await client.aclose()


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

    if script is None:
        _chat_interactively(settings, user, console)
        return

    async def run_script(service_settings: Settings, lines: list[str]) -> int:
        client = RasaClient(service_settings)
        try:
            return await _run_script(Conversation(client), lines, user, as_json, console)
        finally:
            await client.aclose()

    lines = script.read_text(encoding="utf-8").splitlines()
    with running_services(settings) as services:
        failures = asyncio.run(run_script(services.settings(settings), lines))
    if failures:
        sys.exit(1)
