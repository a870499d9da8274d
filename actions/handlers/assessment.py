"""Guided self-assessments in chat: sector choice, one question per message, report.

Button commands (all start with ``assess``):

- ``assess:start`` opens the sector choice, or offers to continue an open run;
- ``assess:s:<questionnaire>`` starts a run; ``assess:a:<question>:<answer>`` answers;
- ``assess:back``, ``assess:skip``, ``assess:pause``, ``assess:cancel`` (then
  ``assess:cancel:yes`` or ``assess:cancel:no``), ``assess:resume``, ``assess:restart``
  (then ``assess:restart:yes`` when the run has answers).

Typed messages during a run go through :func:`intercept`: an answer (number or text),
a control word (back, skip, pause, cancel in any of the four languages), a question
for the knowledge base or an off-topic question (answered, then the current question
is asked again), or
something unclear (asked again; after two unclear messages the buttons and a way out
are offered, and a third pauses the run and handles the message normally). All state
is in the database, so a run survives restarts of Rasa and the action server.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from pathlib import Path

from actions import registry
from actions.assessment import flow, store
from actions.assessment.flow import Answers, AnswerState
from actions.assessment.loader import QuestionnaireError, get_questionnaires
from actions.assessment.matching import Control, fold, match_answer, match_control, parse_number
from actions.assessment.report import CHART_FOLDER, PreviousRun, build_report, dimension_name, render_chart
from actions.assessment.schema import Answer, Question, Questionnaire
from actions.assessment.scoring import score
from actions.context import TurnContext
from actions.handlers.general import menu_buttons, unknown_button
from actions.question_form import is_question_shaped
from actions.registry import interceptor, on_cancel, on_command, on_intent
from actions.reply import Reply
from bot.i18n import gettext
from bot.settings import get_settings
from bot.storage.models import Assessment
from bot.storage.types import utc_now

logger = logging.getLogger(__name__)

COMMAND_PREFIX = "assess"
#: ``users.pending_action`` values while a yes/no about a run is open.
PENDING_RESUME = "assess:resume"
PENDING_CANCEL = "assess:cancel"
PENDING_RESTART = "assess:restart"
#: An in-progress run untouched this long gets "continue where you left off?" instead of
#: taking the next message as an answer.
RESUME_PROMPT_AFTER = dt.timedelta(hours=1)
#: Unclear messages in a row before the run is paused and the message handled normally.
MAX_FAILED_ATTEMPTS = 2
#: Intents answered by their own handler during a run, after which the question is asked again.
SIDE_INTENTS = ("ask_question", "list_events", "out_of_scope")
SIDE_INTENT_MIN_CONFIDENCE = 0.6
#: A typed text shorter than this (after folding) is taken as an attempted answer, not a question.
MIN_QUESTION_CHARS = 10
#: Yes/no intents that pick the answers with ids "yes" and "no".
YES_NO_INTENTS = {"affirm": "yes", "deny": "no"}
YES_NO_MIN_CONFIDENCE = 0.7


# --- building replies ----------------------------------------------------------------


def _questionnaires() -> dict[str, Questionnaire] | None:
    try:
        return get_questionnaires()
    except QuestionnaireError as error:
        logger.error("questionnaires failed to load: %s", error)
        return None


def _unavailable(context: TurnContext) -> list[Reply]:
    language = context.language
    return [Reply(text=gettext("assess.unavailable", language), language=language, buttons=menu_buttons(language))]


def _control_buttons(language: str) -> list[tuple[str, str]]:
    return [
        (gettext("assess.button.back", language), "assess:back"),
        (gettext("assess.button.skip", language), "assess:skip"),
        (gettext("assess.button.pause", language), "assess:pause"),
        (gettext("assess.button.cancel", language), "assess:cancel"),
    ]


def _answer_label(question: Question, state: AnswerState, language: str) -> str:
    answer = question.answer(state.answer_id)
    if state.skipped or answer is None:
        return gettext("assess.skipped_mark", language)
    return answer.text[language]


def _question_reply(
    context: TurnContext,
    questionnaire: Questionnaire,
    assessment: Assessment,
    answers: Answers,
    question: Question,
    prefix: list[str] | None = None,
) -> Reply:
    """Return the message asking ``question`` and make it the run's current question."""
    language = context.language
    assessment.current_question_id = question.id
    position, total = flow.progress(questionnaire, answers, question.id)
    lines = [*(prefix or [])]
    header = gettext(
        "assess.question_header",
        language,
        position=position,
        total=total,
        dimension=dimension_name(question.dimension.value, language),
    )
    lines.extend([header, "", question.text[language]])
    earlier = answers.get(question.id)
    if earlier is not None:
        lines.extend(["", gettext("assess.your_answer", language, answer=_answer_label(question, earlier, language))])
    buttons = [(answer.text[language], f"assess:a:{question.id}:{answer.id}") for answer in question.answers]
    buttons.extend(_control_buttons(language))
    return Reply(
        text="\n".join(lines),
        language=language,
        buttons=buttons,
        extra={"assessment": {"question": question.id, "position": position, "total": total}},
    )


