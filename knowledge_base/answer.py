"""Compose the reply to a question from the best knowledge-base passages.

The reply quotes the best passage (and a second one from another article when it scores
almost as well and fits), names its sources, and offers a "more" chunk id for the next
part of the article. Low-confidence questions are declined with related topics as
suggestions. Every sentence that is not article text comes from the ``kb`` message
catalogue (``bot/locale/<language>/LC_MESSAGES/kb.po``).
"""

from __future__ import annotations

import dataclasses
import logging
import re

from bot.i18n import gettext, normalize_language
from knowledge_base.index import ChunkRecord
from knowledge_base.retrieval import Hit, Retriever, clean_query, get_retriever

logger = logging.getLogger(__name__)

#: Maximum length of a reply's text. Zalo allows 2000 characters per message (Telegram
#: 4096), and the source line and fallback notice need room.
MAX_ANSWER_CHARS = 1800
#: A second passage is added when its article scores at least this close to the best one.
SECOND_PASSAGE_MARGIN = 0.03
#: Number of related topics offered as buttons.
RELATED_LIMIT = 3
_SENTENCE_END = re.compile(r"[.!?…។៕](?=\s|$)")


@dataclasses.dataclass(frozen=True)
class Answer:
    """A reply to show the user, in ``language``."""

    text: str
    language: str
    sources: list[dict[str, object]]
    """Articles quoted, as ``{"id", "title", "score"}``."""
    declined: bool
    """True when no article was confident enough (or the question had no words)."""
    more_chunk_id: str | None
    """Chunk to show for a "more" button, or None at the end of the article."""
    related: list[tuple[str, str]]
    """(article id, title) of close topics, for buttons."""
    fallback_language: str | None
    """Language of the quoted article when it differs from ``language``."""
    top_score: float | None = None
    """Confidence of the query (``Hit.confidence``), kept in the question log for the gap report."""
    start_article_id: str | None = None
    """Article to offer from its beginning, when the answer quoted a later part of it."""


