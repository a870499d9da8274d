"""Events catalogue, subscriptions and reminders in chat (registered handlers).

Button commands (all under the ``events`` prefix, ``any`` for "no filter")::

    events:list[:<sector>:<country>:<page>[:<kind>]]   upcoming events, filtered (kind: fairs, workshop, training)
    events:sectors:<mode>:<sector>:<country>  choose a sector (mode list or sub)
    events:countries:<mode>:<sector>:<country>
    events:cancel:<sector>:<country>          leave a sector or country choice unchanged
    events:details:<id>  events:ics:<id>  events:remind:<id>  events:unremind:<id>
    events:ask:<sector>:<country>             confirm a subscription
    events:sub:<sector>:<country>             subscribe
    events:subs                                list subscriptions and reminders
    events:unsub:<subscription id>
    events:stop:<id>                           from a reminder: stop everything about this event
    events:stopall
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from actions.assessment.store import Status as AssessmentStatus
from actions.context import TurnContext
from actions.handlers.event_filters import KIND_FILTERS, SEVERAL, named_country, named_kind, named_sector
from actions.handlers.general import menu_buttons, unknown_button
from actions.registry import on_command, on_intent
from actions.reply import Reply
from bot.events.audience import subscription_covers
from bot.events.catalogue import localized, upcoming_events
from bot.events.ical import write_event_ics
from bot.events.ids import parse_database_integer
from bot.events.presentation import (
    country_label,
    event_card,
    event_details,
    filter_label,
    offsets_text,
    relative_text,
    sector_label,
    when_text,
)
from bot.events.records import COUNTRY_TIMEZONES, SECTORS, STATUS_CANCELLED
from bot.i18n import gettext
from bot.scheduler import ledger
from bot.scheduler.planning import plan_event
from bot.scheduler.policy import ReminderPolicy
from bot.settings import get_settings
from bot.storage.models import Assessment, Event, EventReminder, ReminderDelivery, Subscription
from bot.storage.types import utc_now

logger = logging.getLogger(__name__)

#: Events shown per page; each is its own message with three buttons.
PAGE_SIZE = 3
#: Placeholder for "no sector" or "no country" inside button commands.
ANY = "any"
LIST_MODE = "list"
SUBSCRIBE_MODE = "sub"


# ---------------------------------------------------------------------- helpers


def _policy() -> ReminderPolicy:
    return ReminderPolicy.from_settings(get_settings())


def _filter_value(raw: str | None, allowed: tuple[str, ...] | list[str]) -> str | None:
    """Return a sector or country from a command field; ANY, empty or unknown means None."""
    if raw is None or raw == ANY or raw not in allowed:
        return None
    return raw


def _code(value: str | None) -> str:
    return value or ANY


def _event_buttons(event: Event, language: str, *, details: bool = True, reminded: bool = False) -> list[tuple[str, str]]:
    """Return an event's buttons; ``reminded`` offers to cancel the owner's reminder instead of a new one."""
    if reminded:
        remind = (gettext("events.button.unremind", language), f"events:unremind:{event.id}")
    else:
        remind = (gettext("events.button.remind", language), f"events:remind:{event.id}")
    buttons = [remind, (gettext("events.button.ics", language), f"events:ics:{event.id}")]
    if details:
        buttons.append((gettext("events.button.details", language), f"events:details:{event.id}"))
    return buttons


def _reminded_events(context: TurnContext, events: list[Event]) -> set[int]:
    """Return the ids among ``events`` for which the owner has asked for a reminder."""
    if not events:
        return set()
    query = select(EventReminder.event_id).where(
        EventReminder.user_id == context.user.id, EventReminder.event_id.in_([event.id for event in events])
    )
    return set(context.session.scalars(query))


def _remember_filter(context: TurnContext, sector: str | None, country: str | None) -> None:
    """Keep a chosen sector or country on the user when they had none, for later lists."""
    if sector and not context.user.sector:
        context.user.sector = sector
    if country and not context.user.country:
        context.user.country = country


def _user_country(context: TurnContext) -> str | None:
    return _filter_value(context.user.country, list(COUNTRY_TIMEZONES))


def _user_sector(context: TurnContext) -> str | None:
    """Return the sector of the owner's latest completed self-assessment, else the sector stored on the user.

    ``users.sector`` keeps the first sector the owner chose, even from a run they
    cancelled, so a completed run describes the business better.
    """
    assessed = context.session.scalars(
        select(Assessment.sector)
        .where(
            Assessment.user_id == context.user.id,
            Assessment.status == AssessmentStatus.COMPLETED.value,
            Assessment.sector.in_(SECTORS),
        )
        .order_by(Assessment.completed_at.desc(), Assessment.id.desc())
        .limit(1)
    ).first()
    return assessed or _filter_value(context.user.sector, SECTORS)


def _requested_filter(context: TurnContext) -> tuple[str | None, str | None]:
    """Return (sector, country) for a typed events request; None means any.

    A sector or country named in the message comes first, then NLU's sector entity,
    then the owner's defaults. A message that names several countries (or sectors)
    lists all of them. A button press has no text of its own to read, so it gets
    the defaults.
    """
    sector, country = _user_sector(context), _user_country(context)
    if context.command is not None:
        return sector, country
    named = named_sector(context.text)
    entity = _filter_value(context.entity("sector"), SECTORS)
    if named == SEVERAL:
        sector = None
    elif named is not None:
        sector = named
    elif entity is not None:
        sector = entity
    named = named_country(context.text)
    if named == SEVERAL:
        country = None
    elif named is not None:
        country = named
    return sector, country


def _requested_kind(context: TurnContext) -> str | None:
    """Return the kind filter named in a typed events request ("trade fairs"), or None for any kind."""
    if context.command is not None:
        return None
    named = named_kind(context.text)
    return None if named == SEVERAL else named


def _kind_label(kind: str, language: str) -> str:
    return " / ".join(gettext(f"events.kind.{event_kind}", language) for event_kind in KIND_FILTERS[kind])


def _find_subscription(session: Session, user_id: int, sector: str | None, country: str | None) -> Subscription | None:
    # NULL never equals NULL in SQL, so "any" needs IS NULL rather than "=".
    query = select(Subscription).where(Subscription.user_id == user_id)
    query = query.where(Subscription.sector.is_(None) if sector is None else Subscription.sector == sector)
    query = query.where(Subscription.country.is_(None) if country is None else Subscription.country == country)
    return session.scalars(query).first()


# ---------------------------------------------------------------------- list


def list_page(context: TurnContext, sector: str | None, country: str | None, page: int, kind: str | None = None) -> list[Reply]:
    """Return one page of upcoming events for the filter, with filter and paging buttons.

    ``kind`` (a key of ``KIND_FILTERS``) narrows a typed request such as "trade fairs". The
    next-page button keeps it. The "all kinds", sector and country buttons list every kind again.
    """
    language = context.language
    now = utc_now()
    page = max(page, 0)
    kinds = KIND_FILTERS.get(kind) if kind else None
    events, total = upcoming_events(
        context.session, now, sector=sector, country=country, kinds=kinds, limit=PAGE_SIZE, offset=page * PAGE_SIZE
    )
    label = filter_label(sector, country, language)
    if kinds:
        label = f"{label} · {_kind_label(kind or '', language)}"
    kind_suffix = f":{kind}" if kinds else ""
    navigation = [
        (
            gettext("events.button.sector", language, sector=sector_label(sector, language)),
            f"events:sectors:{LIST_MODE}:{_code(sector)}:{_code(country)}",
        ),
        (
            gettext("events.button.country", language, country=country_label(country, language)),
            f"events:countries:{LIST_MODE}:{_code(sector)}:{_code(country)}",
        ),
    ]
    if kinds:
        navigation.insert(0, (gettext("events.button.all_kinds", language), f"events:list:{_code(sector)}:{_code(country)}:0"))
    if (page + 1) * PAGE_SIZE < total:
        navigation.insert(
            0,
            (gettext("events.button.next", language), f"events:list:{_code(sector)}:{_code(country)}:{page + 1}{kind_suffix}"),
        )
    navigation.append((gettext("events.button.subscribe", language), f"events:ask:{_code(sector)}:{_code(country)}"))
    navigation.append((gettext("events.button.subscriptions", language), "events:subs"))

    if not events:
        text = gettext("events.list.empty", language, filter=label)
        return [Reply(text=text, language=language, buttons=navigation)]
    first = page * PAGE_SIZE + 1
    header = gettext("events.list.header", language, filter=label, first=first, last=first + len(events) - 1, total=total)
    replies = [Reply(text=header, language=language)]
    reminded = _reminded_events(context, events)
    replies.extend(
        Reply(
            text=event_card(event, language),
            language=language,
            buttons=_event_buttons(event, language, reminded=event.id in reminded),
        )
        for event in events
    )
    replies.append(Reply(text=gettext("events.list.more_prompt", language), language=language, buttons=navigation))
    return replies


@on_intent("list_events")
def list_events(context: TurnContext) -> list[Reply]:
    """Show upcoming events for the sector and country named in the message, else the owner's."""
    sector, country = _requested_filter(context)
    return list_page(context, sector, country, 0, _requested_kind(context))


