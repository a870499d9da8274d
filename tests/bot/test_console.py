"""Console chat: ``#N`` presses button N of the whole latest turn, numbered as printed."""

from __future__ import annotations

import builtins
import io
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from bot.channels.base import Button, OutgoingMessage, SourceRef
from bot.channels.console import ButtonNotFoundError, print_replies, resolve_input, turn_buttons, turn_language
from bot.cli import chat as chat_cli
from bot.cli.main import app
from bot.i18n import gettext
from bot.services import free_port, rasa_is_running, start_services
from bot.settings import SUPPORTED_LANGUAGES, get_settings
from bot.storage.db import create_db_engine
from bot.storage.migrate import upgrade


def _event_list_turn() -> list[OutgoingMessage]:
    """A turn shaped like an event list: header, two cards with three buttons each, navigation."""
    cards = [
        OutgoingMessage(
            text=f"Workshop {name}",
            buttons=[
                Button("Remind me", f"/remind-{name}"),
                Button("Add to calendar", f"/ics-{name}"),
                Button("Details", f"/details-{name}"),
            ],
        )
        for name in ("a", "b")
    ]
    navigation = OutgoingMessage(text="More options:", buttons=[Button("More events", "/next"), Button("Sector", "/sector")])
    return [OutgoingMessage(text="Upcoming events (1-2 of 4)"), *cards, navigation]


def test_turn_buttons_cover_every_reply() -> None:
    buttons = turn_buttons(_event_list_turn())

    assert len(buttons) == 8
    assert resolve_input("#1", buttons) == ("/remind-a", "Remind me")
    assert resolve_input("#6", buttons) == ("/details-b", "Details")
    assert resolve_input("#8", buttons) == ("/sector", "Sector")
    with pytest.raises(ButtonNotFoundError, match="has 8 button"):
        resolve_input("#9", buttons)


def test_printed_numbers_press_same_buttons() -> None:
    replies = _event_list_turn()
    output = io.StringIO()

    print_replies(Console(file=output, width=200, color_system=None), replies)

    printed = [line.strip() for line in output.getvalue().splitlines() if line.strip().startswith("[#")]
    buttons = turn_buttons(replies)
    assert len(printed) == len(buttons)
    for line in printed:
        number, title = line.removeprefix("[#").split("] ", 1)
        assert resolve_input(f"#{number}", buttons)[1] == title, line


def test_turn_without_buttons_has_none() -> None:
    assert turn_buttons([OutgoingMessage(text="Here is your calendar file.")]) == []


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_wrong_number_error_in_reply_language(language: str) -> None:
    replies = [
        OutgoingMessage(text="…", language=language),
        OutgoingMessage(text="…", buttons=[Button("A", "/a"), Button("B", "/b")], language=language),
    ]

    with pytest.raises(ButtonNotFoundError) as raised:
        resolve_input("#7", turn_buttons(replies), turn_language(replies))

    assert str(raised.value) == gettext("core.console.no_such_button", language, typed="#7", count=2)
    assert "#7" in str(raised.value)
    assert "2" in str(raised.value)


@pytest.mark.parametrize("language", ["vi", "km", "lo"])
def test_wrong_number_error_not_english(language: str) -> None:
    with pytest.raises(ButtonNotFoundError) as raised:
        resolve_input("#3", [("A", "/a")], language)

    assert "no such button" not in str(raised.value)
    assert str(raised.value) != gettext("core.console.no_such_button", "en", typed="#3", count=1)


def test_english_error_counts_buttons() -> None:
    with pytest.raises(ButtonNotFoundError) as one:
        resolve_input("#2", [("A", "/a")])
    with pytest.raises(ButtonNotFoundError) as five:
        resolve_input("#9", [("A", "/a")] * 5, "en")

    assert "has 1 button." in str(one.value)
    assert "has 5 buttons." in str(five.value)


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_number_before_any_buttons(language: str) -> None:
    with pytest.raises(ButtonNotFoundError) as raised:
        resolve_input("#1", [], language)

    assert str(raised.value) == gettext("core.console.no_buttons", language, typed="#1")


