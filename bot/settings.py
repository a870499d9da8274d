"""Settings read from the environment (and an optional ``.env`` file).

Every setting has a default that works on a laptop: SQLite under ``var/``, console
chat, services on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Repository root: the folder holding ``config.yml``.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

SUPPORTED_LANGUAGES = ("vi", "en", "km", "lo")
DEFAULT_LANGUAGE = "en"


class Settings(BaseSettings):
    """Process settings; environment variables use the field name in upper case."""

    model_config = SettingsConfigDict(env_file=PROJECT_ROOT / ".env", extra="ignore")

    var_dir: Path = Field(default=PROJECT_ROOT / "var", description="Runtime data folder.")
    database_url: str = Field(default="", description="SQLAlchemy URL; empty means SQLite in var_dir.")

    rasa_host: str = "127.0.0.1"
    rasa_port: int = 5005
    rasa_auth_token: str = Field(default="", description="Token for Rasa's HTTP API; generated when empty.")
    action_port: int = 5055
    rasa_timeout_seconds: float = 30.0

    embedding_model: str = Field(
        default="",
        description="sentence-transformers model name or folder; empty means the offline e5 build in var_dir.",
    )
    kb_content_dir: Path = PROJECT_ROOT / "knowledge_base" / "content"
    kb_index_dir: Path = Field(default=Path(), description="Index folder; empty means var_dir/index.")

    telegram_bot_token: str = ""
    telegram_base_url: str = Field(default="https://api.telegram.org/bot", description="Bot API base URL.")
    telegram_base_file_url: str = "https://api.telegram.org/file/bot"
    telegram_webhook_url: str = Field(default="", description="Public HTTPS URL; empty means long polling.")
    telegram_webhook_secret: str = ""
    telegram_webhook_listen: str = "127.0.0.1"
    telegram_webhook_port: int = 8443
    telegram_staff_chat_id: int | None = None
    telegram_staff_language: str = Field(
        default=DEFAULT_LANGUAGE, description="Language of the bot's messages in the staff group: vi, en, km or lo."
    )
    telegram_admin_ids: list[int] = Field(default_factory=list)

    default_timezone: str = "Asia/Ho_Chi_Minh"

    # Event reminders (bot/scheduler); see docs/events.md.
    reminder_offsets_seconds: list[int] = Field(
        default_factory=lambda: [7 * 86400, 86400, 2 * 3600],
        description="Seconds before an event's start at which owners are reminded, unless users.reminder_offsets is set.",
    )
    quiet_hours_start: dt.time = Field(default=dt.time(21, 0), description="Local time (owner's zone) when quiet hours begin.")
    quiet_hours_end: dt.time = Field(default=dt.time(7, 0), description="Local time (owner's zone) when quiet hours end.")
    reminder_grace_seconds: int = Field(default=12 * 3600, description="How late a due message may still be sent, in seconds.")
    scheduler_plan_interval_seconds: int = Field(default=60, description="Seconds between two planning passes.")
    scheduler_wake_interval_seconds: int = Field(default=30, description="Seconds between two forced delivery passes.")
    scheduler_standby_poll_seconds: float = Field(
        default=5.0, description="Seconds a standby scheduler waits between lock attempts."
    )
    delivery_rate_per_second: float = Field(
        default=28.0, description="Token-bucket rate of the delivery worker in messages/s; 0 leaves throttling to the channel."
    )
    delivery_concurrency: int = Field(default=8, description="Messages the delivery worker claims and sends at the same time.")
    delivery_max_attempts: int = Field(default=5, description="Send attempts before a delivery is marked failed.")

    @field_validator("telegram_staff_language")
    @classmethod
    def _check_staff_language(cls, value: str) -> str:
        code = value.strip().lower()
        if code not in SUPPORTED_LANGUAGES:
            supported = ", ".join(SUPPORTED_LANGUAGES)
            raise ValueError(f"TELEGRAM_STAFF_LANGUAGE={value!r} is not a supported language: set it to one of {supported}")
        return code

    @property
    def resolved_database_url(self) -> str:
        """Return ``database_url``, or the SQLite file in ``var_dir`` when it is empty."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.var_dir / 'spin.db'}"

    @property
    def resolved_index_dir(self) -> Path:
        """Return the index folder, ``var_dir/index`` unless set."""
        return self.kb_index_dir if str(self.kb_index_dir) not in ("", ".") else self.var_dir / "index"

    @property
    def resolved_embedding_model(self) -> str:
        """Return the embedding model name or folder, the offline e5 build unless set."""
        return self.embedding_model or str(self.var_dir / "models" / "multilingual-e5-small")

    @property
    def rasa_url(self) -> str:
        """Return the base URL of the Rasa server."""
        return f"http://{self.rasa_host}:{self.rasa_port}"


@functools.cache
def get_settings() -> Settings:
    """Return the process-wide settings, read once."""
    return Settings()