def _sector_menu(context: TurnContext, questionnaires: dict[str, Questionnaire]) -> list[Reply]:
    language = context.language
    buttons = [(questionnaire.name[language], f"assess:s:{questionnaire.id}") for questionnaire in questionnaires.values()]
    return [Reply(text=gettext("assess.choose_sector", language), language=language, buttons=buttons)]


def _no_open(context: TurnContext) -> list[Reply]:
    language = context.language
    start = (gettext("assess.button.start", language), "assess:start")
    # The menu's own self-assessment entry would be a second button for the same command.
    buttons = [start, *(button for button in menu_buttons(language) if button[1] != start[1])]
    return [Reply(text=gettext("assess.no_open", language), language=language, buttons=buttons)]


def _resume_prompt(context: TurnContext, assessment: Assessment) -> list[Reply]:
    """Pause the run and ask whether to continue it where the owner left off."""
    questionnaires = _questionnaires()
    questionnaire = questionnaires.get(assessment.questionnaire_id) if questionnaires else None
    if questionnaire is None:
        return _drop_unknown_questionnaire(context, assessment)
    language = context.language
    answers = store.answers_of(context.session, assessment)
    current = _current_question(questionnaire, assessment, answers)
    position, total = flow.progress(questionnaire, answers, current.id) if current else (len(answers), len(answers))
    assessment.status = store.Status.PAUSED.value
    context.user.pending_action = PENDING_RESUME
    text = gettext("assess.resume_prompt", language, name=questionnaire.name[language], position=position, total=total)
    return [Reply(text=text, language=language, buttons=_resume_buttons(language))]


# The button lists below put the destructive choice last, as ``actions.router`` shows
# it, so a typed number (see :func:`_pressed_number`) names the button shown under it.


def _resume_buttons(language: str) -> list[tuple[str, str]]:
    return [
        (gettext("assess.button.continue", language), "assess:resume"),
        (gettext("assess.button.menu", language), "core:menu"),
        (gettext("assess.button.restart", language), "assess:restart"),
    ]


def _cancel_buttons(language: str) -> list[tuple[str, str]]:
    return [
        (gettext("assess.button.cancel_no", language), "assess:cancel:no"),
        (gettext("assess.button.pause", language), "assess:pause"),
        (gettext("assess.button.cancel_yes", language), "assess:cancel:yes"),
    ]


def _restart_buttons(language: str) -> list[tuple[str, str]]:
    return [
        (gettext("assess.button.cancel_no", language), "assess:cancel:no"),
        (gettext("assess.button.restart_yes", language), "assess:restart:yes"),
    ]


def _drop_unknown_questionnaire(context: TurnContext, assessment: Assessment) -> list[Reply]:
    logger.warning(
        "assessment %s uses questionnaire %r, which no longer exists: cancelling it", assessment.id, assessment.questionnaire_id
    )
    store.cancel(context.session, assessment)
    return _unavailable(context)


