"""Shared fixtures: databases (SQLite and PostgreSQL) and the running Rasa stack.

The stack (Rasa server + action server) starts once per test run on free ports of
127.0.0.1, with its own SQLite database, and stops at the end.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine

from bot.settings import Settings, get_settings

#: The PostgreSQL server this machine starts before each session (trust auth).
POSTGRES_ADMIN_URL = os.environ.get("SPIN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """Create an empty PostgreSQL database for this run and drop it afterwards."""
    name = f"spin_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True)
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL at {POSTGRES_ADMIN_URL} is not reachable ({error}); start it or set SPIN_TEST_POSTGRES_URL")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a freshly migrated database, once per backend."""
    from sqlalchemy import text

    from bot.storage.db import create_db_engine
    from bot.storage.migrate import downgrade, upgrade

    if request.param == "sqlite":
        engine = create_db_engine(f"sqlite:///{tmp_path / 'spin.db'}")
        upgrade(engine)
        yield engine
        engine.dispose()
        return

    url = request.getfixturevalue("postgres_database")
    engine = create_db_engine(url)
    upgrade(engine)
    try:
        yield engine
    finally:
        downgrade(engine, "base")
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        engine.dispose()


@pytest.fixture(scope="session")
def stack_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Start the Rasa server and the action server once, with a fresh SQLite database."""
    from bot.services import free_port, start_services
    from bot.storage.db import create_db_engine
    from bot.storage.migrate import upgrade

    database = tmp_path_factory.mktemp("stack") / "spin.db"
    database_url = f"sqlite:///{database}"
    upgrade(create_db_engine(database_url))
    base = get_settings().model_copy(update={"database_url": database_url})
    # Free ports, not the configured ones: a developer's `make run` may hold those.
    services = start_services(base, rasa_port=free_port(), action_port=free_port())
    try:
        yield services.settings(base)
    finally:
        services.stop()


class ChatDriver:
    """Sends messages as one console user through the real stack, like ``spin chat``."""

    def __init__(self, settings: Settings, user: str | None = None) -> None:
        self.settings = settings
        self.user = user or f"test-{uuid.uuid4().hex[:10]}"
        self.latest_buttons: list[tuple[str, str]] = []

    def say(self, text: str, channel: str = "console") -> list:
        """Send ``text`` (or ``#N`` to press a button) and return the replies."""
        from bot.channels.base import IncomingMessage
        from bot.cli.chat import resolve_input
        from bot.rasa_client import RasaClient

        payload, _shown = resolve_input(text, self.latest_buttons)

        async def send() -> list:
            client = RasaClient(self.settings)
            try:
                return await client.send(IncomingMessage(channel=channel, external_id=self.user, text=payload))
            finally:
                await client.aclose()

        replies = asyncio.run(send())
        for reply in reversed(replies):
            if reply.buttons:
                self.latest_buttons = [(button.title, button.payload) for button in reply.buttons]
                break
        return replies


@pytest.fixture
def chat(stack_settings: Settings) -> ChatDriver:
    """A new console user talking to the running stack."""
    return ChatDriver(stack_settings)
