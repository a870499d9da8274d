"""Telling whether a message is shaped like a question, in any of the four languages."""

from __future__ import annotations

from actions.assessment.matching import fold

#: Folded words that open a question when they start the message. Vietnamese is listed
#: without diacritics because :func:`fold` removes them.
QUESTION_OPENERS = (
    "how",
    "what",
    "why",
    "which",
    "where",
    "when",
    "who",
    "is",
    "are",
    "can",
    "do",
    "does",
    "should",
    "lam sao",
    "tai sao",
    "lam the nao",
)
#: Khmer question opener. Khmer writes no spaces between words, so it opens a question as a prefix.
KHMER_QUESTION_OPENER = "តើ"
#: Folded phrases that mark a question anywhere in the message ("thế nào", "ແນວໃດ", "យ៉ាងដូចម្តេច").
QUESTION_MARKERS = ("the nao", "ແນວໃດ", "ເປັນຫຍັງ", "ដូចម្តេច")
QUESTION_MARKS = ("?", "？")


def is_question_shaped(text: str) -> bool:
    """Return True when ``text`` ends with a question mark, starts with a question word or has a question phrase."""
    stripped = text.strip()
    if stripped.endswith(QUESTION_MARKS):
        return True
    folded = fold(stripped)
    if any(folded == opener or folded.startswith(opener + " ") for opener in QUESTION_OPENERS):
        return True
    if folded.startswith(KHMER_QUESTION_OPENER):
        return True
    return any(marker in folded for marker in QUESTION_MARKERS)
