"""Splitting long replies at paragraph, sentence and word boundaries, and HTML escaping."""

from __future__ import annotations

import re
import unicodedata

import pytest

from bot.channels.telegram.limits import MAX_CAPTION_UTF16_UNITS, MAX_MESSAGE_UTF16_UNITS
from bot.channels.telegram.text import escape_html, split_text, utf16_length


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_short_text_is_one_chunk() -> None:
    assert split_text("  Xin chào!  ") == ["Xin chào!"]
    assert split_text("") == []


def test_split_prefers_paragraph_boundary() -> None:
    first = "Một câu ngắn. " * 10
    second = "Câu hai, dài hơn một chút. " * 5
    chunks = split_text(f"{first}\n\n{second}", limit=len(first) + 20)
    assert chunks == [first.strip(), second.strip()]


def test_split_falls_back_to_sentences() -> None:
    sentence = "Use less packaging material."
    text = " ".join([sentence] * 10)
    chunks = split_text(text, limit=100)
    assert all(chunk.endswith(".") for chunk in chunks)
    assert all(len(chunk) <= 100 for chunk in chunks)
    assert " ".join(chunks) == text


def test_split_falls_back_to_words() -> None:
    text = " ".join(["word"] * 50)  # one sentence, no punctuation
    chunks = split_text(text, limit=22)
    assert all(len(chunk) <= 22 for chunk in chunks)
    assert all(set(chunk.split()) == {"word"} for chunk in chunks)
    assert " ".join(chunks) == text


def test_khmer_sentence_mark_without_space() -> None:
    chunks = split_text("ខ្មែរ។ខ្មែរ។ខ្មែរ", limit=7)
    assert chunks == ["ខ្មែរ។", "ខ្មែរ។", "ខ្មែរ"]


def test_hard_cut_keeps_combining_marks() -> None:
    word = "ຳ" * 3 + "ກີ" * 20  # Lao consonants with vowel signs, no spaces
    for chunk in split_text(word, limit=7):
        assert unicodedata.category(chunk[0])[0] != "M" or chunk[0] == "ຳ"
        assert utf16_length(chunk) <= 7
    assert "".join(split_text(word, limit=7)) == word


def test_limit_counts_utf16_units() -> None:
    text = "🌱" * 3000  # 6000 UTF-16 units, 3000 code points
    chunks = split_text(text)
    assert [utf16_length(chunk) for chunk in chunks] == [4096, 6000 - 4096]
    assert "".join(chunks) == text


@pytest.mark.parametrize(
    "language_text", ["Tiết kiệm năng lượng & nước. ", "ការសន្សំថាមពល។ ", "ການປະຫຍັດພະລັງງານ. ", "Save <energy> & water. "]
)
def test_nine_thousand_characters_keep_order_and_content(language_text: str) -> None:
    paragraphs = [f"{index}. " + language_text * 12 for index in range(60)]
    text = "\n\n".join(paragraphs)[:9000]
    chunks = split_text(text)
    assert len(chunks) >= 3
    assert all(utf16_length(chunk) <= MAX_MESSAGE_UTF16_UNITS for chunk in chunks)
    assert _squeeze("".join(chunks)) == _squeeze(text)


def test_first_limit_is_for_the_caption() -> None:
    text = "A sentence of some length. " * 100
    chunks = split_text(text, first_limit=MAX_CAPTION_UTF16_UNITS)
    assert utf16_length(chunks[0]) <= MAX_CAPTION_UTF16_UNITS
    assert len(chunks) == 2
    assert _squeeze("".join(chunks)) == _squeeze(text)


def test_escape_happens_after_split() -> None:
    chunks = [escape_html(chunk) for chunk in split_text("a & b < c > d " * 1000)]
    assert all("&amp;" in chunk and "&lt;" in chunk and "&gt;" in chunk for chunk in chunks)
    assert all(not re.search(r"&(?!amp;|lt;|gt;)", chunk) for chunk in chunks)
