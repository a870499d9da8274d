"""The Alembic history creates exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from bot.storage.migrate import downgrade
from bot.storage.models import Base


def test_migrations_match_models(db_engine: Engine) -> None:
    with db_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)

    assert differences == [], f"models and migrations differ; add an Alembic revision: {differences}"


def test_downgrade_removes_tables(db_engine: Engine) -> None:
    downgrade(db_engine, "base")

    remaining = set(inspect(db_engine).get_table_names()) - {"alembic_version"}
    assert remaining == set()
