"""create all tables

Revision ID: 0001
Revises:
Create Date: 2026-12-04

TODO: replace with explicit operations generated from the models once the first
release's schema settles; until then this creates whatever ``bot.storage.models`` holds.
"""

from collections.abc import Sequence

from alembic import op

from bot.storage.models import Base

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    Base.metadata.create_all(op.get_bind())


def downgrade() -> None:
    Base.metadata.drop_all(op.get_bind())