def _cancel_choice_button(language: str, sector: str | None, country: str | None) -> tuple[str, str]:
    """Return the button that closes a sector or country choice and keeps the current filter."""
    return (gettext("events.button.cancel", language), f"events:cancel:{_code(sector)}:{_code(country)}")


def _choose_sector(context: TurnContext, mode: str, sector: str | None, country: str | None) -> list[Reply]:
    language = context.language
    target = "list" if mode == LIST_MODE else "ask"
    suffix = ":0" if mode == LIST_MODE else ""
    buttons = [(sector_label(choice, language), f"events:{target}:{choice}:{_code(country)}{suffix}") for choice in SECTORS]
    buttons.append((sector_label(None, language), f"events:{target}:{ANY}:{_code(country)}{suffix}"))
    buttons.append(_cancel_choice_button(language, sector, country))
    return [Reply(text=gettext("events.choose_sector", language), language=language, buttons=buttons)]


def _choose_country(context: TurnContext, mode: str, sector: str | None, country: str | None) -> list[Reply]:
    language = context.language
    target = "list" if mode == LIST_MODE else "ask"
    suffix = ":0" if mode == LIST_MODE else ""
    buttons = [
        (country_label(choice, language), f"events:{target}:{_code(sector)}:{choice}{suffix}") for choice in COUNTRY_TIMEZONES
    ]
    buttons.append((country_label(None, language), f"events:{target}:{_code(sector)}:{ANY}{suffix}"))
    buttons.append(_cancel_choice_button(language, sector, country))
    return [Reply(text=gettext("events.choose_country", language), language=language, buttons=buttons)]


