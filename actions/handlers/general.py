"""Greeting, help, language, consent, data deletion, cancel and human handoff."""

from __future__ import annotations

import logging

from sqlalchemy import delete

from actions import registry
from actions.context import TurnContext
from actions.registry import on_command, on_intent
from actions.reply import Reply
from bot.i18n import gettext
from bot.settings import SUPPORTED_LANGUAGES
from bot.storage.models import User
from bot.storage.types import utc_now

logger = logging.getLogger(__name__)

#: Language names shown on the language buttons, each in its own language.
LANGUAGE_NAMES = {"vi": "Tiếng Việt", "en": "English", "km": "ភាសាខ្មែរ", "lo": "ພາສາລາວ"}

#: Words that name a language in set_language messages, folded to lower case.
LANGUAGE_WORDS = {
    "vi": ("viet", "việt", "vietnam", "vietnamese", "vi"),
    "en": ("english", "anh", "en", "អង់គ្លេស", "ອັງກິດ"),
    "km": ("khmer", "khơ me", "khome", "campuchia", "ខ្មែរ", "km", "cambodian"),
    "lo": ("lao", "lào", "ລາວ", "laos", "lo", "ឡាវ"),
}

PENDING_DELETE = "delete_my_data"


def menu_buttons(language: str) -> list[tuple[str, str]]:
    """Return the main menu: ask, assess, events, language."""
    return [
        (gettext("core.menu.ask", language), "core:ask"),
        (gettext("core.menu.assess", language), "assess:start"),
        (gettext("core.menu.events", language), "events:list"),
        (gettext("core.menu.language", language), "core:language"),
    ]


def language_buttons() -> list[tuple[str, str]]:
    """Return one button per supported language."""
    return [(LANGUAGE_NAMES[code], f"lang:{code}") for code in SUPPORTED_LANGUAGES]


@on_intent("greet")
def greet(context: TurnContext) -> list[Reply]:
    language = context.language
    replies = [Reply(text=gettext("core.greeting", language), language=language, buttons=menu_buttons(language))]
    if context.user.consent_at is None:
        replies.append(
            Reply(
                text=gettext("core.privacy_notice", language),
                language=language,
                buttons=[
                    (gettext("core.consent.yes", language), "core:consent:yes"),
                    (gettext("core.consent.no", language), "core:consent:no"),
                ],
            )
        )
    return replies


@on_intent("help")
def show_help(context: TurnContext) -> list[Reply]:
    return [Reply(text=gettext("core.help", context.language), language=context.language, buttons=menu_buttons(context.language))]


@on_intent("goodbye")
def goodbye(context: TurnContext) -> list[Reply]:
    return [Reply(text=gettext("core.goodbye", context.language), language=context.language)]


def _language_from_words(context: TurnContext) -> str | None:
    value = context.entity("language")
    if value in SUPPORTED_LANGUAGES:
        return value
    lowered = context.text.lower()
    matches = [
        code
        for code, words in LANGUAGE_WORDS.items()
        if any(word in lowered.split() or (len(word) > 3 and word in lowered) for word in words)
    ]
    if len(matches) == 1:
        return matches[0]
    return None


def set_language(context: TurnContext, language: str) -> list[Reply]:
    """Store ``language`` as the user's explicit choice and confirm in it."""
    context.user.language = language
    context.user.language_confirmed = True
    context.language = language
    logger.info("user %s chose language %s", context.user.id, language)
    return [Reply(text=gettext("core.language_set", language), language=language, buttons=menu_buttons(language))]


@on_intent("set_language")
def ask_language(context: TurnContext) -> list[Reply]:
    chosen = _language_from_words(context)
    if chosen:
        return set_language(context, chosen)
    return [Reply(text=gettext("core.language_prompt", context.language), language=context.language, buttons=language_buttons())]


@on_command("lang")
def language_command(context: TurnContext) -> list[Reply]:
    code = (context.command or "").partition(":")[2]
    if code not in SUPPORTED_LANGUAGES:
        return unknown_button(context)
    return set_language(context, code)


