"""Chunking: token limits, overlap, stable ids and Markdown clean-up, with the real e5 tokenizer."""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import logging
import re
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from knowledge_base.chunking import (
    MIN_SECTION_TOKENS,
    MODEL_MAX_TOKENS,
    TARGET_TOKENS,
    chunk_article,
    count_tokens,
    passage_token_count,
    plain_inline,
    split_sentences,
)
from knowledge_base.content import Article, load_article

FIXTURE_CONTENT = Path(__file__).resolve().parent / "fixtures" / "content"

ENGLISH_SENTENCES = [
    "Small workshops waste more material than they think when offcuts are not measured.",
    "Weigh the scrap bin at the end of each day and write the number in a notebook.",
    "After a month the numbers show which product or machine wastes the most.",
    "Ask the workers who cut the material where the waste comes from, because they usually know.",
    "Try one change at a time so that you can see what it saved.",
]


def make_article(body: str, title: str = "Test article", language: str = "en", article_id: str = "test") -> Article:
    return Article(
        id=article_id,
        title=title,
        language=language,
        body=body,
        translations=(),
        topics=("test",),
        sectors=("all",),
        countries=(),
        related=(),
        sources=(),
        updated=datetime.date(2026, 12, 4),
        path=Path(f"{language}/{article_id}.md"),
        source_hash="0" * 64,
    )


def long_body(paragraphs: int) -> str:
    return "\n\n".join(" ".join(ENGLISH_SENTENCES) for _ in range(paragraphs))


def test_chunk_ids_are_stable_and_sequential(tokenizer: Tokenizer) -> None:
    article = make_article(long_body(12), article_id="waste-notes", language="vi")
    chunks = chunk_article(article, tokenizer)
    assert len(chunks) > 1
    assert [chunk.id for chunk in chunks] == [f"waste-notes.vi#{n}" for n in range(len(chunks))]
    assert [chunk.position for chunk in chunks] == list(range(len(chunks)))
    again = chunk_article(article, tokenizer)
    assert [chunk.content_hash for chunk in again] == [chunk.content_hash for chunk in chunks]


def test_chunks_fit_model_limit(tokenizer: Tokenizer) -> None:
    chunks = chunk_article(make_article(long_body(30)), tokenizer)
    for chunk in chunks:
        assert chunk.token_count <= MODEL_MAX_TOKENS, chunk.id
        assert chunk.token_count == passage_token_count(tokenizer, chunk.embedding_text)
        assert count_tokens(tokenizer, chunk.text) <= TARGET_TOKENS + 10, chunk.id


def test_chunks_are_near_target_size(tokenizer: Tokenizer) -> None:
    chunks = chunk_article(make_article(long_body(30)), tokenizer)
    body_sizes = [count_tokens(tokenizer, chunk.text) for chunk in chunks[:-1]]
    assert min(body_sizes) >= TARGET_TOKENS // 2


def test_consecutive_chunks_overlap(tokenizer: Tokenizer) -> None:
    chunks = chunk_article(make_article(long_body(12)), tokenizer)
    for previous, current in itertools.pairwise(chunks):
        assert current.overlap_chars > 0, current.id
        repeated = current.text[: current.overlap_chars]
        assert previous.text.endswith(repeated), current.id
        assert 0 < count_tokens(tokenizer, repeated) <= 50
        assert not current.new_text.startswith(repeated)


def test_every_sentence_is_kept(tokenizer: Tokenizer) -> None:
    body = long_body(8)
    chunks = chunk_article(make_article(body), tokenizer)
    joined = " ".join(chunk.new_text for chunk in chunks)
    assert joined.count(ENGLISH_SENTENCES[2]) == 8


def test_title_prefixes_embedding_text(tokenizer: Tokenizer) -> None:
    article = make_article("## Measure first\n\n" + long_body(10), title="Cutting waste")
    chunks = chunk_article(article, tokenizer)
    for chunk in chunks:
        assert chunk.embedding_text.startswith("Cutting waste\n")
    assert chunks[1].section == "Measure first"
    assert chunks[1].embedding_text.startswith("Cutting waste\nMeasure first\n")


def test_unpunctuated_text_is_split_by_tokens(tokenizer: Tokenizer) -> None:
    lao_phrase = "ການອອກແບບຜະລິດຕະພັນແບບຍືນຍົງຊ່ວຍໃຫ້ວິສາຫະກິດຂະໜາດນ້ອຍປະຫຍັດພະລັງງານ "
    article = make_article(lao_phrase * 80, language="lo")
    chunks = chunk_article(article, tokenizer)
    assert len(chunks) > 2
    for chunk in chunks:
        assert chunk.token_count <= MODEL_MAX_TOKENS, chunk.id
        assert count_tokens(tokenizer, chunk.new_text) <= TARGET_TOKENS + 5, chunk.id


