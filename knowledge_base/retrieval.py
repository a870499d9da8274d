"""Find the articles that answer a question, fusing dense and BM25 scores.

Fusion: a weighted sum of two scores that are each put on a 0-1 scale with fixed
constants, rather than reciprocal rank fusion. Ranks alone carry no confidence, and the
assistant has to decline questions that no article answers, so the fused score of the top
hit is used as the confidence and compared with the decline threshold. The constants
are in ``Calibration``; E5_CALIBRATION is for the multilingual-e5-small build.

- Dense: the cosine between the e5 "query: " and "passage: " embeddings, mapped
  linearly from [dense_floor, dense_ceiling] to [0, 1] and clipped. multilingual-e5
  gives unrelated texts cosines around 0.7-0.8, so the raw cosine is a poor confidence.
- Lexical: the BM25 score divided by the query's maximum possible score
  (``KnowledgeIndex.lexical_scores``), divided by lexical_full_match and clipped.

Results are per article: the article's score is that of its best chunk in any language.
The passage shown is the best chunk in the requested language when the article has a
version in it, otherwise its best English chunk, otherwise its best chunk in any language
(cross-language fallback).
Articles with a version in the requested language get SAME_LANGUAGE_BONUS for ranking.

The constants were tuned on the dev split of the evaluation questions
(``python -m knowledge_base.evaluate --split dev``).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Sequence
from typing import Literal

from bot.settings import SUPPORTED_LANGUAGES
from knowledge_base.index import ChunkRecord, KnowledgeIndex, lexical_tokens
from nlu.text import detect_language, normalize

logger = logging.getLogger(__name__)

Mode = Literal["fused", "dense", "lexical"]

#: Longer queries are cut to this many characters (after normalisation) before search.
MAX_QUERY_CHARS = 500
SAME_LANGUAGE_BONUS = 0.03
#: Language shown when an article has no version in the user's language but has one in this one.
FALLBACK_LANGUAGE = "en"


@dataclasses.dataclass(frozen=True)
class Calibration:
    """Constants that put dense and lexical scores on a 0-1 scale, and the decline thresholds."""

    dense_floor: float
    """Cosine that maps to 0, typical of unrelated texts for the model."""
    dense_ceiling: float
    """Cosine that maps to 1, typical of a passage that matches the query."""
    lexical_full_match: float
    """Normalised BM25 score that maps to 1."""
    dense_weight: float
    lexical_weight: float
    decline_below: dict[str, float]
    """Top scores below this are declined ("I am not sure"), per mode."""


#: Calibration for the multilingual-e5-small build.
E5_CALIBRATION = Calibration(
    dense_floor=0.82,
    dense_ceiling=0.92,
    lexical_full_match=0.4,
    dense_weight=0.4,
    lexical_weight=0.6,
    decline_below={"fused": 0.44, "dense": 0.35, "lexical": 0.5},
)


@dataclasses.dataclass(frozen=True)
class Hit:
    """One article that matches a query, with the chunk to show."""

    chunk_id: str
    article_id: str
    language: str
    title: str
    text: str
    score: float
    """Fused score of the article's best chunk in any language, in [0, 1], used as the confidence."""
    dense: float
    """Raw cosine of the shown chunk (0 when dense scoring is off)."""
    lexical: float
    """Normalised BM25 score of the shown chunk."""


def clean_query(query: object) -> str:
    """Return the normalised query cut to MAX_QUERY_CHARS, or "" when it has no letters.

    Control and zero-width characters are removed by ``nlu.text.normalize``. Input that
    is not a string, or has no letter in any script (emoji, digits, punctuation), gives "".
    """
    if not isinstance(query, str):
        return ""
    # Cut before normalising too, so a huge message costs no more than a long one.
    text = normalize(query[: MAX_QUERY_CHARS * 4])[:MAX_QUERY_CHARS].strip()
    if not any(char.isalpha() for char in text):
        return ""
    return text


