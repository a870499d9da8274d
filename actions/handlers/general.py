"""Greeting, help, thanks, language, consent, data deletion, cancel, resume and human handoff."""

from __future__ import annotations

import dataclasses
import functools
import logging
from pathlib import Path

from sqlalchemy import delete, select

from actions import registry
from actions.assessment.matching import Control, fold, match_control
from actions.assessment.report import CHART_FOLDER
from actions.context import TurnContext
from actions.registry import on_command, on_intent
from actions.reply import Reply
from bot.i18n import catalogue, gettext
from bot.settings import SUPPORTED_LANGUAGES, get_settings
from bot.storage.models import Assessment, AssessmentResult, User
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

#: ``users.pending_action`` while a data deletion waits for its answer, when the user asked
#: with the /deletedata command: a clear typed yes in the next turn also confirms.
PENDING_DELETE = "core:delete"
#: The same, when the request came from free text: only the "Yes, delete" button confirms,
#: because NLU reads odd messages (even "'; DELETE FROM users; --") as a deletion request.
PENDING_DELETE_BUTTON = "core:delete:button"
#: ``users.pending_action`` after the privacy notice: a typed yes or no answers it.
PENDING_CONSENT = "core:consent"
#: Button commands (by prefix) that answer each pending question of this module. The
#: router clears a pending question on any other turn (see ``actions.router``).
PENDING_ANSWER_COMMANDS = {
    PENDING_DELETE: "core:delete:",
    PENDING_DELETE_BUTTON: "core:delete:",
    PENDING_CONSENT: "core:consent:",
}
#: A typed yes confirms a /deletedata request, or agrees to the privacy notice, only at
#: this NLU confidence or above. A vaguer yes gets the buttons again.
CLEAR_YES_CONFIDENCE = 0.8
#: Below this NLU confidence a cancel request with nothing open to cancel is searched as
#: a question. NLU reads odd text (even "Robert'); DROP TABLE question_log;--", 0.43) as
#: cancel, and "nothing to cancel" does not answer it.
MIN_CANCEL_CONFIDENCE = 0.5
#: Catalogue message whose texts list the words that start a typed yes.
YES_WORDS_MESSAGE = "core.words.yes"
#: A message longer than this is not taken as a typed yes, whatever its first word.
MAX_TYPED_YES_WORDS = 5
MAX_TYPED_YES_CHARS = 40
#: Pending questions about deleting all data.
PENDING_DELETE_QUESTIONS = frozenset({PENDING_DELETE, PENDING_DELETE_BUTTON})
#: Typed command that shows the privacy notice again.
PRIVACY_COMMAND = "/privacy"
#: Catalogue message whose texts list the words that resume a paused self-assessment.
RESUME_WORDS_MESSAGE = "assess.words.resume"


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


def privacy_notice(context: TurnContext, *, ask: bool = True) -> Reply:
    """Return the privacy notice with its buttons.

    With ``ask``, a typed yes or no in the next turn also answers it. Without, only the
    buttons do, so that a question the turn already asked (such as deleting all data)
    keeps the next turn's yes or no.
    """
    language = context.language
    if ask:
        context.user.pending_action = PENDING_CONSENT
    return Reply(
        text=gettext("core.privacy_notice", language),
        language=language,
        buttons=[
            (gettext("core.consent.yes", language), "core:consent:yes"),
            (gettext("core.consent.no", language), "core:consent:no"),
        ],
    )


def privacy_notice_shown(context: TurnContext, replies: list[Reply]) -> bool:
    """Return whether ``replies`` already contain the privacy notice, or the user was deleted this turn."""
    if context.user not in context.session:
        return True
    notice = gettext("core.privacy_notice", context.language)
    return any(reply.text == notice for reply in replies)


def is_first_turn(context: TurnContext) -> bool:
    """Return True in the user's first turn: ``users.last_seen_at`` is set only after each turn's handlers."""
    return context.user.last_seen_at is None


@on_intent("greet")
def greet(context: TurnContext) -> list[Reply]:
    """Greet with the menu, and with the privacy notice in the user's first turn only.

    ``users`` stores an agreement (``consent_at``) but no decline, so the notice comes
    only in a user's first turn (``actions.router.route`` adds it to any first reply)
    and on /privacy.
    """
    language = context.language
    replies = [Reply(text=gettext("core.greeting", language), language=language, buttons=menu_buttons(language))]
    if context.user.consent_at is None and is_first_turn(context):
        replies.append(privacy_notice(context))
    return replies


