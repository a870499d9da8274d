"""Add staff documents (Markdown, PDF, DOCX, HTML) to the index without rebuilding it.

``spin kb add FILE`` extracts the text, writes it as an article file under the import
folder (``var/kb-imports/<language>/<id>.md``, the same format as curated articles, see
docs/CONTENT_FORMAT.md), then chunks and embeds only that document and saves a new index
version. Because the import folder is part of every build, ``spin kb build`` keeps the
document, and the index always equals the content folder plus the import folder.

Re-adding a changed file with the same id replaces the document, re-embedding only the
chunks whose text changed. ``spin kb remove ID`` deletes the import file and the chunks.
Curated articles (``knowledge_base/content``) are changed through their files and
``spin kb build``, never here.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import frontmatter
import yaml

from bot.settings import SUPPORTED_LANGUAGES
from knowledge_base.content import ARTICLE_ID_PATTERN, ContentError, load_article
from knowledge_base.index import DocumentChange, KnowledgeIndex
from nlu.text import detect_language, fold_diacritics, normalize

logger = logging.getLogger(__name__)

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
PDF_SUFFIXES = frozenset({".pdf"})
DOCX_SUFFIXES = frozenset({".docx"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
SUPPORTED_SUFFIXES = MARKDOWN_SUFFIXES | PDF_SUFFIXES | DOCX_SUFFIXES | HTML_SUFFIXES
#: Larger files are refused: a staff document of this size is almost surely a scan or an archive.
MAX_FILE_BYTES = 30 * 1024 * 1024
#: A PDF whose text layer has fewer letters than this is treated as scanned (images only).
MIN_PDF_LETTERS = 40
#: Longest generated article id, so ids fit button payloads ("kb:article:<id>").
MAX_ID_CHARS = 48
#: Heading levels of Word's built-in "Heading N" styles that become Markdown headings.
MAX_HEADING_LEVEL = 6


class IngestError(ValueError):
    """A document that cannot be added. The message names the file and the fix."""


@dataclasses.dataclass(frozen=True)
class ExtractedDocument:
    """Text and metadata taken from one staff file, ready to be written as an article."""

    article_id: str
    language: str
    title: str
    body: str
    """Markdown body."""
    metadata: dict[str, Any]
    """Front matter to write (from a Markdown file's own front matter, else defaults)."""
    source_file: Path


@dataclasses.dataclass(frozen=True)
class AddResult:
    """Outcome of adding one file."""

    path: Path
    document_id: str
    replaced: bool
    change: DocumentChange


def slugify(text: str) -> str:
    """Return a lower-case ASCII article id made from ``text`` (a file name), or "" if none is left."""
    plain = fold_diacritics(normalize(text)).lower()
    slug = re.sub(r"[^a-z0-9]+", "-", plain).strip("-")
    return slug[:MAX_ID_CHARS].strip("-")


def _pdf_text(path: Path) -> tuple[str, str | None]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            raise IngestError(f"{path}: the PDF is encrypted. Save an unprotected copy and add that.")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = reader.metadata.title if reader.metadata is not None else None
    except PdfReadError as error:
        raise IngestError(f"{path}: not a readable PDF ({error}). Check that the file is complete.") from error
    letters = sum(char.isalpha() for page in pages for char in page)
    if letters < MIN_PDF_LETTERS:
        raise IngestError(
            f"{path}: the PDF has no text layer ({len(pages)} page(s), {letters} letters of text), "
            "so it is probably a scan. Run it through OCR (for example ocrmypdf) or add the text as a "
            "Markdown or Word file."
        )
    paragraphs = []
    for page in pages:
        # Lines within a paragraph are joined; blank lines and page ends separate paragraphs.
        for block in re.split(r"\n\s*\n", page):
            joined = " ".join(line.strip() for line in block.splitlines() if line.strip())
            if joined:
                paragraphs.append(joined)
    return "\n\n".join(paragraphs), title if isinstance(title, str) and title.strip() else None


def _docx_text(path: Path) -> tuple[str, str | None]:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, KeyError, ValueError) as error:
        raise IngestError(f"{path}: not a readable .docx file ({error}). Save it again from Word as .docx.") from error
    blocks = []
    for paragraph in document.paragraphs:
        text = paragraph.text.strip()
        if not text:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        match = re.match(r"Heading (\d)", style)
        if match:
            blocks.append("#" * min(MAX_HEADING_LEVEL, int(match.group(1)) + 1) + " " + text)
        elif style == "Title":
            blocks.append("# " + text)
        elif style.startswith("List"):
            blocks.append("- " + text)
        else:
            blocks.append(text)
    for table in document.tables:
        for row in table.rows:
            cells = [cell.text.strip() for cell in row.cells if cell.text.strip()]
            if cells:
                blocks.append(" | ".join(cells))
    title = document.core_properties.title
    return "\n\n".join(blocks), title.strip() if title and title.strip() else None


