"""Knowledge-base questions: answer, "more", related topics, off-topic questions, and the question log."""

from __future__ import annotations

import dataclasses
import functools
import logging
import stat
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

from actions.context import TurnContext
from actions.handlers.general import handoff_available, menu_buttons
from actions.registry import on_command, on_intent
from actions.reply import Reply
from bot.i18n import gettext
from bot.settings import SUPPORTED_LANGUAGES, get_settings
from bot.storage.questions import log_question
from knowledge_base import answer as kb_answer
from knowledge_base.content import Article, ContentError, Source, load_article
from knowledge_base.index import default_import_dir
from knowledge_base.retrieval import get_retriever
from nlu.text import normalize

logger = logging.getLogger(__name__)

#: NLU confidence from which an ``out_of_scope`` message gets the "outside what I know"
#: reply without a knowledge-base search. On the 515 held-out NLU examples no message of
#: another intent came out as out_of_scope at 0.7 or more (in-domain questions reached
#: 0.51, "thoat bang cau hoi nay ngay" 0.68), while 31 of the 50 off-topic ones did.
OUT_OF_SCOPE_MIN_CONFIDENCE = 0.7
#: Public sources named under an answer, across the articles quoted.
PUBLIC_SOURCES_SHOWN = 2
#: Characters of one public source title kept in the source line.
PUBLIC_SOURCE_TITLE_MAX_CHARS = 80
#: Longest public-source line with two sources; a longer one names only the first, so an
#: answer (at most ``knowledge_base.answer.MAX_ANSWER_CHARS``, 1800) stays within Zalo's
#: 2000 characters.
PUBLIC_SOURCES_LINE_MAX_CHARS = 180
#: Article files that stay parsed, so a reply does not parse their YAML front matter again;
#: the content has 246 article files in four languages.
ARTICLE_FILES_CACHED = 512


# --- sources ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=ARTICLE_FILES_CACHED)
def _article_in_file(path: Path, modified_ns: int, size: int) -> Article:
    """Return the article file at ``path``, parsed; the time and size key a changed file anew."""
    return load_article(path)


def _article_file(article_id: str, language: str) -> Article | None:
    """Return the ``language`` version of ``article_id``, else English, else any, or None when unreadable."""
    folders = [get_settings().kb_content_dir, default_import_dir()]
    for candidate in dict.fromkeys((language, "en", *SUPPORTED_LANGUAGES)):
        for folder in folders:
            path = folder / candidate / f"{article_id}.md"
            try:
                status = path.stat()
            except OSError:
                continue
            if not stat.S_ISREG(status.st_mode):
                continue
            try:
                return _article_in_file(path, status.st_mtime_ns, status.st_size)
            except ContentError as error:
                logger.warning("article %s unreadable: %s", article_id, error)
    return None


def _article_sources(article_id: str, language: str) -> tuple[Source, ...]:
    """Return the public sources in the front matter of ``article_id``, preferring its ``language`` version."""
    article = _article_file(article_id, language)
    return article.sources if article is not None else ()


def _source_label(source: Source) -> str:
    """Return "<title> – <web site>", short enough for a phone screen."""
    title = source.title
    if len(title) > PUBLIC_SOURCE_TITLE_MAX_CHARS:
        title = title[: PUBLIC_SOURCE_TITLE_MAX_CHARS - 1].rstrip() + "…"
    host = urllib.parse.urlsplit(source.url).hostname if source.url else None
    if host:
        host = host.removeprefix("www.")
        return f"{title} – {host}"
    return title


def _public_sources(article_ids: Sequence[str], language: str) -> list[Source]:
    """Return up to :data:`PUBLIC_SOURCES_SHOWN` distinct sources, taking one per article in turn."""
    per_article = [list(_article_sources(article_id, language)) for article_id in article_ids]
    chosen: dict[str, Source] = {}
    for position in range(max((len(sources) for sources in per_article), default=0)):
        for sources in per_article:
            if position < len(sources) and len(chosen) < PUBLIC_SOURCES_SHOWN:
                chosen.setdefault(sources[position].title, sources[position])
    return list(chosen.values())


def _with_public_sources(result: kb_answer.Answer, language: str) -> tuple[str, list[Source]]:
    """Return the answer text with a line naming the articles' public sources under its "Source:" line."""
    if not result.sources:
        return result.text, []
    article_language = result.fallback_language or language
    sources = _public_sources([str(source["id"]) for source in result.sources], article_language)
    if not sources:
        return result.text, []
    line = gettext("kb.public_sources", language, sources="; ".join(_source_label(source) for source in sources))
    if len(line) > PUBLIC_SOURCES_LINE_MAX_CHARS:
        sources = sources[:1]
        line = gettext("kb.public_sources", language, sources=_source_label(sources[0]))
    return f"{result.text}\n{line}", sources


# --- buttons ---------------------------------------------------------------------------


def _related_buttons(related: Sequence[tuple[str, str]], language: str) -> list[tuple[str, str]]:
    """Return related-topic buttons; a topic without a version in ``language`` names the language it opens in.

    ``kb:article`` shows the ``language`` version, else English, else any (see
    ``knowledge_base.answer.show_article``), and the label follows the same order.
    """
    documents = get_retriever().index.documents
    buttons = []
    for article_id, title in related:
        shown_language = next(
            (code for code in (language, "en", *SUPPORTED_LANGUAGES) if f"{article_id}.{code}" in documents), language
        )
        if shown_language != language:
            title = gettext(
                "kb.button.other_language",
                language,
                title=documents[f"{article_id}.{shown_language}"].title,
                language=gettext(f"kb.language.{shown_language}", language),
            )
        buttons.append((title, f"kb:article:{article_id}"))
    return buttons