def cancel_choice(context: TurnContext, sector: str | None, country: str | None) -> list[Reply]:
    """Close a sector or country choice: nothing is stored, and the list keeps the earlier filter."""
    language = context.language
    buttons = [(gettext("events.button.list", language), f"events:list:{_code(sector)}:{_code(country)}:0")]
    # The menu's own events entry would duplicate the list button above.
    buttons.extend(button for button in menu_buttons(language) if button[1] != "events:list")
    return [Reply(text=gettext("events.choice_cancelled", language), language=language, buttons=buttons)]


# ---------------------------------------------------------------------- one event


def _load_event(context: TurnContext, field: str) -> Event | None:
    event_id = parse_database_integer(field)
    return context.session.get(Event, event_id) if event_id is not None else None


def _not_found(context: TurnContext) -> list[Reply]:
    language = context.language
    notice = Reply(text=gettext("events.not_found", language), language=language)
    return [notice, *list_page(context, _user_sector(context), _user_country(context), 0)]


def show_details(context: TurnContext, event: Event) -> list[Reply]:
    """Return the full description of ``event`` with remind and calendar buttons."""
    language = context.language
    reminded = event.id in _reminded_events(context, [event])
    buttons = _event_buttons(event, language, details=False, reminded=reminded) if event.status != STATUS_CANCELLED else []
    return [Reply(text=event_details(event, language), language=language, buttons=buttons)]