@on_intent("help")
def show_help(context: TurnContext) -> list[Reply]:
    return [Reply(text=gettext("core.help", context.language), language=context.language, buttons=menu_buttons(context.language))]


@on_intent("goodbye")
def goodbye(context: TurnContext) -> list[Reply]:
    return [Reply(text=gettext("core.goodbye", context.language), language=context.language)]


@on_intent("thanks")
def thanks(context: TurnContext) -> list[Reply]:
    return [
        Reply(text=gettext("core.thanks", context.language), language=context.language, buttons=menu_buttons(context.language))
    ]


def typed_command(context: TurnContext) -> list[Reply]:
    """Reply to a typed ``/command`` that is no intent payload: /privacy, or any unknown one."""
    if context.text.strip().casefold() == PRIVACY_COMMAND:
        return [privacy_notice(context)]
    return unknown_command(context)


def nothing_open(context: TurnContext) -> list[Reply]:
    """Reply to "back", "skip" or "pause" when no flow is open to take it."""
    language = context.language
    return [Reply(text=gettext("core.nothing_open", language), language=language, buttons=menu_buttons(language))]


def unknown_command(context: TurnContext) -> list[Reply]:
    """Reply to a typed ``/command`` that no channel or intent handles."""
    logger.info("unknown typed command from %s", context.sender_id)
    return [
        Reply(
            text=gettext("core.unknown_command", context.language),
            language=context.language,
            buttons=menu_buttons(context.language),
        )
    ]


@functools.cache
def catalogue_words(domain: str, message_id: str) -> frozenset[str]:
    """Return the folded "|"-separated words of ``message_id`` in every language's catalogue."""
    words: set[str] = set()
    for language in SUPPORTED_LANGUAGES:
        text = catalogue(language, domain).get(message_id, "")
        words.update(fold(word) for word in text.split("|") if fold(word))
    return frozenset(words)


def resume_words() -> frozenset[str]:
    """Return the folded whole messages, in every language, that mean "continue the paused run"."""
    return catalogue_words("assess", RESUME_WORDS_MESSAGE)


def yes_words() -> frozenset[str]:
    """Return the folded words, in every language, that start a typed yes ("yes", "có", "បាទ")."""
    return catalogue_words("core", YES_WORDS_MESSAGE)


def starts_with_yes(text: str) -> bool:
    """Return True for a short message that starts with a yes word, such as "yes please delete".

    Latin words must end at a space, so "ok" does not match "okra". Khmer and Lao are
    written without spaces, so there a yes word at the start is enough.
    """
    folded = fold(text)
    if not folded or len(folded.split()) > MAX_TYPED_YES_WORDS or len(folded) > MAX_TYPED_YES_CHARS:
        return False
    for word in yes_words():
        if folded == word or folded.startswith(word + " "):
            return True
        if not word.isascii() and folded.startswith(word):
            return True
    return False


def ask_delete_button(context: TurnContext) -> list[Reply]:
    """Return the request to press the confirm button, for a typed yes that NLU did not read as a clear yes."""
    language = context.language
    context.user.pending_action = PENDING_DELETE_BUTTON
    return [Reply(text=gettext("core.delete.press_button", language), language=language, buttons=delete_buttons(language))]


def is_resume_message(text: str) -> bool:
    """Return True when the whole message is a "continue" word such as "tiếp tục" or "ສືບຕໍ່"."""
    return fold(text) in resume_words()


@on_intent("resume")
def resume(context: TurnContext) -> list[Reply]:
    """Continue the open self-assessment, as its "Continue" button does."""
    return registry.COMMANDS["assess"](dataclasses.replace(context, command="assess:resume"))


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
    context.language_chosen = True
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


def delete_buttons(language: str) -> list[tuple[str, str]]:
    """Return the answers to the deletion question, keeping first so it is never the default."""
    return [
        (gettext("core.delete.no", language), "core:delete:no"),
        (gettext("core.delete.yes", language), "core:delete:yes"),
    ]


@on_intent("delete_my_data")
def confirm_delete(context: TurnContext) -> list[Reply]:
    typed_command = context.text.lstrip().startswith("/")
    context.user.pending_action = PENDING_DELETE if typed_command else PENDING_DELETE_BUTTON
    logger.info("user %s asked to delete their data (%s)", context.user.id, "command" if typed_command else "free text")
    language = context.language
    return [Reply(text=gettext("core.delete.confirm", language), language=language, buttons=delete_buttons(language))]


