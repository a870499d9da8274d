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


def load_handlers() -> None:
    """Import every handler module so their decorators register them."""
    from actions.handlers import assessment, events, general, kb  # noqa: F401


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

    if context.intent not in INTERRUPTING_INTENTS:
        for _priority, intercept in registry.INTERCEPTORS:
            replies = intercept(context)
            if replies is not None:
                return replies

    handler = registry.INTENTS.get(context.intent or "") or registry.INTENTS[FALLBACK_INTENT]
    return handler(context)