# --- state transitions ---------------------------------------------------------------


def _current_question(questionnaire: Questionnaire, assessment: Assessment, answers: Answers) -> Question | None:
    stored = questionnaire.question(assessment.current_question_id)
    if stored is not None and flow.visibility(questionnaire, answers)[stored.id]:
        return stored
    return flow.next_question(questionnaire, answers)


def _load_run(context: TurnContext, assessment: Assessment) -> tuple[Questionnaire, dict[str, AnswerState]] | None:
    questionnaires = _questionnaires()
    questionnaire = questionnaires.get(assessment.questionnaire_id) if questionnaires else None
    if questionnaire is None:
        return None
    return questionnaire, store.answers_of(context.session, assessment)


def _show_current(context: TurnContext, assessment: Assessment, prefix: list[str] | None = None) -> list[Reply]:
    """Ask the run's current question again (or finish the run when nothing is left)."""
    run = _load_run(context, assessment)
    if run is None:
        return _drop_unknown_questionnaire(context, assessment)
    questionnaire, answers = run
    assessment.status = store.Status.IN_PROGRESS.value
    question = _current_question(questionnaire, assessment, answers)
    if question is None:
        return _finish(context, questionnaire, assessment, answers)
    return [_question_reply(context, questionnaire, assessment, answers, question, prefix)]


def _start(context: TurnContext, questionnaire: Questionnaire) -> list[Reply]:
    assessment = store.create(
        context.session, context.user.id, questionnaire.id, questionnaire.version, questionnaire.sector, context.language
    )
    context.user.pending_action = None
    if context.user.sector is None and questionnaire.sector != "general":
        context.user.sector = questionnaire.sector
    first = flow.next_question(questionnaire, {})
    assert first is not None  # a questionnaire has at least one question
    prefix = [gettext("assess.started", context.language, name=questionnaire.name[context.language]), ""]
    return [_question_reply(context, questionnaire, assessment, {}, first, prefix)]


def _record(context: TurnContext, assessment: Assessment, question: Question, answer: Answer | None) -> list[Reply]:
    """Save an answer (None: a skip) to ``question`` and ask the next question or report."""
    run = _load_run(context, assessment)
    if run is None:
        return _drop_unknown_questionnaire(context, assessment)
    questionnaire, answers = run
    skipped = answer is None
    store.save_answer(
        context.session,
        assessment,
        question.id,
        None if answer is None else answer.id,
        skipped=skipped,
        not_applicable=bool(answer and answer.not_applicable),
        points=None if answer is None else answer.points,
    )
    assessment.failed_attempts = 0
    assessment.status = store.Status.IN_PROGRESS.value
    answers[question.id] = AnswerState(answer_id=None if answer is None else answer.id, skipped=skipped)
    logger.info("assessment %s: question %s %s", assessment.id, question.id, "skipped" if skipped else "answered")
    following = flow.next_question(questionnaire, answers)
    if following is None:
        return _finish(context, questionnaire, assessment, answers)
    return [_question_reply(context, questionnaire, assessment, answers, following)]


def _finish(context: TurnContext, questionnaire: Questionnaire, assessment: Assessment, answers: Answers) -> list[Reply]:
    """Score a complete run, draw its chart, store the result and return the report."""
    language = context.language
    result = score(questionnaire, answers)
    earlier = store.previous_result(context.session, assessment)
    previous = None
    if earlier is not None:
        earlier_run, earlier_result = earlier
        previous = PreviousRun(
            completed_at=earlier_run.completed_at or earlier_result.created_at,
            overall=earlier_result.overall if earlier_result.level != "unscored" else None,
            dimensions=earlier_result.dimension_scores or {},
        )

    chart_path: Path | None = None
    if not result.all_skipped:
        chart_path = get_settings().var_dir.resolve() / CHART_FOLDER / f"assessment-{assessment.id}.png"
        try:
            render_chart(chart_path, questionnaire, result, language, previous, context.user.timezone)
        except (OSError, ValueError, RuntimeError):
            logger.exception("chart of assessment %s failed; the report goes out without it", assessment.id)
            chart_path = None

    store.save_result(
        context.session,
        assessment,
        overall=result.overall,
        level=result.level,
        dimensions=result.dimensions,
        actions=[action.to_dict() for action in result.actions],
        chart_path=str(chart_path) if chart_path else None,
    )
    return build_report(
        questionnaire,
        result,
        language,
        chart_path=chart_path,
        previous=previous,
        timezone=context.user.timezone,
        menu_buttons=[(gettext("assess.button.menu", language), "core:menu")],
    )


