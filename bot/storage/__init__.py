"""Database access: models, engine and migrations."""

from bot.storage.db import create_db_engine, init_database, session_scope

__all__ = ["create_db_engine", "init_database", "session_scope"]