def delete_user(context: TurnContext) -> list[Reply]:
    """Delete the user and everything kept about them: their rows (by cascade) and their chart images."""
    language = context.language
    user_id = context.user.id
    chart_paths = context.session.scalars(
        select(AssessmentResult.chart_path)
        .join(Assessment, Assessment.id == AssessmentResult.assessment_id)
        .where(Assessment.user_id == user_id, AssessmentResult.chart_path.is_not(None))
    ).all()

    context.session.execute(delete(User).where(User.id == user_id))
    context.session.flush()
    context.session.expunge(context.user)

    # NOTE: the images go before the transaction commits, so a failed commit keeps the
    # rows but not their charts.
    removed = sum(_remove_chart(path) for path in chart_paths if path)
    logger.info("deleted user %s and their data (%d chart images)", user_id, removed)
    return [Reply(text=gettext("core.delete.done", language), language=language)]


def _remove_chart(path: str) -> bool:
    """Remove one chart image that lies in the chart folder, and return whether a file was removed.

    A path outside that folder is left alone, so a wrong database value cannot remove other files.
    """
    chart_folder = (get_settings().var_dir / CHART_FOLDER).resolve()
    chart = Path(path).resolve()
    if chart.parent != chart_folder:
        logger.warning("chart path %s is outside %s; not removed", chart, chart_folder)
        return False
    try:
        chart.unlink()
    except FileNotFoundError:
        return False
    except OSError as error:
        logger.error("could not remove chart %s: %s", chart, error)
        return False
    return True


def _answer_delete(context: TurnContext, pending: str) -> list[Reply]:
    language = context.language
    if context.intent != "affirm":
        return [Reply(text=gettext("core.delete.kept", language), language=language, buttons=menu_buttons(language))]
    if pending == PENDING_DELETE and context.confidence >= CLEAR_YES_CONFIDENCE:
        return delete_user(context)
    # A free-text request, or a yes that is not clear: only the button deletes.
    context.user.pending_action = pending
    return [Reply(text=gettext("core.delete.press_button", language), language=language, buttons=delete_buttons(language))]


def _record_consent(context: TurnContext, agreed: bool) -> list[Reply]:
    language = context.language
    context.user.consent_at = utc_now() if agreed else None
    logger.info("user %s %s the privacy notice", context.user.id, "agreed to" if agreed else "declined")
    message_id = "core.consent.thanks" if agreed else "core.consent.declined"
    return [Reply(text=gettext(message_id, language), language=language, buttons=menu_buttons(language))]


@on_intent("affirm", "deny")
def answer_pending(context: TurnContext) -> list[Reply]:
    """Answer the question asked in the previous turn: data deletion or the privacy notice."""
    pending = context.user.pending_action
    context.user.pending_action = None
    if pending in (PENDING_DELETE, PENDING_DELETE_BUTTON):
        return _answer_delete(context, pending)
    if pending == PENDING_CONSENT:
        if context.intent == "affirm" and context.confidence < CLEAR_YES_CONFIDENCE:
            return [privacy_notice(context)]
        return _record_consent(context, agreed=context.intent == "affirm")
    return [
        Reply(
            text=gettext("core.nothing_pending", context.language),
            language=context.language,
            buttons=menu_buttons(context.language),
        )
    ]


@on_intent("cancel")
def cancel(context: TurnContext) -> list[Reply]:
    """Close the open flow, or reply that nothing is open.

    With nothing to cancel, a back, skip or pause word gets :func:`nothing_open`, and a
    request below :data:`MIN_CANCEL_CONFIDENCE` is searched as a question.
    """
    context.user.pending_action = None
    for hook in registry.CANCEL_HOOKS:
        replies = hook(context)
        if replies is not None:
            return replies
    control = match_control(context.text)
    if control is not None and control is not Control.CANCEL:
        return nothing_open(context)
    typed_payload = context.text.lstrip().startswith("/")
    if control is None and context.confidence < MIN_CANCEL_CONFIDENCE and not typed_payload:
        logger.info("cancel at %.2f from %s with nothing open: searched as a question", context.confidence, context.sender_id)
        return registry.INTENTS["ask_question"](context)
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
    if command in ("core:consent:yes", "core:consent:no"):
        context.user.pending_action = None
        return _record_consent(context, agreed=command == "core:consent:yes")
    if command == "core:delete:yes" and context.user.pending_action in (PENDING_DELETE, PENDING_DELETE_BUTTON):
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