def _go_back(context: TurnContext, assessment: Assessment) -> list[Reply]:
    run = _load_run(context, assessment)
    if run is None:
        return _drop_unknown_questionnaire(context, assessment)
    questionnaire, answers = run
    assessment.status = store.Status.IN_PROGRESS.value
    assessment.failed_attempts = 0
    current = _current_question(questionnaire, assessment, answers)
    previous = flow.previous_question(questionnaire, answers, current.id if current else None)
    if previous is None:
        if current is None:
            return _finish(context, questionnaire, assessment, answers)
        return [
            _question_reply(
                context, questionnaire, assessment, answers, current, [gettext("assess.first_question", context.language), ""]
            )
        ]
    return [_question_reply(context, questionnaire, assessment, answers, previous)]


def _skip(context: TurnContext, assessment: Assessment) -> list[Reply]:
    run = _load_run(context, assessment)
    if run is None:
        return _drop_unknown_questionnaire(context, assessment)
    questionnaire, answers = run
    current = _current_question(questionnaire, assessment, answers)
    if current is None:
        return _finish(context, questionnaire, assessment, answers)
    return _record(context, assessment, current, None)


def _pause(context: TurnContext, assessment: Assessment) -> list[Reply]:
    language = context.language
    assessment.status = store.Status.PAUSED.value
    assessment.failed_attempts = 0
    assessment.updated_at = utc_now()
    context.user.pending_action = None
    logger.info("assessment %s paused", assessment.id)
    buttons = [(gettext("assess.button.continue", language), "assess:resume"), *menu_buttons(language)]
    return [Reply(text=gettext("assess.paused", language), language=language, buttons=buttons)]


def _ask_cancel(context: TurnContext, assessment: Assessment) -> list[Reply]:
    """Cancel at once when nothing was answered; otherwise ask first, because answers are deleted."""
    answered = len(store.answers_of(context.session, assessment))
    if answered == 0:
        return _cancel(context, assessment)
    language = context.language
    context.user.pending_action = PENDING_CANCEL
    buttons = _cancel_buttons(language)
    return [Reply(text=gettext("assess.cancel_confirm", language, count=answered), language=language, buttons=buttons)]


def _ask_restart(context: TurnContext, assessment: Assessment | None) -> list[Reply]:
    """Start over at once when nothing was answered; otherwise ask first, because answers are deleted."""
    answered = len(store.answers_of(context.session, assessment)) if assessment is not None else 0
    if assessment is None or answered == 0:
        return _restart(context, assessment)
    language = context.language
    context.user.pending_action = PENDING_RESTART
    buttons = _restart_buttons(language)
    return [Reply(text=gettext("assess.restart_confirm", language, count=answered), language=language, buttons=buttons)]


def _restart(context: TurnContext, assessment: Assessment | None) -> list[Reply]:
    """Cancel the open run, deleting its answers, and show the sector choice."""
    context.user.pending_action = None
    if assessment is not None:
        store.cancel(context.session, assessment)
        logger.info("assessment %s cancelled to start over", assessment.id)
    questionnaires = _questionnaires()
    return _sector_menu(context, questionnaires) if questionnaires else _unavailable(context)


def _cancel(context: TurnContext, assessment: Assessment) -> list[Reply]:
    language = context.language
    store.cancel(context.session, assessment)
    context.user.pending_action = None
    return [Reply(text=gettext("assess.cancelled", language), language=language, buttons=menu_buttons(language))]


