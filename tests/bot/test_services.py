"""Finding and reusing running services (bot/services.py)."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest

from bot.services import AUTH_TOKEN_FILE, free_port, running_services, shared_auth_token, start_services
from bot.settings import Settings, get_settings
from bot.storage.db import create_db_engine
from bot.storage.migrate import upgrade


def test_shared_token_kept_in_var(tmp_path: Path) -> None:
    settings = get_settings().model_copy(update={"var_dir": tmp_path, "rasa_auth_token": ""})

    first = shared_auth_token(settings)
    second = shared_auth_token(settings)

    assert first
    assert first == second
    path = tmp_path / AUTH_TOKEN_FILE
    assert path.read_text(encoding="ascii") == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_configured_token_wins(tmp_path: Path) -> None:
    settings = get_settings().model_copy(update={"var_dir": tmp_path, "rasa_auth_token": "from-env"})

    assert shared_auth_token(settings) == "from-env"
    assert not (tmp_path / AUTH_TOKEN_FILE).exists()


def test_running_services_reused(stack_settings: Settings) -> None:
    with running_services(stack_settings) as services:
        assert services.processes == []
        assert services.rasa_port == stack_settings.rasa_port
        assert services.action_port == stack_settings.action_port


@pytest.mark.stack
def test_token_starting_with_dash_starts_rasa(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'spin.db'}"
    upgrade(create_db_engine(database_url))
    settings = get_settings().model_copy(update={"rasa_auth_token": "-Xy_leading-dash", "database_url": database_url})

    services = start_services(settings, rasa_port=free_port(), action_port=free_port())
    try:
        status = httpx.get(f"http://127.0.0.1:{services.rasa_port}/status", params={"token": "-Xy_leading-dash"}, timeout=10)
    finally:
        services.stop()

    assert status.status_code == 200
