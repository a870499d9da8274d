"""A knowledge-base turn writes nothing before retrieval, so SQLite turns do not wait on each other."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bot.storage.db import create_db_engine, session_scope
from bot.storage.migrate import upgrade
from bot.storage.models import User

SENDER = "console:lock-probe"


def question(text: str) -> dict[str, Any]:
    return {"text": text, "intent": {"name": "ask_question", "confidence": 0.97}, "entities": [], "metadata": {}}


def write_lock_is_free(database: Path) -> bool:
    """Return whether another connection could start writing to ``database`` right now."""
    probe = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        probe.close()


@pytest.fixture
def sqlite_turns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Engine, Path, list[bool]]]:
    """Run turns in this process on a new SQLite file, and record whether the write lock was free during retrieval."""
    import actions.spin_action
    from knowledge_base import answer as kb_answer

    database = tmp_path / "spin.db"
    engine = create_db_engine(f"sqlite:///{database}")
    upgrade(engine)

    def turn_session() -> AbstractContextManager[Session]:
        return session_scope(engine)

    lock_free: list[bool] = []
    real_answer = kb_answer.answer

    def probing_answer(*args: Any, **kwargs: Any) -> kb_answer.Answer:
        lock_free.append(write_lock_is_free(database))
        return real_answer(*args, **kwargs)

    monkeypatch.setattr(actions.spin_action, "session_scope", turn_session)
    monkeypatch.setattr(kb_answer, "answer", probing_answer)
    yield engine, database, lock_free
    engine.dispose()


def test_language_change_waits_until_after_retrieval(sqlite_turns: tuple[Engine, Path, list[bool]]) -> None:
    from actions.spin_action import run_turn

    engine, _database, lock_free = sqlite_turns
    run_turn(SENDER, question("How can a small dye house use less water?"))

    replies = run_turn(SENDER, question("Làm sao để giảm bao bì nhựa cho bánh kẹo?"))

    # The first turn creates the user row, so only the second can show the lock free.
    assert len(lock_free) == 2
    assert lock_free[1]
    assert replies[-1].language == "vi"
    with session_scope(engine) as session:
        user = session.scalars(select(User).where(User.external_id == "lock-probe")).one()
        assert user.language == "vi"
        assert not user.language_confirmed