def _html_text(path: Path) -> tuple[str, str | None]:
    import trafilatura

    html = path.read_bytes().decode("utf-8", errors="replace")
    text = trafilatura.extract(html, output_format="markdown", include_tables=True, include_comments=False)
    if not text or not text.strip():
        raise IngestError(f"{path}: no main text found in the HTML page. Save the article text itself, not a menu or index page.")
    metadata = trafilatura.extract_metadata(html)
    title = metadata.title if metadata is not None and metadata.title else None
    return text, title


def _markdown_text(path: Path) -> tuple[str, dict[str, Any]]:
    try:
        post = frontmatter.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as error:
        raise IngestError(f"{path}: not valid UTF-8 ({error}). Save the file as UTF-8.") from error
    except yaml.YAMLError as error:
        raise IngestError(f"{path}: invalid YAML front matter ({error}).") from error
    return post.content, dict(post.metadata)


def _first_heading(body: str) -> str | None:
    match = re.search(r"^#{1,6}\s+(.+?)\s*#*\s*$", body, re.MULTILINE)
    return match.group(1).strip() if match else None


def extract(
    path: Path, language: str | None = None, article_id: str | None = None, title: str | None = None
) -> ExtractedDocument:
    """Read ``path`` and return its text with id, language and title.

    Explicit arguments win over a Markdown file's front matter, which wins over what is
    found in the file (document title, first heading, file name, detected language).
    """
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise IngestError(f"{path}: unsupported file type {suffix!r}. Supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}.")
    if not path.is_file():
        raise IngestError(f"{path}: no such file.")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise IngestError(f"{path}: {size} bytes is over the {MAX_FILE_BYTES}-byte limit. Split the document.")

    metadata: dict[str, Any] = {}
    found_title: str | None
    if suffix in MARKDOWN_SUFFIXES:
        body, metadata = _markdown_text(path)
        found_title = metadata.get("title") if isinstance(metadata.get("title"), str) else None
    elif suffix in PDF_SUFFIXES:
        body, found_title = _pdf_text(path)
    elif suffix in DOCX_SUFFIXES:
        body, found_title = _docx_text(path)
    else:
        body, found_title = _html_text(path)
    body = normalize_body(body)
    if not any(char.isalpha() for char in body):
        raise IngestError(f"{path}: the document contains no text.")

    front_language = metadata.get("language") if isinstance(metadata.get("language"), str) else None
    language = language or front_language or detect_language(body)
    if language not in SUPPORTED_LANGUAGES:
        raise IngestError(
            f"{path}: language {language!r} is not one of {list(SUPPORTED_LANGUAGES)}; give it with --lang."
            if language
            else f"{path}: cannot tell the document's language; give it with --lang ({', '.join(SUPPORTED_LANGUAGES)})."
        )
    article_id = article_id or (metadata.get("id") if isinstance(metadata.get("id"), str) else None) or slugify(path.stem)
    if not article_id or not ARTICLE_ID_PATTERN.match(article_id) or len(article_id) > MAX_ID_CHARS:
        raise IngestError(
            f"{path}: {article_id!r} is not a usable article id. Give one with --id, a lower-case slug "
            f"such as 'buyer-checklist-2027' of at most {MAX_ID_CHARS} characters."
        )
    final_title = (title or found_title or _first_heading(body) or path.stem.replace("_", " ")).strip()
    return ExtractedDocument(article_id, language, normalize(final_title), body, metadata, path)