def send_calendar_file(context: TurnContext, event: Event) -> list[Reply]:
    """Return a reply carrying the event's .ics file (an absolute path under var/ics)."""
    language = context.language
    path = write_event_ics(event, language, get_settings().var_dir, utc_now())
    title = localized(event.titles, language)
    logger.info("calendar file for event %s sent to user %s", event.id, context.user.id)
    return [Reply(text=gettext("events.ics.ready", language, title=title), language=language, document=str(path))]


def remind_me(context: TurnContext, event: Event) -> list[Reply]:
    """Record a reminder request and plan its messages at once."""
    language = context.language
    title = localized(event.titles, language)
    now = utc_now()
    if event.status == STATUS_CANCELLED or event.starts_at <= now:
        return [Reply(text=gettext("events.event_over", language, title=title), language=language)]
    session = context.session
    existing = session.scalars(
        select(EventReminder).where(EventReminder.user_id == context.user.id, EventReminder.event_id == event.id)
    ).first()
    buttons = [
        (gettext("events.button.ics", language), f"events:ics:{event.id}"),
        (gettext("events.button.unremind", language), f"events:unremind:{event.id}"),
    ]
    if existing is not None:
        return [Reply(text=gettext("events.remind.already", language, title=title), language=language, buttons=buttons)]
    try:
        with session.begin_nested():
            session.add(EventReminder(user_id=context.user.id, event_id=event.id, created_at=now))
    except IntegrityError:
        # A second tap raced this one and stored the request first.
        return [Reply(text=gettext("events.remind.already", language, title=title), language=language, buttons=buttons)]
    policy = _policy()
    offsets = [int(value) for value in (context.user.reminder_offsets or policy.offsets_seconds) if int(value) > 0]
    upcoming = [offset for offset in offsets if event.starts_at - dt.timedelta(seconds=offset) >= now]
    planned = plan_event(session, event, now, policy, user_id=context.user.id)
    logger.info("user %s asked for reminders of event %s (%d planned)", context.user.id, event.id, planned)
    if not upcoming:
        text = gettext(
            "events.remind.no_time_left", language, title=title, relative=relative_text(event.starts_at, now, language)
        )
        return [Reply(text=text, language=language, buttons=buttons)]
    text = gettext("events.remind.done", language, title=title, offsets=offsets_text(upcoming, language))
    return [Reply(text=text, language=language, buttons=buttons)]


def _obsolete_pending(session: Session, user_id: int, event_id: int | None = None) -> int:
    condition = (ReminderDelivery.user_id == user_id) & (ReminderDelivery.status == ledger.PENDING)
    if event_id is not None:
        condition = condition & (ReminderDelivery.event_id == event_id)
    result = session.execute(update(ReminderDelivery).where(condition).values(status=ledger.OBSOLETE, error="owner unsubscribed"))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def stop_reminders(context: TurnContext, event: Event) -> list[Reply]:
    """Forget the owner's reminder request for ``event`` (subscriptions stay)."""
    language = context.language
    context.session.execute(
        delete(EventReminder).where(EventReminder.user_id == context.user.id, EventReminder.event_id == event.id)
    )
    text = gettext("events.unremind.done", language, title=localized(event.titles, language))
    return [Reply(text=text, language=language, buttons=[(gettext("events.button.subscriptions", language), "events:subs")])]


def stop_event(context: TurnContext, event: Event) -> list[Reply]:
    """Stop every message about ``event``: its reminder request and the subscriptions that cover it."""
    language = context.language
    session = context.session
    user_id = context.user.id
    session.execute(delete(EventReminder).where(EventReminder.user_id == user_id, EventReminder.event_id == event.id))
    covering = [
        subscription
        for subscription in session.scalars(select(Subscription).where(Subscription.user_id == user_id))
        if subscription_covers(subscription.sector, subscription.country, event)
    ]
    labels = [filter_label(subscription.sector, subscription.country, language) for subscription in covering]
    for subscription in covering:
        session.delete(subscription)
    obsolete = _obsolete_pending(session, user_id, event.id)
    logger.info(
        "user %s stopped event %s: %d subscriptions removed, %d queued messages dropped",
        user_id,
        event.id,
        len(covering),
        obsolete,
    )
    lines = [gettext("events.stop.done", language, title=localized(event.titles, language))]
    if labels:
        lines.append(gettext("events.stop.subscriptions", language, filters="; ".join(labels)))
    buttons = [
        (gettext("events.button.subscriptions", language), "events:subs"),
        (gettext("events.button.list", language), "events:list"),
    ]
    return [Reply(text="\n".join(lines), language=language, buttons=buttons)]


