"""Split article bodies into passages that fit the embedding model's 512-token input.

Bodies are turned into plain text (headings, paragraphs and list items, without inline
Markdown), split into sentences and packed into chunks of about TARGET_TOKENS tokens.
A chunk that continues a section repeats about OVERLAP_TOKENS tokens from the end of the
previous chunk. A chunk starts afresh at a heading once the current chunk contains at least
MIN_SECTION_TOKENS tokens. The article title, and the heading in force, are put in front
of each passage when it is embedded. Tokens are counted with the model's own tokenizer.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import re
from collections.abc import Sequence
from pathlib import Path

from tokenizers import Tokenizer

from knowledge_base.content import Article

logger = logging.getLogger(__name__)

#: Input limit of multilingual-e5-small, including <s> and </s>. Longer input is truncated.
MODEL_MAX_TOKENS = 512
TARGET_TOKENS = 300
OVERLAP_TOKENS = 40
MIN_SECTION_TOKENS = 150
#: Prompt that sentence-transformers puts in front of every passage (counted in the limit).
PASSAGE_PROMPT = "passage: "
_SPECIAL_TOKENS = 2
#: Tokens kept free because a joined chunk can tokenize a few tokens longer than its parts.
_SAFETY_MARGIN = 8

_HEADING = re.compile(r"^#{1,6}\s+(?P<text>.+?)\s*#*\s*$")
_BOLD_LINE_HEADING = re.compile(r"^\*\*(?P<text>[^*]+?)\*\*\s*[:：]?\s*$")
_LIST_ITEM = re.compile(r"^(?P<indent>\s*)(?P<marker>[-*+•]|\d{1,3}[.)])\s+(?P<text>.*)$")
#: End of a sentence: . ! ? or … before a space, or the Khmer signs ។ and ៕ anywhere,
#: with any closing quotes or brackets that follow.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)|[។៕]+[\"'”’)\]]*")
#: A numbered item's number, which the sentence-end pattern would split off as a sentence.
_ITEM_NUMBER = re.compile(r"\s*\d{1,3}[.)]")
#: Version of the rules that split text into sentences; a change re-chunks every index.
SENTENCE_RULES_VERSION = 2
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[(?P<text>[^\]]+)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|\*|`)(?P<text>\S(?:.*?\S)?)\1")
#: Underscore emphasis only outside words, so snake_case_names stay intact.
_UNDERSCORE_EMPHASIS = re.compile(r"(?<!\w)(__|_)(?P<text>\S(?:.*?\S)?)\1(?!\w)")
_HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")


@dataclasses.dataclass(frozen=True)
class Chunk:
    """A passage of one article language version, as stored in the index."""

    id: str
    """Stable id ``<article id>.<language>#<position>``."""
    article_id: str
    language: str
    title: str
    section: str
    """Heading in force where the chunk starts, or "" when the chunk starts before any heading."""
    text: str
    """Plain text of the passage, including the overlap with the previous chunk."""
    overlap_chars: int
    """Length of the leading part of ``text`` repeated from the previous chunk."""
    position: int
    token_count: int
    """Tokens the model receives for this chunk: prompt, title, section, text and special tokens."""

    @property
    def document_id(self) -> str:
        return f"{self.article_id}.{self.language}"

    @property
    def new_text(self) -> str:
        """The passage without the part repeated from the previous chunk."""
        return self.text[self.overlap_chars :].lstrip()

    @property
    def embedding_text(self) -> str:
        """The text that is embedded: title, then the section heading unless the text starts with it."""
        lines = [self.title]
        if self.section and not self.text.startswith(self.section):
            lines.append(self.section)
        lines.append(self.text)
        return "\n".join(lines)

    @property
    def content_hash(self) -> str:
        """sha256 of ``embedding_text``. A chunk is re-embedded only when this changes."""
        return hashlib.sha256(self.embedding_text.encode("utf-8")).hexdigest()


@dataclasses.dataclass
class _Unit:
    """A sentence, list-item piece or heading, with the separator that goes before it."""

    text: str
    separator: str
    is_heading: bool
    section: str
    tokens: int = 0


@functools.cache
def load_tokenizer(model_folder: str) -> Tokenizer:
    """Load ``tokenizer.json`` from a model folder (or the file itself), once per process."""
    path = Path(model_folder)
    if path.is_dir():
        path = path / "tokenizer.json"
    return Tokenizer.from_file(str(path))


def count_tokens(tokenizer: Tokenizer, text: str) -> int:
    """Return the tokens of ``text`` without special tokens."""
    return len(tokenizer.encode(text, add_special_tokens=False).ids)


