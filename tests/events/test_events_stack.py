"""Events conversations through the real Rasa server and action server (needs the trained model)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.events.importer import import_events
from bot.i18n import gettext
from bot.scheduler.policy import ReminderPolicy
from bot.services import rasa_model_path
from bot.settings import PROJECT_ROOT, Settings, get_settings
from bot.storage.db import create_db_engine, session_scope
from bot.storage.models import Event, EventReminder, Subscription, User
from bot.storage.types import utc_now
from tests.actions.chat_helpers import after_notice
from tests.conftest import ChatDriver

pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(
        not rasa_model_path(get_settings()).exists(), reason="the Rasa model var/rasa-models/spin.tar.gz is not trained yet"
    ),
]

SAMPLES = PROJECT_ROOT / "knowledge_base" / "events"
SPIN = Path(sys.executable).with_name("spin")
#: Hang limit for one ``spin chat`` script; it normally takes a few seconds.
SCRIPT_TIMEOUT_SECONDS = 300


@pytest.fixture(scope="module")
def stack_events(stack_settings: Settings) -> dict[str, int]:
    """Import the sample events into the stack's database once; return event ids by uid."""
    engine = create_db_engine(stack_settings.database_url)
    with session_scope(engine) as session:
        for name in ("samples.csv", "samples.ics"):
            import_events(session, SAMPLES / name, utc_now(), ReminderPolicy())
    with session_scope(engine) as session:
        return {uid: event_id for uid, event_id in session.execute(select(Event.uid, Event.id))}


def press(chat: ChatDriver, command: str) -> list:
    return chat.say("/press" + json.dumps({"cmd": command}))


def user_row(settings: Settings, chat: ChatDriver) -> User:
    with session_scope(create_db_engine(settings.database_url)) as session:
        user = session.scalars(select(User).where(User.channel == "console", User.external_id == chat.user)).one()
        session.expunge(user)
        return user


def test_list_events_through_stack(chat: ChatDriver, stack_events: dict[str, int]) -> None:
    replies = after_notice(chat.say("what events are coming up?"))

    assert replies[0].text.startswith("Upcoming events"), [reply.text for reply in replies]
    assert any("Sample:" in reply.text for reply in replies[1:])
    assert any(button.payload.startswith('/press{"cmd":"events:remind:') for reply in replies for button in reply.buttons)


def test_remind_and_calendar_through_stack(chat: ChatDriver, stack_settings: Settings, stack_events: dict[str, int]) -> None:
    event_id = stack_events["sample-2027-green-packaging-fair@spin.example.org"]
    chat.say("hello")

    reminded = press(chat, f"events:remind:{event_id}")
    calendar = press(chat, f"events:ics:{event_id}")

    assert "Sample: Green packaging trade fair" in reminded[0].text
    assert calendar[0].document is not None
    assert Path(calendar[0].document).is_absolute()
    assert Path(calendar[0].document).read_bytes().startswith(b"BEGIN:VCALENDAR")
    with session_scope(create_db_engine(stack_settings.database_url)) as session:
        user = user_row(stack_settings, chat)
        assert session.scalars(select(EventReminder).where(EventReminder.user_id == user.id)).all() != []


def test_subscribe_unsubscribe_through_stack(chat: ChatDriver, stack_settings: Settings, stack_events: dict[str, int]) -> None:
    offer = chat.say("notify me about new events")
    done = press(chat, "events:sub:handicraft:la")
    listing = chat.say("unsubscribe")
    engine = create_db_engine(stack_settings.database_url)
    user = user_row(stack_settings, chat)
    with session_scope(engine) as session:
        subscription_id = session.scalars(select(Subscription.id).where(Subscription.user_id == user.id)).one()
    removed = press(chat, f"events:unsub:{subscription_id}")

    assert any(button.payload.startswith('/press{"cmd":"events:sub:') for reply in offer for button in reply.buttons)
    assert done[0].text == gettext("events.subscribe.done", "en", filter="Handicraft · Laos")
    assert any(f"events:unsub:{subscription_id}" in button.payload for reply in listing for button in reply.buttons)
    assert removed[0].text == gettext("events.unsubscribe.done", "en", filter="Handicraft · Laos")


def run_chat_script(settings: Settings, lines: list[str], folder: Path) -> list[dict[str, Any]]:
    """Run ``spin chat --script --json`` as a new console user against the running services."""
    script = folder / "script.txt"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    environment = {
        **os.environ,
        "RASA_PORT": str(settings.rasa_port),
        "ACTION_PORT": str(settings.action_port),
        "RASA_AUTH_TOKEN": settings.rasa_auth_token,
        "DATABASE_URL": settings.database_url,
        "VAR_DIR": str(settings.var_dir),
    }
    user = f"events-script-{uuid.uuid4().hex[:8]}"
    completed = subprocess.run(
        [str(SPIN), "chat", "--script", str(script), "--json", "--user", user],
        capture_output=True,
        text=True,
        env=environment,
        timeout=SCRIPT_TIMEOUT_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, f"spin chat failed ({completed.returncode}):\n{completed.stdout}\n{completed.stderr}"
    return [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]


def test_console_presses_event_card_buttons(stack_settings: Settings, stack_events: dict[str, int], tmp_path: Path) -> None:
    """Button 4 is the second card's Remind me and button 6 its Details, although the navigation message comes last."""
    # "hello" first, so that the listing is not the first turn, which adds the privacy notice.
    turns = run_chat_script(stack_settings, ["hello", "/events", "#6", "/events", "#4"], tmp_path)[1:]

    listing = turns[0]["replies"]
    numbered = [button["payload"] for reply in listing for button in reply["buttons"]]
    second_card = listing[2]
    second_title = second_card["text"].split("\n")[0].split(": ", 1)[1]
    assert [button["payload"] for button in second_card["buttons"]] == numbered[3:6]
    assert numbered[5].startswith('/press{"cmd":"events:details:')
    assert listing[-1]["buttons"], "the navigation message has no buttons"
    assert second_title in turns[1]["replies"][0]["text"]
    assert gettext("events.details.sample", "en") in turns[1]["replies"][0]["text"]
    assert f"“{second_title}”" in turns[3]["replies"][0]["text"]
    assert any('"cmd":"events:unremind:' in button["payload"] for button in turns[3]["replies"][0]["buttons"])