def _apply_control(context: TurnContext, assessment: Assessment, control: Control) -> list[Reply]:
    if control is Control.BACK:
        return _go_back(context, assessment)
    if control is Control.SKIP:
        return _skip(context, assessment)
    if control is Control.PAUSE:
        return _pause(context, assessment)
    return _ask_cancel(context, assessment)


# --- button commands -----------------------------------------------------------------


@on_command(COMMAND_PREFIX)
def assess_command(context: TurnContext) -> list[Reply]:
    """Handle ``assess:*`` buttons (see the module docstring)."""
    parts = (context.command or "").split(":")
    action = parts[1] if len(parts) > 1 else "start"
    arguments = parts[2:]
    assessment = store.open_assessment(context.session, context.user.id)
    if action != "start":
        context.user.pending_action = None

    if action == "start":
        return start_assessment(context)
    if action == "s" and len(arguments) == 1:
        if assessment is not None and store.answers_of(context.session, assessment):
            # An old sector button must not silently replace a run that has answers.
            return _resume_prompt(context, assessment)
        questionnaires = _questionnaires()
        if questionnaires is None:
            return _unavailable(context)
        chosen = questionnaires.get(arguments[0])
        return _start(context, chosen) if chosen else _sector_menu(context, questionnaires)
    if action == "restart":
        if arguments == ["yes"]:
            return _restart(context, assessment)
        return _ask_restart(context, assessment)
    if action not in ("a", "back", "skip", "pause", "cancel", "resume"):
        return unknown_button(context)
    if assessment is None:
        return _no_open(context)

    if action == "a" and len(arguments) == 2:
        return _answer_button(context, assessment, arguments[0], arguments[1])
    if action == "resume":
        assessment.failed_attempts = 0
        return _show_current(context, assessment)
    if action == "cancel":
        if arguments == ["yes"]:
            return _cancel(context, assessment)
        if arguments == ["no"]:
            return _show_current(context, assessment, [gettext("assess.back_to_assessment", context.language), ""])
        return _ask_cancel(context, assessment)
    if action in ("back", "skip", "pause"):
        return _apply_control(context, assessment, Control(action))
    return unknown_button(context)


def _answer_button(context: TurnContext, assessment: Assessment, question_id: str, answer_id: str) -> list[Reply]:
    run = _load_run(context, assessment)
    if run is None:
        return _drop_unknown_questionnaire(context, assessment)
    questionnaire, answers = run
    current = _current_question(questionnaire, assessment, answers)
    question = questionnaire.question(question_id)
    answer = question.answer(answer_id) if question else None
    if current is None:
        return _finish(context, questionnaire, assessment, answers)
    if question is None or answer is None or question.id != current.id:
        logger.info("assessment %s: button for %s:%s while at %s", assessment.id, question_id, answer_id, current.id)
        assessment.status = store.Status.IN_PROGRESS.value
        return [
            _question_reply(
                context, questionnaire, assessment, answers, current, [gettext("assess.stale_button", context.language), ""]
            )
        ]
    return _record(context, assessment, question, answer)


# --- intents and typed messages ------------------------------------------------------


@on_intent("start_assessment")
def start_assessment(context: TurnContext) -> list[Reply]:
    """Offer to continue an open run, start the named sector, or show the sector choice."""
    assessment = store.open_assessment(context.session, context.user.id)
    if assessment is not None:
        return _resume_prompt(context, assessment)
    questionnaires = _questionnaires()
    if questionnaires is None:
        return _unavailable(context)
    sector = context.entity("sector") if context.command is None else None
    chosen = next((questionnaire for questionnaire in questionnaires.values() if sector and questionnaire.sector == sector), None)
    if chosen is not None:
        return _start(context, chosen)
    return _sector_menu(context, questionnaires)


