"""Routing one turn: button command, open flow, then intent."""

from __future__ import annotations

import logging

from actions import registry
from actions.context import TurnContext
from actions.reply import Reply

logger = logging.getLogger(__name__)

#: Intents that always go to their own handler, even during an open flow, because the
#: user is asking for something else (a question, help, a change of language).
INTERRUPTING_INTENTS = frozenset({"help", "set_language", "delete_my_data", "human_handoff", "cancel", "goodbye"})

#: Handler used when an intent has none of its own.
FALLBACK_INTENT = "ask_question"

#: Intents that change something or start a flow. Below this NLU confidence the turn is
#: treated as a question instead, because acting on a wrong guess ("switch to Lao"
#: read as a handoff request) is worse than an honest "I am not sure" from retrieval.
ACTION_INTENTS = frozenset(
    {
        "delete_my_data",
        "human_handoff",
        "subscribe_events",
        "unsubscribe_events",
        "set_language",
        "help",
        "start_assessment",
        "list_events",
    }
)
MIN_ACTION_CONFIDENCE = 0.5


def load_handlers() -> None:
    """Import every handler module so their decorators register them."""
    from actions.handlers import assessment, events, general, kb  # noqa: F401


def effective_intent(context: TurnContext) -> str:
    """Return the intent to act on: a low-confidence action intent becomes a question."""
    intent = context.intent or FALLBACK_INTENT
    typed_payload = context.text.lstrip().startswith("/")
    if intent in ACTION_INTENTS and context.confidence < MIN_ACTION_CONFIDENCE and not typed_payload:
        logger.info("intent %s at confidence %.2f from %s handled as a question", intent, context.confidence, context.sender_id)
        return FALLBACK_INTENT
    return intent


def route(context: TurnContext) -> list[Reply]:
    """Return the replies for one turn."""
    if context.command is not None:
        prefix = context.command.split(":", 1)[0]
        handler = registry.COMMANDS.get(prefix)
        if handler is None:
            logger.info("unknown button command prefix %r from %s", prefix, context.sender_id)
            handler = registry.COMMANDS["core"]
            context.command = "core:unknown"
        return handler(context)

    intent = effective_intent(context)
    if intent not in INTERRUPTING_INTENTS:
        for _priority, intercept in registry.INTERCEPTORS:
            replies = intercept(context)
            if replies is not None:
                return replies

    handler = registry.INTENTS.get(intent) or registry.INTENTS[FALLBACK_INTENT]
    return handler(context)
