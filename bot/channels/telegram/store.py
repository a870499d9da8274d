"""Database reads and writes of the Telegram channel (synchronous; call them in a thread).

The action server creates and owns ``users`` rows; the channel reads the language and
the handoff flag, marks users who blocked the bot, and links staff-chat messages to
users for human handoff.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select

from bot.storage.db import session_scope
from bot.storage.models import HandoffMessage, QuestionLog, User
from bot.storage.types import utc_now

logger = logging.getLogger(__name__)

CHANNEL = "telegram"


@dataclasses.dataclass(frozen=True)
class UserState:
    """User fields the channel reads before calling Rasa."""

    id: int
    external_id: str
    language: str | None
    language_confirmed: bool
    handoff_active: bool
    active: bool


def _state(user: User) -> UserState:
    return UserState(
        id=user.id,
        external_id=user.external_id,
        language=user.language,
        language_confirmed=bool(user.language_confirmed),
        handoff_active=bool(user.handoff_active),
        active=bool(user.active),
    )


def load_user(engine: Engine, external_id: str) -> UserState | None:
    """Return the Telegram user's state, or None before their first turn."""
    with session_scope(engine) as session:
        user = session.scalars(select(User).where(User.channel == CHANNEL, User.external_id == external_id)).first()
        return _state(user) if user is not None else None


def user_wrote(engine: Engine, external_id: str) -> UserState | None:
    """Return the user's state, marking them active again when they had blocked the bot."""
    with session_scope(engine) as session:
        user = session.scalars(select(User).where(User.channel == CHANNEL, User.external_id == external_id)).first()
        if user is None:
            return None
        if not user.active:
            user.active = True
            user.blocked_at = None
            logger.info("user %s wrote again after blocking the bot; marked active", user.id)
        return _state(user)


def mark_blocked(engine: Engine, external_id: str) -> bool:
    """Mark the user inactive because they blocked the bot; return False when unknown."""
    with session_scope(engine) as session:
        user = session.scalars(select(User).where(User.channel == CHANNEL, User.external_id == external_id)).first()
        if user is None:
            return False
        if user.active or user.blocked_at is None:
            user.active = False
            user.blocked_at = utc_now()
            user.handoff_active = False
            logger.info("user %s blocked the bot; marked inactive", user.id)
        return True


def end_handoff(engine: Engine, external_id: str) -> bool:
    """Clear the user's handoff flag; return True when it was set."""
    with session_scope(engine) as session:
        user = session.scalars(select(User).where(User.channel == CHANNEL, User.external_id == external_id)).first()
        if user is None or not user.handoff_active:
            return False
        user.handoff_active = False
        return True


def record_handoff_messages(engine: Engine, user_id: int, staff_chat_id: int, staff_message_ids: Iterable[int]) -> None:
    """Link messages in the staff chat to a user, so a staff reply to them reaches that user."""
    message_ids = set(staff_message_ids)
    with session_scope(engine) as session:
        known = session.scalars(
            select(HandoffMessage.staff_message_id).where(
                HandoffMessage.staff_chat_id == staff_chat_id, HandoffMessage.staff_message_id.in_(message_ids)
            )
        ).all()
        for message_id in sorted(message_ids - set(known)):
            session.add(HandoffMessage(staff_chat_id=staff_chat_id, staff_message_id=message_id, user_id=user_id))


def user_for_staff_message(engine: Engine, staff_chat_id: int, staff_message_id: int) -> UserState | None:
    """Return the user a staff-chat message was forwarded for, or None."""
    with session_scope(engine) as session:
        query = (
            select(User)
            .join(HandoffMessage, HandoffMessage.user_id == User.id)
            .where(HandoffMessage.staff_chat_id == staff_chat_id, HandoffMessage.staff_message_id == staff_message_id)
        )
        user = session.scalars(query).first()
        return _state(user) if user is not None else None


@dataclasses.dataclass(frozen=True)
class Stats:
    """Counts shown to admins by ``/stats``."""

    users_by_channel_language: list[tuple[str, str, int]]
    active_users: int
    blocked_users: int
    questions_today: int
    declined_today: int
    declined_total: int
    active_handoffs: int


def collect_stats(engine: Engine, timezone: str) -> Stats:
    """Count users, today's questions (midnight in ``timezone``) and open handoffs."""
    now_local = dt.datetime.now(ZoneInfo(timezone))
    start_of_day = now_local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)
    with session_scope(engine) as session:
        grouped = session.execute(
            select(User.channel, func.coalesce(User.language, "?"), func.count())
            .group_by(User.channel, User.language)
            .order_by(User.channel)
        ).all()
        active = session.scalar(select(func.count()).select_from(User).where(User.active.is_(True))) or 0
        blocked = session.scalar(select(func.count()).select_from(User).where(User.active.is_(False))) or 0
        today = session.scalar(select(func.count()).select_from(QuestionLog).where(QuestionLog.created_at >= start_of_day)) or 0
        declined_today = (
            session.scalar(
                select(func.count())
                .select_from(QuestionLog)
                .where(QuestionLog.created_at >= start_of_day, QuestionLog.declined.is_(True))
            )
            or 0
        )
        declined_total = session.scalar(select(func.count()).select_from(QuestionLog).where(QuestionLog.declined.is_(True))) or 0
        handoffs = session.scalar(select(func.count()).select_from(User).where(User.handoff_active.is_(True))) or 0
    return Stats(
        users_by_channel_language=[(str(channel), str(language), int(count)) for channel, language, count in grouped],
        active_users=int(active),
        blocked_users=int(blocked),
        questions_today=int(today),
        declined_today=int(declined_today),
        declined_total=int(declined_total),
        active_handoffs=int(handoffs),
    )