def passage_token_count(tokenizer: Tokenizer, embedding_text: str) -> int:
    """Return the tokens the model receives for a passage: prompt, text and special tokens."""
    return count_tokens(tokenizer, PASSAGE_PROMPT + embedding_text) + _SPECIAL_TOKENS


def plain_inline(text: str) -> str:
    """Remove inline Markdown (emphasis, code marks, links, images, HTML tags) from one line."""
    text = _IMAGE.sub("", text)
    text = _LINK.sub(r"\g<text>", text)
    text = _HTML_TAG.sub("", text)
    previous = None
    while previous != text:  # Nested emphasis such as ***x*** needs more than one pass.
        previous = text
        text = _EMPHASIS.sub(r"\g<text>", text)
        text = _UNDERSCORE_EMPHASIS.sub(r"\g<text>", text)
    return text.strip()


def split_sentences(text: str) -> list[str]:
    """Split text after . ! ? … and the Khmer signs ។ ៕. Lao text without punctuation stays whole.

    The number that opens a numbered item ("8. Reuse ...") stays with its text, so a
    chunk never ends on a bare "8.".
    """
    sentences = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        if _ITEM_NUMBER.fullmatch(text[start : match.end()]):
            continue
        sentences.append(text[start : match.end()])
        start = match.end()
    sentences.append(text[start:])
    return [sentence.strip() for sentence in sentences if sentence.strip()]


def _blocks(body: str) -> list[tuple[str, str]]:
    """Return (kind, text) blocks of a Markdown body: heading, paragraph or item."""
    blocks: list[tuple[str, str]] = []
    kind = ""
    lines: list[str] = []

    def flush() -> None:
        nonlocal kind, lines
        if lines:
            blocks.append((kind, " ".join(lines)))
        kind, lines = "", []

    for raw_line in body.splitlines():
        line = raw_line.strip()
        if not line or (set(line) <= set("-*_=") and len(line) >= 3):  # Blank line or horizontal rule.
            flush()
            continue
        heading = _HEADING.match(line) or _BOLD_LINE_HEADING.match(line)
        item = _LIST_ITEM.match(raw_line)
        if heading:
            flush()
            blocks.append(("heading", plain_inline(heading.group("text"))))
        elif item:
            flush()
            marker = "-" if item.group("marker") in "-*+•" else item.group("marker")
            kind, lines = "item", [f"{marker} {item.group('text').strip()}"]
        else:
            if kind == "":
                kind = "paragraph"
            lines.append(line.lstrip("> ").strip() if line.startswith(">") else line)
    flush()
    return [(kind, plain_inline(text)) for kind, text in blocks if plain_inline(text)]


def _units(body: str) -> list[_Unit]:
    units: list[_Unit] = []
    section = ""
    previous_kind = ""
    for kind, text in _blocks(body):
        if kind == "heading":
            section = text
            units.append(_Unit(text, "\n\n", True, section))
        else:
            first_separator = "\n" if kind == "item" and previous_kind in ("item", "heading") else "\n\n"
            if previous_kind == "heading":
                first_separator = "\n"
            for index, sentence in enumerate(split_sentences(text)):
                units.append(_Unit(sentence, first_separator if index == 0 else " ", False, section))
        previous_kind = kind
    return units


