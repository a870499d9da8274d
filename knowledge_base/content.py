"""Load knowledge-base articles from ``content/<language>/<id>.md`` into dataclasses.

Each file has YAML front matter (see docs/CONTENT_FORMAT.md) and a Markdown body.
Validation errors name the file and the field.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import frontmatter
import yaml

from bot.settings import SUPPORTED_LANGUAGES

logger = logging.getLogger(__name__)

SECTORS = frozenset({"textiles", "footwear", "furniture", "handicraft", "food", "all"})
COUNTRIES = frozenset({"vn", "la", "kh"})
#: Article ids are lower-case slugs, so they fit file names and button payloads.
ARTICLE_ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
#: Body length in words that the content guide requests (Khmer and Lao words are segmented).
MIN_WORDS = 180
MAX_WORDS = 450


class ContentError(ValueError):
    """An invalid article file. ``path`` and ``field`` locate the problem."""

    def __init__(self, path: Path, field: str, message: str) -> None:
        super().__init__(f"{path}: field '{field}': {message}")
        self.path = path
        self.field = field
        self.message = message


class ContentValidationError(ValueError):
    """One or more article files are invalid."""

    def __init__(self, errors: Sequence[ContentError]) -> None:
        lines = "\n".join(f"  {error}" for error in errors)
        super().__init__(f"{len(errors)} invalid article file(s):\n{lines}")
        self.errors = list(errors)


@dataclasses.dataclass(frozen=True)
class Source:
    """A document or organisation page that supports an article's facts."""

    title: str
    publisher: str | None = None
    year: int | None = None
    url: str | None = None


@dataclasses.dataclass(frozen=True)
class Article:
    """One language version of a knowledge-base article."""

    id: str
    title: str
    language: str
    body: str
    translations: tuple[str, ...]
    topics: tuple[str, ...]
    sectors: tuple[str, ...]
    countries: tuple[str, ...]
    related: tuple[str, ...]
    sources: tuple[Source, ...]
    updated: datetime.date
    path: Path
    source_hash: str
    """sha256 of the file's bytes."""

    @property
    def document_id(self) -> str:
        """Identifier of this language version, ``<id>.<language>``."""
        return f"{self.id}.{self.language}"


def _require(metadata: dict[str, Any], path: Path, field: str) -> Any:
    if field not in metadata or metadata[field] is None:
        raise ContentError(path, field, "missing")
    return metadata[field]


def _string(metadata: dict[str, Any], path: Path, field: str) -> str:
    value = _require(metadata, path, field)
    if not isinstance(value, str) or not value.strip():
        raise ContentError(path, field, f"expected a non-empty string, got {value!r}")
    return value.strip()


def _string_list(
    metadata: dict[str, Any], path: Path, field: str, allowed: Iterable[str] | None = None, required: bool = True
) -> tuple[str, ...]:
    if field not in metadata or metadata[field] is None:
        if required:
            raise ContentError(path, field, "missing (use [] when there are none)")
        return ()
    value = metadata[field]
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise ContentError(path, field, f"expected a list of strings, got {value!r}")
    items = tuple(item.strip() for item in value)
    if allowed is not None:
        allowed_set = set(allowed)
        unknown = [item for item in items if item not in allowed_set]
        if unknown:
            raise ContentError(path, field, f"unknown value(s) {unknown}. Allowed values: {sorted(allowed_set)}")
    return items


def _sources(metadata: dict[str, Any], path: Path) -> tuple[Source, ...]:
    value = _require(metadata, path, "sources")
    if not isinstance(value, list) or not value:
        raise ContentError(path, "sources", "expected a non-empty list of sources")
    sources = []
    for index, entry in enumerate(value):
        field = f"sources[{index}]"
        if not isinstance(entry, dict):
            raise ContentError(path, field, f"expected a mapping with title, publisher, year, url; got {entry!r}")
        title = entry.get("title")
        if not isinstance(title, str) or not title.strip():
            raise ContentError(path, f"{field}.title", "missing")
        year = entry.get("year")
        if year is not None and not isinstance(year, int):
            raise ContentError(path, f"{field}.year", f"expected a year as a number, got {year!r}")
        url = entry.get("url")
        if url is not None and (not isinstance(url, str) or not url.startswith(("https://", "http://"))):
            raise ContentError(path, f"{field}.url", f"expected an http(s) URL, got {url!r}")
        publisher = entry.get("publisher")
        sources.append(Source(title=title.strip(), publisher=str(publisher) if publisher else None, year=year, url=url))
    return tuple(sources)


def _updated(metadata: dict[str, Any], path: Path) -> datetime.date:
    value = _require(metadata, path, "updated")
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value))
    except ValueError as error:
        raise ContentError(path, "updated", f"expected a date YYYY-MM-DD, got {value!r}") from error


