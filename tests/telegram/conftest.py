"""Fixtures for Telegram tests: the fake Bot API server and settings that point the bot at it."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest

from bot.services import free_port
from bot.settings import Settings, get_settings
from bot.storage.db import session_scope
from bot.storage.models import User
from bot.storage.types import utc_now
from tests.fakes.bot_api import FakeBotApi

#: The staff group of the handoff tests (group ids are negative).
STAFF_CHAT_ID = -1001234567890

#: A Telegram user id allowed to use /stats.
ADMIN_ID = 900001

#: First message id of each fake, so fakes sharing the stack's database never reuse an id.
_FIRST_MESSAGE_IDS = itertools.count(1, 100_000)


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi(first_message_id=next(_FIRST_MESSAGE_IDS)) as api:
        api.add_group(STAFF_CHAT_ID, "SPIN staff")
        yield api


def telegram_settings(base: Settings, api: FakeBotApi, **overrides: object) -> Settings:
    """Return ``base`` pointing at the fake Bot API (and at nothing for Rasa unless ``base`` has it)."""
    update: dict[str, object] = {
        "telegram_bot_token": api.token,
        "telegram_base_url": api.base_url,
        "telegram_base_file_url": api.base_file_url,
        "telegram_staff_chat_id": STAFF_CHAT_ID,
        "telegram_admin_ids": [ADMIN_ID],
        "telegram_webhook_url": "",
    }
    update.update(overrides)
    return base.model_copy(update=update)


@pytest.fixture
def offline_settings(fake_api: FakeBotApi) -> Settings:
    """Settings with the fake Bot API and a Rasa port where nothing listens."""
    return telegram_settings(get_settings().model_copy(update={"rasa_port": free_port(), "rasa_timeout_seconds": 2.0}), fake_api)


def add_user(engine, external_id: str, language: str | None = "vi", **fields: object) -> int:  # type: ignore[no-untyped-def]
    """Insert a Telegram user row and return its id."""
    # A user who has written before, so no turn is their first (which adds the privacy notice).
    fields.setdefault("last_seen_at", utc_now())
    with session_scope(engine) as session:
        user = User(channel="telegram", external_id=external_id, language=language, **fields)
        session.add(user)
        session.flush()
        return user.id
