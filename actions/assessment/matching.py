"""Matching typed answers to answer buttons, and the words for back, skip, pause and cancel.

Owners may type instead of pressing a button: the button's number ("2", also in Khmer
or Lao digits) or its text in any of the four languages, with or without Vietnamese
diacritics. A match must be unambiguous; otherwise the caller asks again.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import unicodedata
from collections.abc import Sequence

from actions.assessment.schema import Answer, visible_length
from bot.i18n import catalogue
from bot.settings import SUPPORTED_LANGUAGES
from nlu.text import fold_diacritics, normalize

#: Shortest typed text (visible characters) that may match part of an answer text.
MIN_PARTIAL_MATCH_CHARS = 3
#: Characters trimmed around a typed number, as in "#2", "2." or "(2)".
NUMBER_DECORATION = "#.)(:[] "
#: Catalogue message ids whose texts list the control words, separated by "|".
CONTROL_WORD_MESSAGES = {
    "back": "assess.words.back",
    "skip": "assess.words.skip",
    "pause": "assess.words.pause",
    "cancel": "assess.words.cancel",
}


class Control(enum.StrEnum):
    """A navigation command that works at every question."""

    BACK = "back"
    SKIP = "skip"
    PAUSE = "pause"
    CANCEL = "cancel"


@dataclasses.dataclass(frozen=True)
class AnswerMatch:
    """The answer a typed text matched, or why it did not."""

    answer_id: str | None
    ambiguous: bool = False


def fold(text: str) -> str:
    """Return ``text`` normalised for comparison: NFC, lower case, no Latin diacritics, no punctuation."""
    folded = fold_diacritics(normalize(text).casefold())
    kept = [" " if unicodedata.category(char)[0] in ("P", "S", "Z") else char for char in folded]
    return " ".join("".join(kept).split())


def parse_number(text: str) -> int | None:
    """Return the number typed as ``text`` ("3", "#3", "៣", "໓"), or None."""
    stripped = normalize(text).strip(NUMBER_DECORATION)
    if not stripped or len(stripped) > 3:
        return None
    digits = [unicodedata.decimal(char, None) for char in stripped]
    if any(digit is None for digit in digits):
        return None
    value = 0
    for digit in digits:
        assert digit is not None
        value = value * 10 + digit
    return value


def _is_latin(text: str) -> bool:
    return all(char.isascii() for char in text)


def _contains(haystack: str, needle: str) -> bool:
    """Return True when ``needle`` is in ``haystack`` as whole words (Latin) or as a substring (Khmer, Lao)."""
    if not needle:
        return False
    if _is_latin(needle):
        return f" {needle} " in f" {haystack} "
    return needle in haystack


def match_answer(answers: Sequence[Answer], text: str) -> AnswerMatch:
    """Return the answer that ``text`` names by number or by text, if exactly one does."""
    number = parse_number(text)
    if number is not None:
        if 1 <= number <= len(answers):
            return AnswerMatch(answers[number - 1].id)
        return AnswerMatch(None)

    typed = fold(text)
    if not typed:
        return AnswerMatch(None)
    texts = {answer.id: {fold(value) for value in answer.text.values()} for answer in answers}

    exact = {answer_id for answer_id, variants in texts.items() if typed in variants}
    if exact:
        return AnswerMatch(exact.pop()) if len(exact) == 1 else AnswerMatch(None, ambiguous=True)

    # The typed text contains an answer text ("no, we don't" contains "no").
    longest: dict[str, int] = {}
    for answer_id, variants in texts.items():
        for variant in variants:
            if _contains(typed, variant):
                longest[answer_id] = max(longest.get(answer_id, 0), len(variant))
    if longest:
        best = max(longest.values())
        winners = [answer_id for answer_id, length in longest.items() if length == best]
        return AnswerMatch(winners[0]) if len(winners) == 1 else AnswerMatch(None, ambiguous=True)

    # The typed text is part of one answer text ("partly" in "partly water-based").
    if visible_length(typed) >= MIN_PARTIAL_MATCH_CHARS:
        partial = {answer_id for answer_id, variants in texts.items() if any(_contains(variant, typed) for variant in variants)}
        if len(partial) == 1:
            return AnswerMatch(partial.pop())
        if len(partial) > 1:
            return AnswerMatch(None, ambiguous=True)
    return AnswerMatch(None)


@functools.cache
def control_words() -> dict[str, Control]:
    """Return folded word -> control, from the ``assess.words.*`` texts of every language."""
    words: dict[str, Control] = {}
    for control in Control:
        message_id = CONTROL_WORD_MESSAGES[control.value]
        for language in SUPPORTED_LANGUAGES:
            text = catalogue(language, "assess").get(message_id, "")
            for word in text.split("|"):
                folded = fold(word)
                if folded:
                    words.setdefault(folded, control)
    return words


def match_control(text: str) -> Control | None:
    """Return the control that ``text`` is (the whole message, e.g. "bo qua" or "/skip"), or None."""
    typed = fold(text.strip().lstrip("/"))
    return control_words().get(typed)