def _with_curated_related(result: kb_answer.Answer, language: str) -> kb_answer.Answer:
    """Put the quoted article's own ``related`` list (front matter) before the search's close topics.

    The search's next hits can come from another sector altogether ("shoe glue" under a
    dyeing answer), while the writers' list names the neighbouring topics.
    """
    if result.declined or not result.sources:
        return result
    quoted = {str(source["id"]) for source in result.sources}
    article = _article_file(str(result.sources[0]["id"]), language)
    documents = get_retriever().index.documents
    related: list[tuple[str, str]] = []
    for article_id in article.related if article is not None else ():
        versions = [f"{article_id}.{code}" for code in (language, "en", *SUPPORTED_LANGUAGES)]
        document_id = next((key for key in versions if key in documents), None)
        if document_id is not None and article_id not in quoted:
            related.append((article_id, documents[document_id].title))
    listed = quoted | {article_id for article_id, _title in related}
    related.extend(item for item in result.related if item[0] not in listed)
    return dataclasses.replace(result, related=related[: kb_answer.RELATED_LIMIT])


def _handoff_buttons(context: TurnContext) -> list[tuple[str, str]]:
    if not handoff_available(context):
        return []
    return [(gettext("core.menu.human", context.language), "core:handoff:start")]


# --- replies ---------------------------------------------------------------------------


def _answer_reply(result: kb_answer.Answer, language: str) -> Reply:
    """Return the reply for an answer or an article part: text, sources and next-step buttons."""
    text, public_sources = _with_public_sources(result, language)
    buttons: list[tuple[str, str]] = []
    if result.more_chunk_id:
        buttons.append((gettext("kb.button.more", language), f"kb:more:{result.more_chunk_id}"))
    if result.start_article_id:
        # The best passage can be an article's last section, with nothing to read after it.
        buttons.append((gettext("kb.button.from_start", language), f"kb:article:{result.start_article_id}"))
    buttons.extend(_related_buttons(result.related, language))
    extra: dict[str, object] = {}
    if public_sources:
        extra["public_sources"] = [
            {"title": source.title, "publisher": source.publisher, "url": source.url} for source in public_sources
        ]
    return Reply(
        text=text,
        language=language,
        buttons=buttons or menu_buttons(language),
        sources=[dict(source) for source in result.sources],
        extra=extra,
    )


def _not_sure_reply(context: TurnContext, result: kb_answer.Answer) -> Reply:
    """Return the reply to an on-topic question that no article answers well: close topics to try."""
    language = context.language
    buttons = _related_buttons(result.related, language) + _handoff_buttons(context)
    return Reply(text=result.text, language=language, buttons=buttons or menu_buttons(language))


def _out_of_scope_reply(context: TurnContext) -> Reply:
    """Return the reply to an off-topic question: what the assistant covers, and no article buttons."""
    language = context.language
    return Reply(
        text=gettext("kb.out_of_scope", language),
        language=language,
        buttons=menu_buttons(language) + _handoff_buttons(context),
    )


# --- handlers --------------------------------------------------------------------------


@on_intent("ask_question", "out_of_scope", "nlu_fallback")
def ask(context: TurnContext) -> list[Reply]:
    """Answer a question from the knowledge base, or reply that it is outside the assistant's topics.

    An out_of_scope message at :data:`OUT_OF_SCOPE_MIN_CONFIDENCE` or above is not
    searched. A declined search gives the off-topic reply for an out_of_scope message and
    "not sure, try other words" for any other, because those may be on-topic. Every
    question, declined or not, goes to the question log for the gap report.
    """
    language = context.language
    text = normalize(context.text)
    if not any(char.isalpha() for char in text):
        return [Reply(text=gettext("core.empty_message", language), language=language, buttons=menu_buttons(language))]

    off_topic = context.intent == "out_of_scope"
    if off_topic and context.confidence >= OUT_OF_SCOPE_MIN_CONFIDENCE:
        log_question(context.session, context.user, text, language=language, top_score=None, declined=True)
        logger.info("off-topic question from user %s (NLU confidence %.2f): not searched", context.user.id, context.confidence)
        return [_out_of_scope_reply(context)]

    result = kb_answer.answer(text, language)
    log_question(
        context.session,
        context.user,
        text,
        language=language,
        top_score=result.top_score,
        declined=result.declined,
        sources=result.sources,
    )
    logger.info(
        "question from user %s: language %s, intent %s, declined %s, top score %.3f",
        context.user.id,
        language,
        context.intent,
        result.declined,
        result.top_score or 0.0,
    )
    if not result.declined:
        return [_answer_reply(_with_curated_related(result, language), language)]
    if off_topic:
        return [_out_of_scope_reply(context)]
    return [_not_sure_reply(context, result)]


@on_command("kb")
def kb_command(context: TurnContext) -> list[Reply]:
    """Handle ``kb:more:<chunk id>`` and ``kb:article:<article id>`` buttons."""
    language = context.language
    parts = (context.command or "").split(":", 2)
    action = parts[1] if len(parts) > 1 else ""
    argument = parts[2] if len(parts) > 2 else ""
    if action == "more" and argument:
        result = kb_answer.more(argument, language)
    elif action == "article" and argument:
        result = kb_answer.show_article(argument, language)
    else:
        result = None
    if result is None:
        return [Reply(text=gettext("core.unknown_button", language), language=language, buttons=menu_buttons(language))]
    if result.declined:
        # The article or part is no longer in the index.
        return [Reply(text=result.text, language=language, buttons=menu_buttons(language))]
    return [_answer_reply(_with_curated_related(result, language), language)]
