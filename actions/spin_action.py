"""The single custom action that Rasa calls on every turn."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions.context import TurnContext
from actions.reply import PRESS_INTENT, Reply
from actions.router import load_handlers, route
from actions.users import get_or_create_user, mark_seen, pick_language, remember_language, split_sender_id
from bot.i18n import gettext, normalize_language
from bot.storage.db import session_scope
from bot.storage.models import User
from nlu.text import detect_language

logger = logging.getLogger(__name__)

load_handlers()


def warm_up() -> None:
    """Load the retrieval model and the segmenters now, so the first user turn is fast.

    The action server imports this module before it answers its health check, so the
    services count as ready only once the model is in memory.
    """
    from knowledge_base.retrieval import get_retriever
    from nlu.text import warm_up as warm_up_segmenters

    warm_up_segmenters()
    # The embedding model loads on first use: one search loads it and fills its caches.
    get_retriever().search("warm up", "en", k=1)


warm_up()


def run_turn(sender_id: str, latest_message: dict[str, Any]) -> list[Reply]:
    """Handle one turn in its own database transaction and return the replies.

    Any error rolls the transaction back and becomes a polite apology, so a failing
    turn leaves no half-written record and shows no stack trace to the user.
    """
    text = str(latest_message.get("text") or "")
    metadata = latest_message.get("metadata") or {}
    intent = (latest_message.get("intent") or {}).get("name")
    confidence = float((latest_message.get("intent") or {}).get("confidence") or 0.0)
    entities = list(latest_message.get("entities") or [])
    command = next((str(e["value"]) for e in entities if e.get("entity") == "cmd"), None) if intent == PRESS_INTENT else None

    channel, external_id = split_sender_id(sender_id)
    try:
        with session_scope() as session:
            user = get_or_create_user(session, channel, external_id)
            # A button or an "/intent" payload (a channel command such as /start) carries no language signal.
            language_text = "" if command or text.startswith("/") else text
            # The language is stored after the handlers: a changed user row would hold
            # SQLite's write lock from the first query of the turn through retrieval.
            choice = pick_language(language_text, user, metadata.get("ui_language"))
            language = choice.language
            context = TurnContext(
                sender_id=sender_id,
                text=text,
                intent=intent,
                confidence=confidence,
                entities=entities,
                command=command,
                user=user,
                language=language,
                session=session,
                ui_language=metadata.get("ui_language"),
                metadata=dict(metadata),
            )
            replies = route(context)
            remember_language(user, choice, chosen_in_turn=context.language_chosen)
            mark_seen(user)
            return replies
    except Exception:
        logger.exception("turn failed for %s (intent %s, command %s)", sender_id, intent, command)
        language = normalize_language(
            stored_language(channel, external_id) or detect_language(text) or metadata.get("ui_language")
        )
        return [Reply(text=gettext("core.error", language), language=language)]


def stored_language(channel: str, external_id: str) -> str | None:
    """Return the user's remembered language, or None when it cannot be read."""
    try:
        with session_scope() as session:
            user = session.scalars(select(User).where(User.channel == channel, User.external_id == external_id)).first()
            return user.language if user else None
    except Exception:
        logger.exception("could not read the language of %s:%s", channel, external_id)
        return None


class ActionSpin(Action):
    """Routes every turn to the handlers in :mod:`actions.handlers`."""

    def name(self) -> str:
        return "action_spin"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        replies = await asyncio.to_thread(run_turn, tracker.sender_id or "", tracker.latest_message or {})
        for reply in replies:
            dispatcher.utter_message(**reply.to_rasa())
        return []
