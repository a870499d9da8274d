"""Routing one turn: button command, open flow, then intent."""

from __future__ import annotations

import logging

from actions import registry
from actions.assessment.matching import match_control, parse_number
from actions.context import TurnContext
from actions.handlers import general
from actions.question_form import is_question_shaped
from actions.reply import Reply

logger = logging.getLogger(__name__)

#: Intents that go to their own handler even during an open flow, because the user is
#: asking for something else (a question, help, a change of language). The exception is
#: a low-confidence one on a control word of the flow (see :func:`interrupts`).
INTERRUPTING_INTENTS = frozenset(
    {"help", "set_language", "delete_my_data", "human_handoff", "cancel", "goodbye", "thanks", "resume"}
)

#: Below this NLU confidence an interrupting intent yields to an open flow when the whole
#: message is one of its control words ("ថយក្រោយ", back, read as goodbye at 0.37).
#: Control words are matched as whole messages, so a low-confidence guess should not
#: override them. NOTE: 0.8 is a judgement, not fitted on held-out data.
MIN_INTERRUPT_CONFIDENCE = 0.8
#: Small-talk intents that interrupt an open flow only at MIN_INTERRUPT_CONFIDENCE or
#: more, control word or not: an answer typed in words ("đầy đủ, có ghi chép") read as
#: goodbye must reach the flow, which asks again when it cannot match the answer.
SMALL_TALK_INTENTS = frozenset({"goodbye", "thanks"})

#: Intents that answer a pending yes/no question.
YES_NO_INTENTS = frozenset({"affirm", "deny"})

#: Button commands that destroy data (cancelling a run deletes its answers). They never
#: come first among a reply's buttons, so a hurried tap or "#1" picks the safe choice.
DESTRUCTIVE_COMMANDS = frozenset({"assess:cancel:yes", "assess:restart", "assess:restart:yes", "core:delete:yes"})

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
        "resume",
    }
)
MIN_ACTION_CONFIDENCE = 0.5
#: The same threshold for a message shaped like a question (a "?" at the end, or a question
#: word such as "how", "làm sao", "តើ"). On the 515 held-out examples, no question-shaped
#: message got an action intent at a confidence from 0.5 to 0.6, right or wrong, and
#: "Are solvent-based shoe glues dangerous for my workers?" was subscribe_events at 0.56.
QUESTION_ACTION_MIN_CONFIDENCE = 0.6


def load_handlers() -> None:
    """Import every handler module so their decorators register them."""
    from actions.handlers import assessment, events, general, kb  # noqa: F401


def effective_intent(context: TurnContext) -> str:
    """Return the intent to act on: a low-confidence action intent becomes a question.

    A message shaped like a question needs :data:`QUESTION_ACTION_MIN_CONFIDENCE` for an
    action intent, other messages :data:`MIN_ACTION_CONFIDENCE`.

    A message that is only a "continue" word ("tiếp tục", "ສືບຕໍ່", listed in the catalogue
    as ``assess.words.resume``) resumes whatever NLU read, because NLU can confuse it with
    cancel requests such as "tôi không muốn tiếp tục".
    """
    if general.is_resume_message(context.text):
        return "resume"
    intent = context.intent or FALLBACK_INTENT
    typed_payload = context.text.lstrip().startswith("/")
    threshold = QUESTION_ACTION_MIN_CONFIDENCE if is_question_shaped(context.text) else MIN_ACTION_CONFIDENCE
    if intent in ACTION_INTENTS and context.confidence < threshold and not typed_payload:
        logger.info("intent %s at confidence %.2f from %s handled as a question", intent, context.confidence, context.sender_id)
        return FALLBACK_INTENT
    return intent


def interrupts(context: TurnContext, intent: str) -> bool:
    """Return True when ``intent`` goes to its own handler before any open flow sees the turn.

    An interrupting intent below :data:`MIN_INTERRUPT_CONFIDENCE` does not interrupt
    when the whole message is a control word (back, skip, pause, cancel) of an open flow,
    and a small-talk intent below it never does.
    """
    if intent not in INTERRUPTING_INTENTS:
        return False
    if intent in SMALL_TALK_INTENTS and context.confidence < MIN_INTERRUPT_CONFIDENCE:
        return False
    if context.confidence < MIN_INTERRUPT_CONFIDENCE and match_control(context.text) is not None:
        logger.info("control word from %s kept from intent %s at %.2f", context.sender_id, intent, context.confidence)
        return False
    return True


