"""Loading and creating user rows, and choosing the language of a reply."""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.i18n import normalize_language
from bot.settings import SUPPORTED_LANGUAGES
from bot.storage.models import User
from bot.storage.types import utc_now
from nlu.text import KHMER_RANGE, LAO_RANGE, detect_language, fold_diacritics, normalize, segment

logger = logging.getLogger(__name__)

#: Latin-script messages shorter than this many words do not switch the language,
#: because "ok" or "FSC" says nothing about whether the user writes English.
MIN_WORDS_TO_SWITCH_LATIN = 3
#: Only words of this many letters count, so noise such as "a b c" switches nothing.
MIN_LETTERS_PER_WORD = 2
#: A message is written in one language when that language has at least this share of
#: its words. Below it the message is mixed ("I want to ask about ການຫຸ້ມຫໍ່ packaging và
#: nhựa" is 60% English), and a mixed message never changes a language the user has.
CLEAR_LANGUAGE_SHARE = 0.8
#: Characters of a message read to tell its language; segmenting Khmer is the slow part.
LANGUAGE_SAMPLE_CHARS = 1000


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


@dataclasses.dataclass(frozen=True)
class MessageLanguage:
    """The language most of a message is written in, and how clearly."""

    language: str | None
    """Language with the most words; None for a message without words."""
    share: float
    """Share of the message's words that are in ``language`` (0 to 1)."""
    marked: bool
    """True when script or diacritics identify ``language``: Khmer or Lao script, or
    Vietnamese words with diacritics. English and unmarked Vietnamese are guessed from
    word lists."""
    latin_words: int
    """Latin-script words of at least :data:`MIN_LETTERS_PER_WORD` letters."""

    @property
    def clear(self) -> bool:
        """True when the message is (nearly) all in one language."""
        return self.language is not None and self.share >= CLEAR_LANGUAGE_SHARE

    @property
    def strong(self) -> bool:
        """True when the message is clearly in one language and its script or marks prove it."""
        return self.clear and self.marked


def _in_range(char: str, bounds: tuple[str, str]) -> bool:
    return bounds[0] <= char <= bounds[1]


def message_language(text: str) -> MessageLanguage:
    """Measure which language the words of ``text`` belong to.

    Khmer and Lao runs are split into words by :func:`nlu.text.segment`. A Latin word
    with Vietnamese marks is Vietnamese. The unmarked Latin words count together for the
    one language :func:`nlu.text.detect_language` gives them (Vietnamese when common
    unmarked Vietnamese words dominate, else English), because one unmarked word ("nam",
    "the") could be either. Acronyms in capitals ("FSC", "GOTS") and numbers count for
    no language. Only the first :data:`LANGUAGE_SAMPLE_CHARS` characters are read.
    """
    counts: Counter[str] = Counter()
    marked = 0
    unmarked: list[str] = []
    for word in segment(normalize(text)[:LANGUAGE_SAMPLE_CHARS]):
        if any(_in_range(char, KHMER_RANGE) for char in word):
            counts["km"] += 1
        elif any(_in_range(char, LAO_RANGE) for char in word):
            counts["lo"] += 1
        elif not any(char.isalpha() for char in word) or (len(word) > 1 and word.isupper()):
            continue
        elif fold_diacritics(word) != word:
            marked += 1
        else:
            unmarked.append(word)
    counts["vi"] += marked
    unmarked_language = detect_language(" ".join(unmarked))
    if unmarked_language is not None:
        counts[unmarked_language] += len(unmarked)

    latin_words = marked + sum(1 for word in unmarked if len(word) >= MIN_LETTERS_PER_WORD)
    total = sum(counts.values())
    if total == 0:
        return MessageLanguage(language=None, share=0.0, marked=False, latin_words=latin_words)
    language, count = counts.most_common(1)[0]
    proven = language in ("km", "lo") or (language == "vi" and marked > 0)
    return MessageLanguage(language=language, share=count / total, marked=proven, latin_words=latin_words)


@dataclasses.dataclass(frozen=True)
class LanguageChoice:
    """The reply language of a turn, and what to store on the user once the turn is handled."""

    language: str
    previous: str | None
    #: The message was clearly in the new script, so the new language counts as not chosen.
    strong: bool


def pick_language(text: str, user: User, ui_language: str | None) -> LanguageChoice:
    """Pick the reply language of a turn without changing ``user``.

    The first message with letters sets the language of a new user. After that only a
    message clearly in one language (:data:`CLEAR_LANGUAGE_SHARE` of its words) can
    change it, and a mixed message keeps the current language:

    - Khmer or Lao script, or Vietnamese with diacritics, switches at once, even from a
      language the user chose explicitly (``/language``), and the new language then
      counts as not chosen. A message wholly in another script is taken as the user
      changing language, so later buttons and short replies stay in it.
    - English or unmarked Vietnamese switches only when the user has not chosen a
      language and the message has :data:`MIN_WORDS_TO_SWITCH_LATIN` words, so a
      Vietnamese owner typing "ok" keeps Vietnamese.
    """
    evidence = message_language(text)
    language = user.language
    if evidence.language is not None and evidence.language != language:
        if language is None:
            switch = True
        elif user.language_confirmed:
            switch = evidence.strong
        else:
            switch = evidence.strong or (evidence.clear and evidence.latin_words >= MIN_WORDS_TO_SWITCH_LATIN)
        if switch:
            language = evidence.language
    if language is None:
        language = normalize_language(ui_language)
    if language not in SUPPORTED_LANGUAGES:
        language = normalize_language(language)
    return LanguageChoice(language=language, previous=user.language, strong=evidence.strong)


def remember_language(user: User, choice: LanguageChoice, chosen_in_turn: bool = False) -> None:
    """Store ``choice`` on ``user``; call it after the handlers, like :func:`mark_seen`.

    ``chosen_in_turn`` means a handler stored the user's pick from the language menu,
    which wins over the language of the message.
    """
    if chosen_in_turn or choice.language == choice.previous:
        return
    if choice.previous is not None:
        logger.info("user %s now writes in %s (was %s)", user.id, choice.language, choice.previous)
    user.language = choice.language
    if choice.strong:
        user.language_confirmed = False


def choose_language(text: str, user: User, ui_language: str | None) -> str:
    """Pick the reply language (see :func:`pick_language`) and store it on ``user`` at once."""
    choice = pick_language(text, user, ui_language)
    remember_language(user, choice)
    return choice.language


def mark_seen(user: User) -> None:
    """Set ``user.last_seen_at`` to now; call it after the handlers, just before commit.

    A changed user row is flushed by the next query of the turn, and with SQLite that
    UPDATE holds the database's write lock until commit. Touching the row at the start
    of a turn held the lock through retrieval, so concurrent turns waited on each other.
    The language of the turn is stored at the end for the same reason.
    """
    user.last_seen_at = utc_now()