def _scale(value: float, low: float, high: float) -> float:
    return min(1.0, max(0.0, (value - low) / (high - low)))


class Retriever:
    """Searches a KnowledgeIndex in one of three modes: fused, dense only or lexical only."""

    def __init__(
        self,
        index: KnowledgeIndex,
        mode: Mode = "fused",
        calibration: Calibration = E5_CALIBRATION,
        decline_below: float | None = None,
    ) -> None:
        self.index = index
        self.mode = mode
        self.calibration = calibration
        self.decline_below = calibration.decline_below[mode] if decline_below is None else decline_below

    def score(self, dense: float, lexical: float) -> float:
        """Return the calibrated score in [0, 1] of a chunk from its cosine and normalised BM25 score."""
        calibration = self.calibration
        dense_part = _scale(dense, calibration.dense_floor, calibration.dense_ceiling)
        lexical_part = min(1.0, lexical / calibration.lexical_full_match)
        if self.mode == "dense":
            return dense_part
        if self.mode == "lexical":
            return lexical_part
        return calibration.dense_weight * dense_part + calibration.lexical_weight * lexical_part

    def search(self, query: str, language: str | None = None, k: int = 5) -> list[Hit]:
        """Return up to ``k`` articles for ``query``, best first, one hit per article.

        ``language`` is the user's language. When it is None or unsupported, it is
        detected from the query. User input never makes it raise, and a query without
        letters returns [].
        """
        text = clean_query(query)
        if not text or k <= 0 or len(self.index) == 0:
            return []
        if language not in SUPPORTED_LANGUAGES:
            language = detect_language(text)

        dense: dict[int, float] = {}
        if self.mode != "lexical":
            vector = self.index.embedder.embed_queries([text])[0]
            dense = self.index.dense_scores(vector)
        lexical = self.index.lexical_scores(lexical_tokens(text)) if self.mode != "dense" else {}

        scored: dict[str, list[tuple[float, ChunkRecord]]] = {}
        for int_id in dense.keys() | lexical.keys():
            record = self.index.chunks.get(int_id)
            if record is None:  # Impossible while the index is consistent, but never show a stale id.
                continue
            chunk_score = self.score(dense.get(int_id, 0.0), lexical.get(int_id, 0.0))
            scored.setdefault(record.article_id, []).append((chunk_score, record))

        ranked = []
        for chunks in scored.values():
            best_score = max(score for score, _ in chunks)
            in_language = [item for item in chunks if item[1].language == language]
            in_english = [item for item in chunks if item[1].language == FALLBACK_LANGUAGE]
            shown_score, shown = max(in_language or in_english or chunks, key=lambda item: item[0])
            bonus = SAME_LANGUAGE_BONUS if in_language else 0.0
            hit = Hit(
                chunk_id=shown.chunk_id,
                article_id=shown.article_id,
                language=shown.language,
                title=shown.title,
                text=shown.text,
                score=round(best_score, 4),
                dense=round(dense.get(shown.int_id, 0.0), 4),
                lexical=round(lexical.get(shown.int_id, 0.0), 4),
            )
            ranked.append((best_score + bonus, shown_score, hit))
        ranked.sort(key=lambda item: (item[0], item[1]), reverse=True)
        return [hit for _, _, hit in ranked[:k]]

    def is_confident(self, hits: Sequence[Hit]) -> bool:
        """Return whether the top hit's score reaches the decline threshold."""
        return bool(hits) and hits[0].score >= self.decline_below


@functools.cache
def get_retriever() -> Retriever:
    """Return the process-wide fused retriever over the index named in the settings.

    NOTE: the index is read once per process, so a process started before
    ``python -m knowledge_base.index`` rebuilt it keeps serving the old version until restarted.
    """
    from knowledge_base.index import open_index

    index = open_index()
    if len(index) == 0:
        logger.warning("The knowledge-base index is empty. Run `python -m knowledge_base.index` to build it.")
    return Retriever(index)