def normalize_body(text: str) -> str:
    """Return ``text`` in NFC line by line, without zero-width characters, with at most one blank line in a row."""
    lines = [normalize(line) if line.strip() else "" for line in text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def import_path(import_dir: Path, language: str, article_id: str) -> Path:
    return import_dir / language / f"{article_id}.md"


def write_import(document: ExtractedDocument, import_dir: Path) -> Path:
    """Write ``document`` as an article file in the import folder, atomically, and return its path."""
    metadata = {
        "translations": [],
        "topics": [],
        "sectors": ["all"],
        "sources": [{"title": document.title}],
        **document.metadata,
        "id": document.article_id,
        "title": document.title,
        "language": document.language,
        "imported_from": document.source_file.name,
        "updated": document.metadata.get("updated") or datetime.date.today(),
    }
    if document.language in metadata["translations"]:
        metadata["translations"] = [code for code in metadata["translations"] if code != document.language]
    target = import_path(import_dir, document.language, document.article_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = frontmatter.dumps(frontmatter.Post(document.body, **metadata), sort_keys=False) + "\n"
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".md", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def add_file(
    path: Path,
    index: KnowledgeIndex,
    import_dir: Path,
    content_dir: Path,
    language: str | None = None,
    article_id: str | None = None,
    title: str | None = None,
) -> AddResult:
    """Extract ``path``, write it to the import folder and add or replace it in ``index`` (not saved).

    On an error nothing is changed: the import file is restored when indexing fails.
    """
    document = extract(path, language, article_id, title)
    curated = content_dir / document.language / f"{document.article_id}.md"
    if curated.exists():
        raise IngestError(
            f"{path}: id {document.article_id!r} belongs to the curated article {curated}. Choose another id with --id."
        )
    target = import_path(import_dir, document.language, document.article_id)
    previous = target.read_bytes() if target.exists() else None
    written = write_import(document, import_dir)
    try:
        article = load_article(written)
        replaced = article.document_id in index.documents
        change = index.replace_document(article)
    except Exception as error:
        if previous is None:
            written.unlink(missing_ok=True)
        else:
            written.write_bytes(previous)
        if isinstance(error, ContentError):
            raise IngestError(f"{path}: {error.message} (field {error.field}).") from error
        raise
    logger.info(
        "Indexed %s as %s: %d chunks embedded, %d kept, %d removed",
        path.name, article.document_id, change.added, change.kept, change.removed,
    )  # fmt: skip
    return AddResult(path, article.document_id, replaced, change)


def supported_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """Return (supported files, other files) under ``folder``, recursively, hidden files left out."""
    supported: list[Path] = []
    other: list[Path] = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        (supported if path.suffix.lower() in SUPPORTED_SUFFIXES else other).append(path)
    return supported, other


def add_paths(
    paths: Sequence[Path],
    index: KnowledgeIndex,
    import_dir: Path,
    content_dir: Path,
    language: str | None = None,
    article_id: str | None = None,
    title: str | None = None,
    on_file: Callable[[Path, AddResult | IngestError], None] | None = None,
) -> tuple[list[AddResult], list[IngestError]]:
    """Add every file in ``paths`` (folders expanded); return the results and the per-file errors.

    ``article_id`` and ``title`` apply only when a single file is given.
    """
    files: list[Path] = []
    for path in paths:
        files.extend(supported_files(path)[0] if path.is_dir() else [path])
    if len(files) > 1 and (article_id or title):
        raise IngestError("--id and --title name one document; give a single file with them, not several or a folder.")
    results: list[AddResult] = []
    errors: list[IngestError] = []
    for path in files:
        outcome: AddResult | IngestError
        try:
            outcome = add_file(path, index, import_dir, content_dir, language, article_id, title)
            results.append(outcome)
        except IngestError as error:
            outcome = error
            errors.append(error)
        if on_file is not None:
            on_file(path, outcome)
    return results, errors


def remove(article_id: str, index: KnowledgeIndex, import_dir: Path, language: str | None = None) -> list[str]:
    """Remove an imported document (every language, or only ``language``) from the import folder and ``index``.

    Returns the removed document ids; raises IngestError when nothing matches.
    """
    languages = [language] if language else list(SUPPORTED_LANGUAGES)
    removed = []
    for code in languages:
        path = import_path(import_dir, code, article_id)
        document_id = f"{article_id}.{code}"
        if not path.exists() and document_id not in index.documents:
            continue
        if not path.exists():
            raise IngestError(
                f"{document_id} is a curated article, not an added document. Delete its file under "
                "knowledge_base/content and run `spin kb build`."
            )
        path.unlink()
        index.remove_document(document_id)
        removed.append(document_id)
    if not removed:
        where = f" in {language}" if language else ""
        raise IngestError(f"No added document with id {article_id!r}{where}. Added documents are the files under {import_dir}.")
    return removed