def test_heading_starts_new_chunk(tokenizer: Tokenizer) -> None:
    first = " ".join(ENGLISH_SENTENCES * 3)
    assert count_tokens(tokenizer, first) >= MIN_SECTION_TOKENS
    article = make_article(f"{first}\n\n## Second part\n\nA short closing section.")
    chunks = chunk_article(article, tokenizer)
    assert len(chunks) == 2
    assert chunks[1].text.startswith("Second part\nA short closing section.")
    assert chunks[1].overlap_chars == 0


def test_heading_never_ends_chunk(tokenizer: Tokenizer) -> None:
    body = "\n\n".join(f"## Part {n}\n\n{' '.join(ENGLISH_SENTENCES)}" for n in range(10))
    for chunk in chunk_article(make_article(body), tokenizer):
        assert not chunk.text.splitlines()[-1].startswith("Part "), chunk.id


def test_long_title_logs_truncation_warning(tokenizer: Tokenizer, caplog: pytest.LogCaptureFixture) -> None:
    title = "Very long title about packaging " * 110
    with caplog.at_level(logging.WARNING, logger="knowledge_base.chunking"):
        chunks = chunk_article(make_article("One short sentence.", title=title), tokenizer)
    assert chunks[0].token_count > MODEL_MAX_TOKENS
    assert "will be truncated" in caplog.text
    assert chunks[0].id in caplog.text


def test_markdown_is_removed() -> None:
    assert plain_inline("**Bold** and *italic* with `code`") == "Bold and italic with code"
    assert plain_inline("See [the guide](https://example.org/guide) ![logo](x.png)") == "See the guide"
    assert plain_inline("snake_case_name stays") == "snake_case_name stays"


def test_list_items_keep_markers(tokenizer: Tokenizer) -> None:
    article = load_article(FIXTURE_CONTENT / "en" / "plastic-packaging.md")
    chunks = chunk_article(article, tokenizer)
    text = "\n".join(chunk.text for chunk in chunks)
    assert "\n1. Can we leave it out? A bag inside a box" in text
    assert "**" not in text


def test_sentence_splitting() -> None:
    assert split_sentences('He asked "Why?" Then left. Done!') == ['He asked "Why?"', "Then left.", "Done!"]
    assert split_sentences("ទីមួយ។ទីពីរ។ ទីបី") == ["ទីមួយ។", "ទីពីរ។", "ទីបី"]
    assert split_sentences("Price 3.5 kg") == ["Price 3.5 kg"]


def test_item_number_stays_with_its_text() -> None:
    assert split_sentences("8. Reuse offcuts. Sell the rest.") == ["8. Reuse offcuts.", "Sell the rest."]
    assert split_sentences("3) Keep records.") == ["3) Keep records."]
    assert split_sentences("Sales grew in 2025. Costs fell.") == ["Sales grew in 2025.", "Costs fell."]


def test_no_real_chunk_ends_on_item_number(tokenizer: Tokenizer) -> None:
    from knowledge_base.content import load_articles

    content = Path(__file__).resolve().parents[2] / "knowledge_base" / "content"
    bare_number = re.compile(r"(^|\s)\d{1,3}[.)]$")
    for article in load_articles(content):
        for chunk in chunk_article(article, tokenizer):
            assert not bare_number.search(chunk.text.rstrip()), chunk.id


def test_real_articles_fit_model_limit(tokenizer: Tokenizer) -> None:
    from knowledge_base.content import load_articles

    content = Path(__file__).resolve().parents[2] / "knowledge_base" / "content"
    articles = load_articles(content, skip_invalid=True)
    if not articles:
        pytest.skip("no articles in knowledge_base/content yet")
    for article in articles:
        for chunk in chunk_article(article, tokenizer):
            assert chunk.token_count <= MODEL_MAX_TOKENS, chunk.id


def test_edit_in_last_section_changes_only_last_chunk(tokenizer: Tokenizer) -> None:
    section = " ".join(ENGLISH_SENTENCES * 3)
    body = "\n\n".join(f"## Part {n}\n\n{section}" for n in range(4))
    article = make_article(body)
    chunks = chunk_article(article, tokenizer)
    edited_body = body[: body.rindex(ENGLISH_SENTENCES[0])] + body[body.rindex(ENGLISH_SENTENCES[0]) :].replace(
        ENGLISH_SENTENCES[0], "A new sentence.", 1
    )
    edited = chunk_article(dataclasses.replace(article, body=edited_body), tokenizer)
    assert len(edited) == len(chunks)
    changed = [new.id for old, new in zip(chunks, edited, strict=True) if old.content_hash != new.content_hash]
    assert changed == [chunks[-1].id]