# ---------------------------------------------------------------------- subscriptions


def ask_subscription(context: TurnContext, sector: str | None, country: str | None) -> list[Reply]:
    """Ask the owner to confirm a subscription, offering other sectors and countries."""
    language = context.language
    label = filter_label(sector, country, language)
    buttons = [
        (gettext("events.button.subscribe_this", language), f"events:sub:{_code(sector)}:{_code(country)}"),
        (gettext("events.button.choose_sector", language), f"events:sectors:{SUBSCRIBE_MODE}:{_code(sector)}:{_code(country)}"),
        (
            gettext("events.button.choose_country", language),
            f"events:countries:{SUBSCRIBE_MODE}:{_code(sector)}:{_code(country)}",
        ),
    ]
    return [Reply(text=gettext("events.subscribe.confirm", language, filter=label), language=language, buttons=buttons)]


def subscribe(context: TurnContext, sector: str | None, country: str | None) -> list[Reply]:
    """Subscribe the owner to new events of (sector, country); None means any."""
    language = context.language
    label = filter_label(sector, country, language)
    buttons = [
        (gettext("events.button.list", language), f"events:list:{_code(sector)}:{_code(country)}:0"),
        (gettext("events.button.subscriptions", language), "events:subs"),
    ]
    if _find_subscription(context.session, context.user.id, sector, country) is not None:
        return [Reply(text=gettext("events.subscribe.already", language, filter=label), language=language, buttons=buttons)]
    context.session.add(Subscription(user_id=context.user.id, sector=sector, country=country, created_at=utc_now()))
    _remember_filter(context, sector, country)
    logger.info("user %s subscribed to sector %s, country %s", context.user.id, sector or ANY, country or ANY)
    return [Reply(text=gettext("events.subscribe.done", language, filter=label), language=language, buttons=buttons)]


@on_intent("subscribe_events")
def subscribe_intent(context: TurnContext) -> list[Reply]:
    """Offer a subscription to the sector and country named in the message, else the owner's."""
    sector, country = _requested_filter(context)
    return ask_subscription(context, sector, country)


def show_subscriptions(context: TurnContext) -> list[Reply]:
    """List subscriptions and reminder requests, each with a button that stops it."""
    language = context.language
    session = context.session
    user_id = context.user.id
    subscriptions = list(session.scalars(select(Subscription).where(Subscription.user_id == user_id).order_by(Subscription.id)))
    reminders = list(
        session.execute(
            select(Event)
            .join(EventReminder, EventReminder.event_id == Event.id)
            .where(EventReminder.user_id == user_id, Event.starts_at > utc_now())
            .order_by(Event.starts_at)
        ).scalars()
    )
    if not subscriptions and not reminders:
        buttons = [
            (gettext("events.button.list", language), "events:list"),
            (
                gettext("events.button.subscribe", language),
                f"events:ask:{_code(_user_sector(context))}:{_code(_user_country(context))}",
            ),
        ]
        return [Reply(text=gettext("events.subscriptions.none", language), language=language, buttons=buttons)]
    lines = [gettext("events.subscriptions.header", language)]
    buttons = []
    for subscription in subscriptions:
        label = filter_label(subscription.sector, subscription.country, language)
        lines.append(f"• {label}")
        buttons.append((gettext("events.button.unsubscribe_one", language, filter=label), f"events:unsub:{subscription.id}"))
    for event in reminders:
        title = localized(event.titles, language)
        lines.append(f"• 🔔 {title} ({when_text(event, language)})")
        buttons.append((gettext("events.button.unremind_one", language, title=title), f"events:unremind:{event.id}"))
    buttons.append((gettext("events.button.stop_all", language), "events:stopall"))
    return [Reply(text="\n".join(lines), language=language, buttons=buttons)]