def load_article(path: Path) -> Article:
    """Load and validate one article file; raise ContentError naming the field at fault."""
    try:
        raw = path.read_bytes()
        post = frontmatter.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ContentError(path, "(file)", f"not valid UTF-8: {error}") from error
    except yaml.YAMLError as error:
        raise ContentError(path, "(front matter)", f"invalid YAML: {error}") from error
    metadata = dict(post.metadata)
    if not metadata:
        raise ContentError(path, "(front matter)", "missing. The file must start with a '---' YAML block")

    article_id = _string(metadata, path, "id")
    if not ARTICLE_ID_PATTERN.match(article_id):
        raise ContentError(path, "id", f"{article_id!r} is not a lower-case slug such as 'plastic-packaging'")
    if article_id != path.stem:
        raise ContentError(path, "id", f"{article_id!r} differs from the file name {path.name!r}")

    language = _string(metadata, path, "language")
    if language not in SUPPORTED_LANGUAGES:
        raise ContentError(path, "language", f"{language!r} is not one of {list(SUPPORTED_LANGUAGES)}")
    if path.parent.name in SUPPORTED_LANGUAGES and path.parent.name != language:
        raise ContentError(path, "language", f"{language!r} differs from the folder {path.parent.name!r}")

    translations = _string_list(metadata, path, "translations", SUPPORTED_LANGUAGES)
    if language in translations:
        raise ContentError(path, "translations", f"lists the article's own language {language!r}")

    body = post.content.strip()
    if not body:
        raise ContentError(path, "(body)", "empty")

    related = _string_list(metadata, path, "related", required=False)
    bad_related = [item for item in related if not ARTICLE_ID_PATTERN.match(item)]
    if bad_related:
        raise ContentError(path, "related", f"invalid article id(s) {bad_related}")

    return Article(
        id=article_id,
        title=_string(metadata, path, "title"),
        language=language,
        body=body,
        translations=translations,
        topics=_string_list(metadata, path, "topics"),
        sectors=_string_list(metadata, path, "sectors", SECTORS),
        countries=_string_list(metadata, path, "countries", COUNTRIES, required=False),
        related=related,
        sources=_sources(metadata, path),
        updated=_updated(metadata, path),
        path=path,
        source_hash=hashlib.sha256(raw).hexdigest(),
    )


def article_paths(content_dir: Path) -> list[Path]:
    """Return the article files under ``content_dir/<language>/``, sorted."""
    return sorted(
        path
        for language in SUPPORTED_LANGUAGES
        for path in (content_dir / language).glob("*.md")
        if path.is_file() and not path.name.startswith(".")
    )


def load_articles(content_dir: Path, skip_invalid: bool = False) -> list[Article]:
    """Load every article under ``content_dir``.

    Raises ContentValidationError listing every invalid file, unless ``skip_invalid`` is
    set, in which case invalid files are logged and left out.
    """
    articles: list[Article] = []
    errors: list[ContentError] = []
    for path in article_paths(content_dir):
        try:
            articles.append(load_article(path))
        except ContentError as error:
            errors.append(error)
    if errors and not skip_invalid:
        raise ContentValidationError(errors)
    for problem in errors:
        logger.warning("Skipping invalid article: %s", problem)
    return articles


def count_words(text: str) -> int:
    """Count the words of ``text``, segmenting Khmer and Lao, which have no spaces."""
    from nlu.text import segment

    return len(segment(text))


def reference_problems(articles: Sequence[Article]) -> list[str]:
    """Return broken references across articles; the content check test fails on any.

    - a ``related`` id that exists neither in the article's language nor in English;
    - a ``translations`` entry naming a language version that does not exist;
    - a language version that exists but is missing from ``translations``.

    A missing ``sources`` or ``translations`` field is already an error of ``load_article``.
    """
    existing = {(article.id, article.language) for article in articles}
    languages_of: dict[str, set[str]] = {}
    for article in articles:
        languages_of.setdefault(article.id, set()).add(article.language)
    problems = []
    for article in articles:
        for related_id in article.related:
            if (related_id, article.language) not in existing and (related_id, "en") not in existing:
                problems.append(f"{article.path}: field 'related': {related_id!r} exists neither in {article.language} nor in en")
        for language in article.translations:
            if (article.id, language) not in existing:
                problems.append(f"{article.path}: field 'translations': no {language} version of {article.id!r}")
        unlisted = sorted(languages_of[article.id] - {article.language} - set(article.translations))
        if unlisted:
            problems.append(f"{article.path}: field 'translations': omits existing version(s) {unlisted}")
    return problems


def check_articles(articles: Sequence[Article]) -> list[str]:
    """Return content-guide problems across articles: broken links and body lengths.

    ``related`` ids must exist in the same language or in English, and each language in
    ``translations`` must have a version. Bodies should have MIN_WORDS to MAX_WORDS words
    (not checked for Vietnamese). These are warnings for writers, because retrieval works
    without them.
    """
    problems = reference_problems(articles)
    for article in articles:
        if article.language == "vi":
            continue  # Vietnamese separates syllables, not words, with spaces, so a count would mislead.
        words = count_words(article.body)
        if not MIN_WORDS <= words <= MAX_WORDS:
            problems.append(f"{article.path}: body has {words} words; the guide asks for {MIN_WORDS}-{MAX_WORDS}")
    return problems
