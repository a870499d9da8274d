"""Splitting long replies for Telegram's length limits, and escaping for HTML parse mode.

Replies are plain text. They are split first and escaped afterwards, so an HTML entity
such as ``&amp;`` is never cut in half, and the limits apply to the text the user sees,
which is how Telegram counts them (after entity parsing, in UTF-16 code units).
"""

from __future__ import annotations

import html
import re
import unicodedata

from bot.channels.telegram.limits import MAX_MESSAGE_UTF16_UNITS

#: Boundaries to split at, strongest first: paragraph, line, sentence, word.
#: Khmer ends sentences with U+17D4 (។) or U+17D5 (៕), often with no space after it.
#: Khmer and Lao separate words with U+200B (zero-width space) where they separate them at all.
_BOUNDARIES = (
    re.compile(r"\n[ \t]*\n\s*"),
    re.compile(r"\n\s*"),
    re.compile(r"(?<=[.!?…;])\s+|(?<=[។៕])[\s\u200b]*"),
    re.compile(r"[\s\u200b]+"),
)


def utf16_length(text: str) -> int:
    """Return the length of ``text`` in UTF-16 code units, as Telegram counts it."""
    return len(text.encode("utf-16-le")) // 2


def escape_html(text: str) -> str:
    """Escape ``<``, ``>`` and ``&`` for Telegram's HTML parse mode."""
    return html.escape(text, quote=False)


def _fitting_prefix(text: str, limit: int) -> int:
    """Return how many characters of ``text`` fit in ``limit`` UTF-16 code units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def _hard_cut(text: str, end: int) -> int:
    """Move a cut inside a word back so it does not separate a combining mark or a joiner."""
    cut = end
    while cut > 1 and (unicodedata.category(text[cut])[0] == "M" or text[cut - 1] == "\u200d" or text[cut] == "\u200d"):
        cut -= 1
    return cut


def _cut_point(text: str, limit: int) -> tuple[int, int]:
    """Return (end of this chunk, start of the next) for ``text`` longer than ``limit``."""
    end = _fitting_prefix(text, limit)
    for boundary in _BOUNDARIES:
        best: tuple[int, int] | None = None
        for match in boundary.finditer(text, 0, min(len(text), end + 1)):
            if 0 < match.start() <= end:
                best = (match.start(), match.end())
        if best is not None:
            return best
    cut = _hard_cut(text, end)
    return cut, cut


def split_text(text: str, limit: int = MAX_MESSAGE_UTF16_UNITS, *, first_limit: int | None = None) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` UTF-16 code units, in order.

    Each cut is made at the last paragraph break that fits, else the last line break,
    else the last sentence end, else the last space, else inside a word (never between a
    character and its combining marks). ``first_limit`` applies to the first chunk only,
    for a photo caption followed by text messages. Whitespace at a cut is dropped.
    """
    rest = text.strip()
    chunks: list[str] = []
    current_limit = first_limit if first_limit is not None else limit
    while rest and utf16_length(rest) > current_limit:
        end, start = _cut_point(rest, current_limit)
        chunk = rest[:end].rstrip()
        if chunk:
            chunks.append(chunk)
        rest = rest[start:].lstrip()
        current_limit = limit
    if rest:
        chunks.append(rest)
    return chunks