def _side_handler_replies(context: TurnContext) -> list[Reply] | None:
    """Return the replies to a side request (a question) during a run, or None for anything else.

    A side intent at :data:`SIDE_INTENT_MIN_CONFIDENCE` goes to its own handler. A message
    shaped like a question ("How do I reduce offcuts?") goes to the knowledge base when
    NLU read no other intent at that confidence.
    """
    if len(fold(context.text)) < MIN_QUESTION_CHARS:
        return None
    confident = context.confidence >= SIDE_INTENT_MIN_CONFIDENCE
    if context.intent in SIDE_INTENTS and confident:
        handler = registry.INTENTS.get(context.intent or "")
    elif is_question_shaped(context.text) and (context.intent in (*SIDE_INTENTS, "nlu_fallback", None) or not confident):
        handler = registry.INTENTS.get("ask_question")
    else:
        return None
    if handler is None:
        return None
    return _run_other_handler(context, handler)


def _run_other_handler(context: TurnContext, handler: registry.Handler) -> list[Reply]:
    """Run another capability's handler inside a savepoint, so its failure cannot break the run.

    The run's own changes in this turn are kept. Whatever the failed handler wrote is
    rolled back, and the owner gets the general apology before the question comes again.
    """
    try:
        with context.session.begin_nested():
            return handler(context)
    except Exception:
        logger.exception("handler for intent %s failed during assessment of user %s", context.intent, context.user.id)
        return [Reply(text=gettext("core.error", context.language), language=context.language)]


@interceptor(50)
def intercept(context: TurnContext) -> list[Reply] | None:
    """Take typed messages while a run is open (see the module docstring); None lets the turn pass."""
    user = context.user
    assessment = store.open_assessment(context.session, user.id)
    pending = user.pending_action
    if pending in (PENDING_RESUME, PENDING_CANCEL, PENDING_RESTART):
        user.pending_action = None
    if assessment is None:
        return None

    pressed = _pressed_number(context, pending)
    if pressed is not None:
        return pressed
    if pending == PENDING_RESTART and context.intent in YES_NO_INTENTS:
        if context.intent == "affirm":
            return _restart(context, assessment)
        return _show_current(context, assessment, [gettext("assess.back_to_assessment", context.language), ""])
    if pending == PENDING_CANCEL and context.intent in YES_NO_INTENTS:
        if context.intent == "affirm":
            return _cancel(context, assessment)
        return _show_current(context, assessment, [gettext("assess.back_to_assessment", context.language), ""])
    if pending == PENDING_RESUME and context.intent in YES_NO_INTENTS:
        if context.intent == "affirm":
            return _show_current(context, assessment)
        language = context.language
        return [Reply(text=gettext("assess.kept_for_later", language), language=language, buttons=menu_buttons(language))]

    if assessment.status == store.Status.PAUSED.value:
        if context.intent == "greet":
            return _greeting(context) + _resume_prompt(context, assessment)
        return None

    if utc_now() - assessment.updated_at > RESUME_PROMPT_AFTER:
        before = _side_handler_replies(context) or (_greeting(context) if context.intent == "greet" else [])
        return before + _resume_prompt(context, assessment)
    return _typed_answer(context, assessment)


def _pressed_number(context: TurnContext, pending: str | None) -> list[Reply] | None:
    """Press the button whose number was typed at a yes/no question of a run ("3" at "continue?").

    Returns None when ``pending`` is no question of a run, or the text is no number of one of its buttons.
    """
    buttons_of = {PENDING_RESUME: _resume_buttons, PENDING_CANCEL: _cancel_buttons, PENDING_RESTART: _restart_buttons}
    if pending not in buttons_of:
        return None
    number = parse_number(context.text)
    buttons = buttons_of[pending](context.language)
    if number is None or not 1 <= number <= len(buttons):
        return None
    command = buttons[number - 1][1]
    logger.info("user %s typed %d at %s: pressing %s", context.user.id, number, pending, command)
    return registry.COMMANDS[command.split(":", 1)[0]](dataclasses.replace(context, command=command))