def _shorten(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters at the last sentence end, or at a space, adding "…"."""
    if len(text) <= limit:
        return text
    window = text[: limit - 1]
    ends = [match.end() for match in _SENTENCE_END.finditer(window)]
    if ends and ends[-1] > limit // 2:
        return window[: ends[-1]].rstrip() + " …"
    space = window.rfind(" ")
    return (window[:space] if space > limit // 2 else window).rstrip() + " …"


def _language_name(code: str, language: str) -> str:
    return gettext(f"kb.language.{code}", language)


def _fallback_notice(article_language: str, language: str) -> str:
    return gettext(
        "kb.fallback_language",
        language,
        language=_language_name(language, language),
        article_language=_language_name(article_language, language),
    )


def _source(hit: Hit) -> dict[str, object]:
    return {"id": hit.article_id, "title": hit.title, "score": round(hit.score, 3)}


def _related(hits: list[Hit], language: str, retriever: Retriever | None) -> list[tuple[str, str]]:
    """Return (article id, title) for buttons, with titles in ``language``, else English, when indexed."""
    related = []
    for hit in hits[:RELATED_LIMIT]:
        title = hit.title
        if retriever is not None:
            for candidate in (language, "en"):
                document = retriever.index.documents.get(f"{hit.article_id}.{candidate}")
                if document is not None:
                    title = document.title
                    break
        related.append((hit.article_id, title))
    return related


def _declined(language: str, hits: list[Hit], message_id: str = "kb.not_sure", retriever: Retriever | None = None) -> Answer:
    related = _related(hits, language, retriever)
    parts = [gettext(message_id, language)]
    if related:
        parts.append(gettext("kb.related_intro", language))
    return Answer(
        text="\n\n".join(parts),
        language=language,
        sources=[],
        declined=True,
        more_chunk_id=None,
        related=related,
        fallback_language=None,
    )


def answer(text: str, language: str | None, retriever: Retriever | None = None) -> Answer:
    """Compose the reply to ``text`` for a user who reads ``language``.

    User input never makes it raise. Uses the process-wide retriever unless one is given.
    """
    language = normalize_language(language)
    if not clean_query(text):
        return _declined(language, [], "kb.empty_query")
    retriever = retriever or get_retriever()
    hits = retriever.search(text, language, k=RELATED_LIMIT + 2)
    if not retriever.is_confident(hits):
        top_score = hits[0].confidence if hits else None
        logger.info("Declined a %s question (confidence %s)", language, top_score)
        return dataclasses.replace(_declined(language, hits, retriever=retriever), top_score=top_score)

    best = hits[0]
    used = [best]
    second = next((hit for hit in hits[1:] if hit.language == best.language), None)
    if second is not None and second.score < max(retriever.decline_below, best.score - SECOND_PASSAGE_MARGIN):
        second = None

    notice = _fallback_notice(best.language, language) if best.language != language else ""
    passages = [f"{best.title}\n{best.text}"]
    if second is not None:
        passages.append(f"{second.title}\n{second.text}")
        used.append(second)
    sources_line = gettext("kb.source", language, titles="; ".join(hit.title for hit in used))

    room = MAX_ANSWER_CHARS - len(notice) - len(sources_line) - 6
    if len(passages) == 2 and len(passages[0]) + len(passages[1]) + 2 > room:
        passages, used = passages[:1], used[:1]
        sources_line = gettext("kb.source", language, titles=best.title)
    body = _shorten("\n\n".join(passages), room)
    text_out = "\n\n".join(part for part in (notice, body, sources_line) if part)

    following = retriever.index.next_chunk(best.chunk_id)
    quoted_chunk = retriever.index.chunk(best.chunk_id)
    used_articles = {hit.article_id for hit in used}
    related = _related([hit for hit in hits if hit.article_id not in used_articles], language, retriever)
    return Answer(
        text=text_out,
        language=language,
        sources=[_source(hit) for hit in used],
        declined=False,
        more_chunk_id=following.chunk_id if following else None,
        related=related,
        fallback_language=best.language if best.language != language else None,
        top_score=best.confidence,
        start_article_id=best.article_id if quoted_chunk is not None and quoted_chunk.position > 0 else None,
    )


def _chunk_answer(record: ChunkRecord, text: str, language: str, retriever: Retriever) -> Answer:
    notice = _fallback_notice(record.language, language) if record.language != language else ""
    sources_line = gettext("kb.source", language, titles=record.title)
    room = MAX_ANSWER_CHARS - len(notice) - len(sources_line) - 6
    body = _shorten(text, room)
    following = retriever.index.next_chunk(record.chunk_id)
    return Answer(
        text="\n\n".join(part for part in (notice, body, sources_line) if part),
        language=language,
        sources=[{"id": record.article_id, "title": record.title, "score": 1.0}],
        declined=False,
        more_chunk_id=following.chunk_id if following else None,
        related=[],
        fallback_language=record.language if record.language != language else None,
    )


def more(chunk_id: str, language: str | None, retriever: Retriever | None = None) -> Answer:
    """Show chunk ``chunk_id`` (from ``Answer.more_chunk_id``) without the text repeated from the one before.

    A chunk id that is no longer indexed gives a declined Answer that asks the user to ask again.
    """
    language = normalize_language(language)
    retriever = retriever or get_retriever()
    record = retriever.index.chunk(chunk_id)
    if record is None:
        logger.info("Chunk %s for a 'more' button is not in the index", chunk_id)
        return _declined(language, [], "kb.chunk_not_found")
    return _chunk_answer(record, record.new_text, language, retriever)


def show_article(article_id: str, language: str | None, retriever: Retriever | None = None) -> Answer:
    """Show the start of an article (a related-topic button) in ``language``, else English, else any language."""
    language = normalize_language(language)
    retriever = retriever or get_retriever()
    index = retriever.index
    for candidate in (language, "en", "vi", "km", "lo"):
        chunks = index.document_chunks(f"{article_id}.{candidate}")
        if chunks:
            title = f"{chunks[0].title}\n{chunks[0].text}"
            return _chunk_answer(chunks[0], title, language, retriever)
    logger.info("Article %s for a button is not in the index", article_id)
    return _declined(language, [], "kb.chunk_not_found")