def _split_by_tokens(tokenizer: Tokenizer, text: str, limit: int) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` tokens, preferring breaks at spaces."""
    offsets = tokenizer.encode(text, add_special_tokens=False).offsets
    pieces = []
    start_token = 0
    while start_token < len(offsets):
        end_token = min(start_token + limit, len(offsets))
        start_char = offsets[start_token][0]
        if end_token == len(offsets):
            end_char = len(text)
        else:
            end_char = offsets[end_token][0]
            space = text.rfind(" ", start_char, end_char)
            if space > start_char + (end_char - start_char) // 2:
                end_char = space + 1
                end_token = next(i for i in range(start_token + 1, end_token + 1) if offsets[i][0] >= end_char)
        piece = text[start_char:end_char].strip()
        if piece:
            pieces.append(piece)
        start_token = end_token
    return pieces


def _tail_by_tokens(tokenizer: Tokenizer, text: str, limit: int) -> str:
    """Return the last ``limit`` tokens of ``text``, starting at a word boundary when there is one."""
    offsets = tokenizer.encode(text, add_special_tokens=False).offsets
    if len(offsets) <= limit:
        return text
    start_char = offsets[len(offsets) - limit][0]
    space = text.find(" ", start_char)
    if space != -1 and space < len(text) - 1:
        start_char = space + 1
    return text[start_char:].strip()


def _join(units: Sequence[_Unit]) -> str:
    text = "".join(unit.separator + unit.text for unit in units)
    return text.strip()


def chunk_article(
    article: Article,
    tokenizer: Tokenizer,
    target_tokens: int = TARGET_TOKENS,
    overlap_tokens: int = OVERLAP_TOKENS,
    max_tokens: int = MODEL_MAX_TOKENS,
) -> list[Chunk]:
    """Split ``article`` into chunks of about ``target_tokens`` body tokens.

    Every chunk fits ``max_tokens`` with its prompt and title prefix, unless the title
    alone nearly fills it. Such a chunk is still returned, and a warning is logged
    because the model would truncate it.
    """
    units = _units(article.body)
    longest_section = max((unit.section for unit in units), key=len, default="")
    prefix_tokens = passage_token_count(tokenizer, f"{article.title}\n{longest_section}\n")
    body_limit = max(16, min(target_tokens, max_tokens - prefix_tokens - _SAFETY_MARGIN))

    if units:
        encodings = tokenizer.encode_batch([unit.text for unit in units], add_special_tokens=False)
        for unit, encoding in zip(units, encodings, strict=True):
            unit.tokens = len(encoding.ids)
    sized: list[_Unit] = []
    for unit in units:
        if unit.tokens <= body_limit:
            sized.append(unit)
            continue
        for index, piece in enumerate(_split_by_tokens(tokenizer, unit.text, body_limit)):
            separator = unit.separator if index == 0 else " "
            sized.append(_Unit(piece, separator, unit.is_heading, unit.section, count_tokens(tokenizer, piece)))

    groups: list[tuple[list[_Unit], int]] = []  # (units, characters of overlap at the start)
    current: list[_Unit] = []
    current_overlap = 0
    current_tokens = 0
    for unit in sized:
        full = current_tokens + unit.tokens > body_limit
        section_break = unit.is_heading and current_tokens >= MIN_SECTION_TOKENS
        if current and (full or section_break) and not all(item.is_heading for item in current):
            carried: list[_Unit] = []
            while current and current[-1].is_heading:  # A heading belongs with the text after it.
                carried.insert(0, current.pop())
            groups.append((current, current_overlap))
            if carried or unit.is_heading:
                current, current_overlap = carried, 0
            else:
                current, current_overlap = _overlap(tokenizer, current, overlap_tokens)
                if sum(item.tokens for item in current) + unit.tokens > body_limit:
                    current, current_overlap = [], 0
            current_tokens = sum(item.tokens for item in current)
        current.append(unit)
        current_tokens += unit.tokens
    if current:
        groups.append((current, current_overlap))

    chunks = []
    for position, (group, overlap_chars) in enumerate(groups):
        first = group[0]
        chunk = Chunk(
            id=f"{article.id}.{article.language}#{position}",
            article_id=article.id,
            language=article.language,
            title=article.title,
            section=first.section if not first.is_heading else "",
            text=_join(group),
            overlap_chars=overlap_chars,
            position=position,
            token_count=0,
        )
        token_count = passage_token_count(tokenizer, chunk.embedding_text)
        chunk = dataclasses.replace(chunk, token_count=token_count)
        if token_count > max_tokens:
            logger.warning(
                "Chunk %s has %d tokens and will be truncated to the model's %d (file %s)",
                chunk.id, token_count, max_tokens, article.path,
            )  # fmt: skip
        chunks.append(chunk)
    return chunks


def _overlap(tokenizer: Tokenizer, previous: Sequence[_Unit], overlap_tokens: int) -> tuple[list[_Unit], int]:
    """Return the units that start the next chunk by repeating the end of ``previous``.

    Whole trailing sentences are repeated while they fit ``overlap_tokens``. When the
    last sentence alone is longer, only its last ``overlap_tokens`` tokens are repeated.
    Returns the units and the length in characters of their joined text.
    """
    if overlap_tokens <= 0:
        return [], 0
    repeated: list[_Unit] = []
    total = 0
    for unit in reversed(previous):
        if unit.is_heading or total + unit.tokens > overlap_tokens:
            break
        repeated.insert(0, dataclasses.replace(unit))
        total += unit.tokens
    if not repeated and previous and not previous[-1].is_heading:
        last = previous[-1]
        tail = _tail_by_tokens(tokenizer, last.text, overlap_tokens)
        repeated = [_Unit(tail, "", False, last.section, count_tokens(tokenizer, tail))]
    if not repeated:
        return [], 0
    repeated[0].separator = ""
    return repeated, len(_join(repeated))