def test_turn_language_from_metadata() -> None:
    assert turn_language([OutgoingMessage(text="a", language="km"), OutgoingMessage(text="b")]) == "km"
    assert turn_language([OutgoingMessage(text="a")]) is None


def _printed(replies: list[OutgoingMessage]) -> str:
    output = io.StringIO()
    print_replies(Console(file=output, width=200, color_system=None), replies)
    return output.getvalue()


def test_source_named_in_text_printed_once() -> None:
    title = "Export documents for rice"
    reply = OutgoingMessage(
        text=f"{title}\nYou need a phytosanitary certificate.\n\nSource: {title}", sources=[SourceRef("rice", title)]
    )

    printed = _printed([reply])

    assert printed.count(f"Source: {title}") == 1
    assert printed.count(title) == 2  # the passage heading and the "Source:" line


def test_source_missing_from_text_still_printed() -> None:
    reply = OutgoingMessage(text="Short answer.", sources=[SourceRef("a", "Article A"), SourceRef("b", "Article B")])

    assert "Article A · Article B" in _printed([reply])


async def test_start_message_shows_button_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    def end_of_input(_prompt: str) -> str:
        raise EOFError

    monkeypatch.setattr(builtins, "input", end_of_input)
    output = io.StringIO()

    await chat_cli._interactive(object(), "local", Console(file=output, width=200, color_system=None))  # type: ignore[arg-type]

    assert "press the button shown as [#N]," in output.getvalue()
    assert "Ctrl-D" in output.getvalue()


def test_chat_help_shows_button_hint() -> None:
    result = CliRunner().invoke(app, ["chat", "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})

    assert result.exit_code == 0, result.output
    assert "presses the button shown as [#N]." in result.output
    assert "\\[" not in result.output


class _SilentConversation:
    """Stands in for the Rasa conversation: every message gets no reply."""

    async def handle(self, message: object) -> list[object]:
        return []


async def test_script_echo_keeps_brackets() -> None:
    output = io.StringIO()
    console = Console(file=output, width=200, color_system=None)

    failures = await chat_cli._run_script(
        _SilentConversation(),  # type: ignore[arg-type]
        ["hello [/b] and [bold]x[/bold]\n"],
        "script-user",
        False,
        console,
    )

    assert failures == 0
    assert "> hello [/b] and [bold]x[/bold]" in output.getvalue()


@pytest.mark.stack
def test_chat_restarts_servers_stopped_under_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A chat sharing the servers of another chat starts them again when that chat ends."""
    database_url = f"sqlite:///{tmp_path / 'spin.db'}"
    upgrade(create_db_engine(database_url))
    settings = get_settings().model_copy(
        update={
            "database_url": database_url,
            "rasa_auth_token": "console-restart",
            "rasa_port": free_port(),
            "action_port": free_port(),
        }
    )
    first_chat_servers = start_services(settings, rasa_port=settings.rasa_port, action_port=settings.action_port)
    lines = iter(["/help", "STOP", "/help"])

    def typed(_prompt: str) -> str:
        line = next(lines, None)
        if line is None:
            raise EOFError
        if line == "STOP":
            # The chat that started the servers ends.
            first_chat_servers.stop()
            return "/start"
        return line

    monkeypatch.setattr(builtins, "input", typed)
    output = io.StringIO()

    chat_cli._chat_interactively(settings, "restart-user", Console(file=output, width=200, color_system=None))

    printed = output.getvalue()
    assert printed.count(gettext("core.help", "en").splitlines()[0]) == 2
    assert gettext("core.console.restarting", "en") in printed
    assert gettext("core.try_again", "en") not in printed
    assert not rasa_is_running(settings)