@on_intent("unsubscribe_events")
def unsubscribe_intent(context: TurnContext) -> list[Reply]:
    """Show what the owner follows, with one-tap buttons to stop each."""
    return show_subscriptions(context)


def unsubscribe(context: TurnContext, field: str) -> list[Reply]:
    """Delete one of the owner's subscriptions (queued messages it caused are not sent)."""
    language = context.language
    subscription_id = parse_database_integer(field)
    subscription = context.session.get(Subscription, subscription_id) if subscription_id is not None else None
    if subscription is None or subscription.user_id != context.user.id:
        return [Reply(text=gettext("events.unsubscribe.nothing", language), language=language), *show_subscriptions(context)]
    label = filter_label(subscription.sector, subscription.country, language)
    context.session.delete(subscription)
    logger.info("user %s removed subscription %s", context.user.id, field)
    buttons = [(gettext("events.button.subscriptions", language), "events:subs")]
    return [Reply(text=gettext("events.unsubscribe.done", language, filter=label), language=language, buttons=buttons)]


def stop_all(context: TurnContext) -> list[Reply]:
    """Delete every subscription and reminder request of the owner and drop queued messages."""
    session = context.session
    user_id = context.user.id
    session.execute(delete(Subscription).where(Subscription.user_id == user_id))
    session.execute(delete(EventReminder).where(EventReminder.user_id == user_id))
    dropped = _obsolete_pending(session, user_id)
    logger.info("user %s stopped all event messages (%d queued dropped)", user_id, dropped)
    language = context.language
    return [
        Reply(
            text=gettext("events.stop_all.done", language),
            language=language,
            buttons=[(gettext("events.button.list", language), "events:list")],
        )
    ]


# ---------------------------------------------------------------------- button dispatch


def _event_command(context: TurnContext, action: str, field: str) -> list[Reply]:
    event = _load_event(context, field)
    if event is None:
        return _not_found(context)
    if action == "details":
        return show_details(context, event)
    if action == "ics":
        return send_calendar_file(context, event)
    if action == "remind":
        return remind_me(context, event)
    if action == "unremind":
        return stop_reminders(context, event)
    return stop_event(context, event)


@on_command("events")
def events_command(context: TurnContext) -> list[Reply]:
    """Handle ``events:*`` buttons (see the module docstring)."""
    parts = (context.command or "").split(":")
    action = parts[1] if len(parts) > 1 else "list"
    fields = parts[2:]
    countries = list(COUNTRY_TIMEZONES)

    if action == "list" and not fields:
        return list_events(context)
    listing = action == "list" and (len(fields) == 3 or (len(fields) == 4 and fields[3] in KIND_FILTERS))
    page = parse_database_integer(fields[2]) if listing else None
    if page is not None:
        sector, country = _filter_value(fields[0], SECTORS), _filter_value(fields[1], countries)
        _remember_filter(context, sector, country)
        return list_page(context, sector, country, page, fields[3] if len(fields) == 4 else None)
    if action in ("sectors", "countries") and len(fields) == 3 and fields[0] in (LIST_MODE, SUBSCRIBE_MODE):
        sector, country = _filter_value(fields[1], SECTORS), _filter_value(fields[2], countries)
        if action == "sectors":
            return _choose_sector(context, fields[0], sector, country)
        return _choose_country(context, fields[0], sector, country)
    if action == "cancel" and len(fields) == 2:
        return cancel_choice(context, _filter_value(fields[0], SECTORS), _filter_value(fields[1], countries))
    if action in ("details", "ics", "remind", "unremind", "stop") and len(fields) == 1:
        return _event_command(context, action, fields[0])
    if action in ("ask", "sub") and len(fields) == 2:
        sector, country = _filter_value(fields[0], SECTORS), _filter_value(fields[1], countries)
        if action == "ask":
            return ask_subscription(context, sector, country)
        return subscribe(context, sector, country)
    if action == "subs" and not fields:
        return show_subscriptions(context)
    if action == "unsub" and len(fields) == 1:
        return unsubscribe(context, fields[0])
    if action == "stopall" and not fields:
        return stop_all(context)
    logger.info("unknown events button %r from user %s", context.command, context.user.id)
    return unknown_button(context)
