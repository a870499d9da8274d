"""Knowledge-base questions: answer, "more", related topics, and the question log."""

from __future__ import annotations

import logging

from actions.context import TurnContext
from actions.handlers.general import menu_buttons
from actions.registry import on_command, on_intent
from actions.reply import Reply
from bot.i18n import gettext
from bot.storage.models import QuestionLog
from knowledge_base import answer as kb_answer
from nlu.text import normalize

logger = logging.getLogger(__name__)

#: Maximum characters of a question kept in the question log.
QUESTION_LOG_MAX_CHARS = 2000


def _reply_from_answer(result: kb_answer.Answer, language: str) -> Reply:
    buttons: list[tuple[str, str]] = []
    if result.more_chunk_id:
        buttons.append((gettext("kb.button.more", language), f"kb:more:{result.more_chunk_id}"))
    for article_id, title in result.related:
        buttons.append((title, f"kb:article:{article_id}"))
    if result.declined:
        buttons.append((gettext("core.menu.human", language), "core:handoff:start"))
    if not buttons:
        buttons = menu_buttons(language)
    sources = [dict(source) for source in result.sources]
    return Reply(text=result.text, language=language, buttons=buttons, sources=sources)


@on_intent("ask_question", "out_of_scope", "nlu_fallback")
def ask(context: TurnContext) -> list[Reply]:
    language = context.language
    text = normalize(context.text)
    if not any(char.isalpha() for char in text):
        return [Reply(text=gettext("core.empty_message", language), language=language, buttons=menu_buttons(language))]

    result = kb_answer.answer(text, language)
    context.session.add(
        QuestionLog(
            user_id=context.user.id if context.user.consent_at else None,
            text=text[:QUESTION_LOG_MAX_CHARS],
            language=language,
            sector=context.user.sector,
            top_score=result.top_score,
            declined=result.declined,
            sources=[{"id": source["id"], "score": source["score"]} for source in result.sources],
        )
    )
    logger.info(
        "question from user %s: language %s, declined %s, top score %.3f",
        context.user.id,
        language,
        result.declined,
        result.top_score or 0.0,
    )
    return [_reply_from_answer(result, language)]


@on_command("kb")
def kb_command(context: TurnContext) -> list[Reply]:
    """Handle ``kb:more:<chunk id>`` and ``kb:article:<article id>`` buttons."""
    language = context.language
    parts = (context.command or "").split(":", 2)
    action = parts[1] if len(parts) > 1 else ""
    argument = parts[2] if len(parts) > 2 else ""
    if action == "more" and argument:
        result = kb_answer.more(argument, language)
    elif action == "article" and argument:
        result = kb_answer.show_article(argument, language)
    else:
        result = None
    if result is None:
        return [Reply(text=gettext("core.unknown_button", language), language=language, buttons=menu_buttons(language))]
    return [_reply_from_answer(result, language)]