def answers_pending(context: TurnContext, pending: str) -> bool:
    """Return True when this turn can answer ``pending``, the question the last turn asked.

    A yes or no answers any question, and so do the buttons of its own command prefix.
    Questions outside :data:`actions.handlers.general.PENDING_ANSWER_COMMANDS` (those of a
    self-assessment) also take a typed button number, as "1" for "Continue".
    """
    prefix = general.PENDING_ANSWER_COMMANDS.get(pending)
    if context.command is not None:
        return context.command.startswith(prefix or f"{pending.split(':', 1)[0]}:")
    if context.intent in YES_NO_INTENTS and not general.is_resume_message(context.text):
        return True
    if pending in general.PENDING_DELETE_QUESTIONS and general.starts_with_yes(context.text):
        return True
    return prefix is None and parse_number(context.text) is not None


def expire_pending(context: TurnContext) -> None:
    """Clear the pending question unless this turn answers it.

    A question waits for the next turn only. Otherwise a "yes" typed later, for example
    to the privacy notice, would confirm an old question such as deleting all data.
    """
    pending = context.user.pending_action
    if pending is None or answers_pending(context, pending):
        return
    logger.info("pending %s of user %s expired: the next turn was not a response to it", pending, context.user.id)
    context.user.pending_action = None


def destructive_last(replies: list[Reply]) -> list[Reply]:
    """Move the buttons in :data:`DESTRUCTIVE_COMMANDS` to the end of each reply, keeping their order."""
    for reply in replies:
        if any(command in DESTRUCTIVE_COMMANDS for _title, command in reply.buttons):
            safe = [button for button in reply.buttons if button[1] not in DESTRUCTIVE_COMMANDS]
            reply.buttons = safe + [button for button in reply.buttons if button[1] in DESTRUCTIVE_COMMANDS]
    return replies


def route(context: TurnContext) -> list[Reply]:
    """Return the replies for one turn, with destructive buttons last.

    A user's first message or button press always gets the privacy notice before its
    answer, whatever it says. When the answer has buttons or asks its own question, a
    typed yes or no goes to that, and only the notice's buttons answer the notice.
    """
    expire_pending(context)
    first_contact = general.is_first_turn(context) and context.user.consent_at is None
    replies = _dispatch(context)
    if first_contact and not general.privacy_notice_shown(context, replies):
        ask = context.user.pending_action is None and not any(reply.buttons for reply in replies)
        replies.insert(0, general.privacy_notice(context, ask=ask))
    return destructive_last(replies)


def _dispatch(context: TurnContext) -> list[Reply]:
    if context.command is not None:
        prefix = context.command.split(":", 1)[0]
        handler = registry.COMMANDS.get(prefix)
        if handler is None:
            logger.info("unknown button command prefix %r from %s", prefix, context.sender_id)
            handler = registry.COMMANDS["core"]
            context.command = "core:unknown"
        return handler(context)

    intent = effective_intent(context)
    if context.text.lstrip().startswith("/") and (intent == "nlu_fallback" or intent not in registry.INTENTS):
        # A typed "/word" that is no channel command and no intent payload: Rasa parses
        # "/foo bar" as nlu_fallback, which would otherwise become a knowledge-base question.
        return general.typed_command(context)
    if intent in YES_NO_INTENTS and context.user.pending_action in general.PENDING_ANSWER_COMMANDS:
        # The answer to the question asked in the previous turn, so no open flow may take it.
        return registry.INTENTS[intent](context)
    if context.user.pending_action in general.PENDING_DELETE_QUESTIONS and general.starts_with_yes(context.text):
        # "yes please delete" read as another intent: ask for the button rather than drop it.
        return general.ask_delete_button(context)
    if not interrupts(context, intent):
        for _priority, intercept in registry.INTERCEPTORS:
            replies = intercept(context)
            if replies is not None:
                return replies
        if intent != "cancel" and match_control(context.text) is not None:
            # "back", "skip" or "pause" with no open flow to take it. The cancel
            # handler replies to cancel words itself.
            return general.nothing_open(context)

    handler = registry.INTENTS.get(intent) or registry.INTENTS[FALLBACK_INTENT]
    return handler(context)
