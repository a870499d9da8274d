"""Question-shaped messages and the confidence an action intent needs for them."""

from __future__ import annotations

from typing import cast

import pytest
from sqlalchemy.orm import Session

from actions.context import TurnContext
from actions.question_form import is_question_shaped
from actions.router import QUESTION_ACTION_MIN_CONFIDENCE, effective_intent
from bot.storage.models import User


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Are solvent-based shoe glues dangerous for my workers?", True),
        ("how do i recycle offcuts", True),
        ("lam sao giam bao bi nhua", True),
        ("giảm điện cho lò nung thế nào", True),
        ("តើធ្វើដូចម្តេច", True),
        ("ຫຼຸດການໃຊ້ນ້ຳແນວໃດ", True),
        ("start self assessment", False),
        ("island tour", False),
        ("ថយក្រោយ", False),
        ("subscribe me to fairs", False),
    ],
)
def test_question_shape(text: str, expected: bool) -> None:
    assert is_question_shaped(text) is expected


def turn(text: str, intent: str, confidence: float) -> TurnContext:
    return TurnContext(
        sender_id="test",
        text=text,
        intent=intent,
        confidence=confidence,
        entities=[],
        command=None,
        user=User(),
        language="en",
        session=cast(Session, None),
    )


def test_question_with_unsure_action_intent_is_question() -> None:
    context = turn("Are solvent-based shoe glues dangerous for my workers?", "subscribe_events", 0.56)

    assert effective_intent(context) == "ask_question"


def test_statement_with_same_confidence_keeps_intent() -> None:
    context = turn("subscribe me to shoe fairs", "subscribe_events", 0.56)

    assert effective_intent(context) == "subscribe_events"


def test_question_with_clear_action_intent_keeps_intent() -> None:
    context = turn("can an expert call me?", "human_handoff", QUESTION_ACTION_MIN_CONFIDENCE)

    assert effective_intent(context) == "human_handoff"
