"""Loading and creating user rows, and choosing the language of a reply."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.i18n import normalize_language
from bot.settings import SUPPORTED_LANGUAGES
from bot.storage.models import User
from bot.storage.types import utc_now
from nlu.text import detect_language, normalize

logger = logging.getLogger(__name__)

#: Latin-script messages shorter than this many words do not switch the language,
#: because "ok" or "FSC" says nothing about whether the user writes English.
MIN_WORDS_TO_SWITCH_LATIN = 3
#: Only words of this many letters count, so noise such as "a b c" switches nothing.
MIN_LETTERS_PER_WORD = 2


def split_sender_id(sender_id: str) -> tuple[str, str]:
    """Split ``<channel>:<external id>``; a bare id is treated as the REST channel."""
    channel, separator, external_id = sender_id.partition(":")
    if not separator:
        return "rest", sender_id
    return channel, external_id


def get_or_create_user(session: Session, channel: str, external_id: str) -> User:
    """Return the user row for (channel, external id), creating it when new."""
    query = select(User).where(User.channel == channel, User.external_id == external_id)
    user = session.scalars(query).first()
    if user is not None:
        return user
    user = User(channel=channel, external_id=external_id)
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError:
        # Another turn of the same user created the row first.
        user = session.scalars(query).one()
    else:
        logger.info("new user %s on %s", user.id, channel)
    return user


def choose_language(text: str, user: User, ui_language: str | None) -> str:
    """Pick the reply language and remember it on ``user``.

    Khmer and Lao script and Vietnamese diacritics switch the language at once. Other
    Latin text switches it only when long enough, so a Vietnamese owner typing "ok"
    keeps Vietnamese. An explicit choice (``/language``) is kept until a message in
    another script arrives.
    """
    detected = detect_language(text)
    normalized = normalize(text)
    strong = detected in ("km", "lo") or (detected == "vi" and normalized != _ascii_only(normalized))
    words = [word for word in normalized.split() if len(word) >= MIN_LETTERS_PER_WORD and word.isalpha()]
    long_enough = len(words) >= MIN_WORDS_TO_SWITCH_LATIN

    language = user.language
    if detected and (strong or (long_enough and not user.language_confirmed) or language is None):
        language = detected
    if language is None:
        language = normalize_language(ui_language)
    if language not in SUPPORTED_LANGUAGES:
        language = normalize_language(language)

    if language != user.language:
        user.language = language
        if strong:
            user.language_confirmed = False
    user.last_seen_at = utc_now()
    return language


def _ascii_only(text: str) -> str:
    return text.encode("ascii", "ignore").decode()
