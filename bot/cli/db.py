"""``spin db``: database schema commands."""

from __future__ import annotations

import typer

from bot.storage.db import create_db_engine
from bot.storage.migrate import upgrade as upgrade_schema

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(url: str = typer.Option("", help="SQLAlchemy URL; default: DATABASE_URL or SQLite in var/.")) -> None:
    """Apply all Alembic migrations."""
    upgrade_schema(create_db_engine(url or None))
    typer.echo("database schema is up to date")