def _greeting(context: TurnContext) -> list[Reply]:
    handler = registry.INTENTS.get("greet")
    return _run_other_handler(context, handler) if handler else []


def _typed_answer(context: TurnContext, assessment: Assessment) -> list[Reply]:
    run = _load_run(context, assessment)
    if run is None:
        return _drop_unknown_questionnaire(context, assessment)
    questionnaire, answers = run
    question = _current_question(questionnaire, assessment, answers)
    if question is None:
        return _finish(context, questionnaire, assessment, answers)

    match = match_answer(question.answers, context.text)
    if match.answer_id is not None:
        return _record(context, assessment, question, question.answer(match.answer_id))
    control = match_control(context.text)
    if control is not None:
        return _apply_control(context, assessment, control)
    yes_no = YES_NO_INTENTS.get(context.intent or "")
    if yes_no and context.confidence >= YES_NO_MIN_CONFIDENCE and question.answer(yes_no) is not None:
        return _record(context, assessment, question, question.answer(yes_no))

    back_prefix = [gettext("assess.back_to_assessment", context.language), ""]
    if not match.ambiguous:
        side = _side_handler_replies(context)
        if side is not None:
            return [*side, _question_reply(context, questionnaire, assessment, answers, question, back_prefix)]
        if context.intent == "start_assessment" and context.confidence >= SIDE_INTENT_MIN_CONFIDENCE:
            return [_question_reply(context, questionnaire, assessment, answers, question, back_prefix)]
        if context.intent == "greet":
            return [_question_reply(context, questionnaire, assessment, answers, question, back_prefix)]
    return _unclear(context, questionnaire, assessment, answers, question, ambiguous=match.ambiguous)


def _unclear(
    context: TurnContext,
    questionnaire: Questionnaire,
    assessment: Assessment,
    answers: Answers,
    question: Question,
    *,
    ambiguous: bool,
) -> list[Reply]:
    """Ask again after an unclear message; after the limit, pause and handle the message normally."""
    language = context.language
    assessment.failed_attempts = (assessment.failed_attempts or 0) + 1
    logger.info("assessment %s: unclear answer %d to %s", assessment.id, assessment.failed_attempts, question.id)
    if assessment.failed_attempts == 1:
        message_id = "assess.ambiguous" if ambiguous else "assess.not_understood"
        explanation = gettext(message_id, language, count=len(question.answers))
        return [_question_reply(context, questionnaire, assessment, answers, question, [explanation, ""])]
    if assessment.failed_attempts <= MAX_FAILED_ATTEMPTS:
        explanation = gettext("assess.not_understood_again", language)
        return [_question_reply(context, questionnaire, assessment, answers, question, [explanation, ""])]

    # Third unclear message: the owner is doing something else, so never loop here.
    assessment.status = store.Status.PAUSED.value
    assessment.failed_attempts = 0
    handler = registry.INTENTS.get(context.intent or "") if context.intent not in ("start_assessment", None) else None
    handler = handler or registry.INTENTS.get("ask_question")
    replies = _run_other_handler(context, handler) if handler is not None else []
    note = Reply(
        text=gettext("assess.paused_for_message", language),
        language=language,
        buttons=[(gettext("assess.button.continue", language), "assess:resume"), *menu_buttons(language)],
    )
    return [*replies, note]


@on_cancel
def cancel_hook(context: TurnContext) -> list[Reply] | None:
    """Handle the cancel intent for an open run; words that mean pause, back or skip do that instead.

    A paused run counts only when it was paused within :data:`RESUME_PROMPT_AFTER`,
    because the owner then just paused it or just saw "continue where you left off?".
    A "cancel" days later is about something else.
    """
    assessment = store.open_assessment(context.session, context.user.id)
    if assessment is None:
        return None
    recently_paused = utc_now() - assessment.updated_at <= RESUME_PROMPT_AFTER
    if assessment.status != store.Status.IN_PROGRESS.value and not recently_paused:
        return None
    control = match_control(context.text) or Control.CANCEL
    return _apply_control(context, assessment, control)
