"""Fixtures for assessment tests: an owner talking to the real router against a database."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from actions.context import TurnContext
from actions.reply import Reply, button_payload
from actions.router import load_handlers, route
from actions.users import get_or_create_user, mark_seen
from bot.settings import get_settings
from bot.storage.db import session_scope
from bot.storage.models import Assessment, AssessmentAnswer, User
from bot.storage.types import utc_now

load_handlers()


@dataclasses.dataclass
class Owner:
    """One business owner: each call is one turn in its own transaction, as in the action server."""

    engine: Engine
    language: str = "en"
    channel: str = "test"
    external_id: str = dataclasses.field(default_factory=lambda: f"owner-{uuid.uuid4().hex[:10]}")
    replies: list[Reply] = dataclasses.field(default_factory=list)
    buttons: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def turn(
        self,
        text: str,
        *,
        intent: str | None,
        confidence: float = 0.95,
        command: str | None = None,
        entities: list[dict[str, Any]] | None = None,
    ) -> list[Reply]:
        with session_scope(self.engine) as session:
            user = get_or_create_user(session, self.channel, self.external_id)
            user.language = self.language
            # An owner who has written before: a first turn adds the privacy notice, which
            # the stack tests cover.
            user.last_seen_at = user.last_seen_at or utc_now()
            context = TurnContext(
                sender_id=f"{self.channel}:{self.external_id}",
                text=text,
                intent=intent,
                confidence=confidence,
                entities=entities or [],
                command=command,
                user=user,
                language=self.language,
                session=session,
            )
            replies = route(context)
            mark_seen(user)  # As the action server does after each turn.
        self.replies = replies
        for reply in reversed(replies):
            if reply.buttons:
                self.buttons = list(reply.buttons)
                break
        return replies

    def press(self, command: str) -> list[Reply]:
        """Press a button whose command is ``command``."""
        return self.turn(button_payload(command), intent="press", command=command)

    def press_number(self, number: int) -> list[Reply]:
        """Press button ``number`` (from 1) of the latest reply that had buttons, like ``#N`` in a script."""
        return self.press(self.buttons[number - 1][1])

    def say(self, text: str, intent: str = "nlu_fallback", confidence: float = 0.4, **kwargs: Any) -> list[Reply]:
        return self.turn(text, intent=intent, confidence=confidence, **kwargs)

    @property
    def text(self) -> str:
        return "\n---\n".join(reply.text for reply in self.replies)

    def assessment(self) -> Assessment:
        with session_scope(self.engine) as session:
            user = session.scalars(select(User).where(User.external_id == self.external_id)).one()
            row = session.scalars(select(Assessment).where(Assessment.user_id == user.id).order_by(Assessment.id.desc())).first()
            assert row is not None, "the owner has no assessment"
            session.expunge(row)
            return row

    def answers(self) -> dict[str, AssessmentAnswer]:
        assessment = self.assessment()
        with session_scope(self.engine) as session:
            rows = session.scalars(select(AssessmentAnswer).where(AssessmentAnswer.assessment_id == assessment.id)).all()
            for row in rows:
                session.expunge(row)
            return {row.question_id: row for row in rows}

    def answer_command(self, answer_id: str) -> str:
        """Return the command of the answer button ``answer_id`` in the latest question."""
        for _title, command in self.buttons:
            if command.startswith("assess:a:") and command.endswith(f":{answer_id}"):
                return command
        raise AssertionError(f"no answer button {answer_id!r} in {self.buttons}")

    def current_question(self) -> str:
        for _title, command in self.buttons:
            if command.startswith("assess:a:"):
                return command.split(":")[2]
        raise AssertionError(f"the latest buttons are not a question: {self.buttons}")


@pytest.fixture(autouse=True)
def var_dir(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point settings.var_dir at a temporary folder, so charts are written there.

    Stack tests keep the configured folder, because the servers load the Rasa model and
    the embedding model from it.
    """
    if request.node.get_closest_marker("stack"):
        yield get_settings().var_dir
        return
    folder = tmp_path / "var"
    monkeypatch.setenv("VAR_DIR", str(folder))
    get_settings.cache_clear()
    yield folder
    get_settings.cache_clear()


@pytest.fixture
def make_owner(db_engine: Engine) -> Callable[..., Owner]:
    """Return a factory of owners talking to the router on ``db_engine``."""

    def make(language: str = "en", **kwargs: Any) -> Owner:
        return Owner(engine=db_engine, language=language, **kwargs)

    return make