@on_intent("delete_my_data")
def confirm_delete(context: TurnContext) -> list[Reply]:
    context.user.pending_action = PENDING_DELETE
    language = context.language
    return [
        Reply(
            text=gettext("core.delete.confirm", language),
            language=language,
            buttons=[
                (gettext("core.delete.yes", language), "core:delete:yes"),
                (gettext("core.delete.no", language), "core:delete:no"),
            ],
        )
    ]


def delete_user(context: TurnContext) -> list[Reply]:
    """Delete the user and everything kept about them (rows cascade)."""
    language = context.language
    user_id = context.user.id
    context.session.execute(delete(User).where(User.id == user_id))
    context.session.expunge(context.user)
    logger.info("deleted user %s and their data", user_id)
    return [Reply(text=gettext("core.delete.done", language), language=language)]


@on_intent("affirm", "deny")
def answer_pending(context: TurnContext) -> list[Reply]:
    pending = context.user.pending_action
    context.user.pending_action = None
    if pending == PENDING_DELETE:
        if context.intent == "affirm":
            return delete_user(context)
        return [
            Reply(
                text=gettext("core.delete.kept", context.language),
                language=context.language,
                buttons=menu_buttons(context.language),
            )
        ]
    return [
        Reply(
            text=gettext("core.nothing_pending", context.language),
            language=context.language,
            buttons=menu_buttons(context.language),
        )
    ]


@on_intent("cancel")
def cancel(context: TurnContext) -> list[Reply]:
    context.user.pending_action = None
    for hook in registry.CANCEL_HOOKS:
        replies = hook(context)
        if replies is not None:
            return replies
    return [
        Reply(
            text=gettext("core.nothing_to_cancel", context.language),
            language=context.language,
            buttons=menu_buttons(context.language),
        )
    ]


def handoff_available(context: TurnContext) -> bool:
    """Return True when the user's channel says staff can take over (a staff chat is set)."""
    return bool(context.metadata.get("handoff_available"))


@on_intent("human_handoff")
def human_handoff(context: TurnContext) -> list[Reply]:
    if not handoff_available(context):
        logger.info("user %s asked for a person, but no staff chat serves channel %s", context.user.id, context.user.channel)
        return [
            Reply(
                text=gettext("core.handoff.unavailable", context.language),
                language=context.language,
                buttons=menu_buttons(context.language),
            )
        ]
    context.user.handoff_active = True
    logger.info("user %s asked for a person", context.user.id)
    return [Reply(text=gettext("core.handoff.started", context.language), language=context.language, handoff="start")]


def unknown_button(context: TurnContext) -> list[Reply]:
    """Reply to a button whose command is unknown or expired."""
    return [
        Reply(
            text=gettext("core.unknown_button", context.language),
            language=context.language,
            buttons=menu_buttons(context.language),
        )
    ]


@on_command("core")
def core_command(context: TurnContext) -> list[Reply]:
    """Handle ``core:*`` buttons: ask, language, consent, delete."""
    command = context.command or ""
    language = context.language
    if command == "core:ask":
        return [Reply(text=gettext("core.ask_prompt", language), language=language)]
    if command == "core:menu":
        return show_help(context)
    if command == "core:language":
        return [Reply(text=gettext("core.language_prompt", language), language=language, buttons=language_buttons())]
    if command == "core:consent:yes":
        context.user.consent_at = utc_now()
        return [Reply(text=gettext("core.consent.thanks", language), language=language, buttons=menu_buttons(language))]
    if command == "core:consent:no":
        context.user.consent_at = None
        return [Reply(text=gettext("core.consent.declined", language), language=language, buttons=menu_buttons(language))]
    if command == "core:delete:yes" and context.user.pending_action == PENDING_DELETE:
        return delete_user(context)
    if command == "core:delete:no":
        context.user.pending_action = None
        return [Reply(text=gettext("core.delete.kept", language), language=language, buttons=menu_buttons(language))]
    if command == "core:handoff:start":
        return human_handoff(context)
    if command == "core:handoff:end":
        context.user.handoff_active = False
        return [
            Reply(text=gettext("core.handoff.ended", language), language=language, handoff="end", buttons=menu_buttons(language))
        ]
    return unknown_button(context)
