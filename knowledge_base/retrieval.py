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
For ranking, the article also gets CROSS_LANGUAGE_WEIGHT times the score of its second
best language version. A question that matches two language versions of an article is
more likely about it than one that matches a single version by chance.
The passage shown is the best chunk in the requested language when the article has a
version in it, otherwise its best English chunk, otherwise its best chunk in any language
(cross-language fallback).
Articles with a version in the requested language get SAME_LANGUAGE_BONUS for ranking.

Declining: the confidence is measured per query group (English, Vietnamese with
diacritics, Vietnamese without, Khmer, Lao), because the two signals separate answerable
from unanswerable questions differently by group. On the dev questions the best dense
cosine separated them well for English and accented Vietnamese, and the best lexical
score for Khmer and Lao, where multilingual-e5 gives unrelated texts high cosines. So the
confidence is ``share * dense_part + (1 - share) * lexical_part`` of the query's best
dense and best lexical chunk, with a share and a threshold per group (``GroupConfidence``),
plus ``agreement_bonus`` when the two signals agree: the best article by dense score is
among the AGREEMENT_TOP_K best by lexical score, or the other way round. On the dev
questions they agreed for 68-90% of answerable questions and 8-25% of unanswerable ones.

The constants were tuned on the dev split of the evaluation questions
(``python -m knowledge_base.evaluate --split dev``).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from bot.settings import SUPPORTED_LANGUAGES
from knowledge_base.index import ChunkRecord, KnowledgeIndex, KnowledgeIndexError, current_version, lexical_tokens
from nlu.text import detect_language, fold_diacritics, normalize

logger = logging.getLogger(__name__)

Mode = Literal["fused", "dense", "lexical"]

#: Longer queries are cut to this many characters (after normalisation) before search.
MAX_QUERY_CHARS = 500
SAME_LANGUAGE_BONUS = 0.03
CROSS_LANGUAGE_WEIGHT = 0.5
#: Ranks within which the dense and the lexical best article must appear to count as agreeing.
AGREEMENT_TOP_K = 3
#: Seconds between two checks of the index folder's CURRENT pointer by a hot-reloading Retriever.
RELOAD_CHECK_SECONDS = 5.0
#: Language shown when an article has no version in the user's language but has one in this one.
FALLBACK_LANGUAGE = "en"


@dataclasses.dataclass(frozen=True)
class GroupConfidence:
    """Confidence weights and decline threshold of the fused retriever for one query group."""

    dense_share: float
    """Weight of the best dense part in the confidence; the best lexical part gets the rest."""
    decline_below: float


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
    """Top scores below this are declined ("I am not sure"), per mode. For "fused" when a
    query group has no entry in ``groups``, and as the floor of a second passage."""
    groups: dict[str, GroupConfidence] = dataclasses.field(default_factory=dict)
    """Confidence per query group (``query_group``) for the fused mode."""
    agreement_bonus: float = 0.0
    """Added to the fused confidence when the dense and lexical best articles agree."""


#: Calibration for the multilingual-e5-small build.
E5_CALIBRATION = Calibration(
    dense_floor=0.80,
    dense_ceiling=0.92,
    lexical_full_match=0.4,
    dense_weight=0.5,
    lexical_weight=0.5,
    decline_below={"fused": 0.44, "dense": 0.35, "lexical": 0.5},
    # Each threshold is midway between the dev scores of an answerable and an unanswerable
    # question, and the bonus was chosen by repeated two-fold cross-validation on dev.
    groups={
        "en": GroupConfidence(dense_share=0.8, decline_below=0.528),
        "vi": GroupConfidence(dense_share=1.0, decline_below=0.605),
        "vi-nd": GroupConfidence(dense_share=0.1, decline_below=0.75),
        "km": GroupConfidence(dense_share=0.0, decline_below=0.551),
        "lo": GroupConfidence(dense_share=0.0, decline_below=0.698),
    },
    agreement_bonus=0.1,
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
    confidence: float = 0.0
    """Confidence that some article covers the query (the same value for every hit of a query)."""
    decline_below: float = 0.0
    """Threshold the confidence is compared with for this query."""


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


def query_group(text: str, language: str) -> str:
    """Return the calibration group of a query: its language, or "vi-nd" for Vietnamese without diacritics."""
    if language == "vi" and fold_diacritics(text) == text:
        return "vi-nd"
    return language


class Retriever:
    """Searches a KnowledgeIndex in one of three modes: fused, dense only or lexical only."""

    def __init__(
        self,
        index: KnowledgeIndex,
        mode: Mode = "fused",
        calibration: Calibration = E5_CALIBRATION,
        decline_below: float | None = None,
        index_dir: Path | None = None,
    ) -> None:
        """Search ``index``. ``decline_below`` replaces every calibrated threshold when given.

        With ``index_dir``, the retriever hot-reloads: at most every RELOAD_CHECK_SECONDS a
        search reads the folder's CURRENT pointer, and when another process saved a new
        version, loads it in a background thread and swaps it in once complete. Searches
        meanwhile use the old index, so a half-written index is never served.
        """
        self.index = index
        self.mode = mode
        self.calibration = calibration
        self._fixed_threshold = decline_below
        self.decline_below = calibration.decline_below[mode] if decline_below is None else decline_below
        self.index_dir = index_dir
        self._loaded_version = current_version(index_dir) if index_dir is not None else None
        self._next_check = time.monotonic() + RELOAD_CHECK_SECONDS
        self._reload_lock = threading.Lock()
        self._reloading: threading.Thread | None = None

    def threshold(self, group: str) -> tuple[float, float | None]:
        """Return (decline threshold, dense share) for a query group; the share is None without group calibration."""
        if self._fixed_threshold is not None:
            settings = self.calibration.groups.get(group) if self.mode == "fused" else None
            return self._fixed_threshold, settings.dense_share if settings else None
        settings = self.calibration.groups.get(group) if self.mode == "fused" else None
        if settings is None:
            return self.decline_below, None
        return settings.decline_below, settings.dense_share

    @staticmethod
    def _signals_agree(index: KnowledgeIndex, dense: dict[int, float], lexical: dict[int, float]) -> bool:
        """Return whether the best article by one signal is among the AGREEMENT_TOP_K best by the other."""

        def ranking(scores: dict[int, float]) -> list[str]:
            best: dict[str, float] = {}
            for int_id, score in scores.items():
                record = index.chunks.get(int_id)
                if record is not None and score > best.get(record.article_id, float("-inf")):
                    best[record.article_id] = score
            return sorted(best, key=best.__getitem__, reverse=True)

        by_dense, by_lexical = ranking(dense), ranking(lexical)
        if not by_dense or not by_lexical:
            return False
        return by_dense[0] in by_lexical[:AGREEMENT_TOP_K] or by_lexical[0] in by_dense[:AGREEMENT_TOP_K]

    # ----------------------------------------------------------------- hot reload

    def maybe_reload(self, wait: bool = False) -> bool:
        """Start loading a newer index version if CURRENT changed; return True when one was swapped in.

        Checks the pointer at most every RELOAD_CHECK_SECONDS unless ``wait`` is set, in which
        case it checks now and waits for the load to finish.
        """
        if self.index_dir is None:
            return False
        now = time.monotonic()
        if not wait and now < self._next_check:
            return False
        self._next_check = now + RELOAD_CHECK_SECONDS
        version = current_version(self.index_dir)
        if version is None or version == self._loaded_version:
            return False
        with self._reload_lock:
            if self._reloading is None or not self._reloading.is_alive():
                self._reloading = threading.Thread(target=self._reload, args=(version,), name="kb-index-reload", daemon=True)
                self._reloading.start()
            thread = self._reloading
        if wait:
            thread.join()
            return self._loaded_version == version
        return False

    def _reload(self, version: str) -> None:
        assert self.index_dir is not None
        try:
            fresh = KnowledgeIndex.load(self.index_dir, self.index.embedder, self.index.tokenizer_source)
            fresh.lexical_scores(["warm-up"])  # Build BM25 now rather than in the next search.
        except (KnowledgeIndexError, OSError) as error:
            logger.error("Could not reload the index version %s from %s: %s", version, self.index_dir, error)
            return
        self.index = fresh
        self._loaded_version = version
        logger.info("Reloaded the knowledge-base index version %s (%d chunks)", version, len(fresh))

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
        self.maybe_reload()
        index = self.index  # One index for the whole search, even if a reload swaps it meanwhile.
        if not text or k <= 0 or len(index) == 0:
            return []
        if language not in SUPPORTED_LANGUAGES:
            language = detect_language(text)
        group = query_group(text, language or "")

        dense: dict[int, float] = {}
        if self.mode != "lexical":
            vector = index.embedder.embed_queries([text])[0]
            dense = index.dense_scores(vector)
        lexical = index.lexical_scores(lexical_tokens(text)) if self.mode != "dense" else {}

        calibration = self.calibration
        threshold, dense_share = self.threshold(group)
        if dense_share is None:
            confidence = None
        else:
            best_dense = _scale(max(dense.values(), default=0.0), calibration.dense_floor, calibration.dense_ceiling)
            best_lexical = min(1.0, max(lexical.values(), default=0.0) / calibration.lexical_full_match)
            confidence = dense_share * best_dense + (1 - dense_share) * best_lexical
            if self._signals_agree(index, dense, lexical):
                confidence += calibration.agreement_bonus

        scored: dict[str, list[tuple[float, ChunkRecord]]] = {}
        for int_id in dense.keys() | lexical.keys():
            record = index.chunks.get(int_id)
            if record is None:  # Impossible while the index is consistent, but never show a stale id.
                continue
            chunk_score = self.score(dense.get(int_id, 0.0), lexical.get(int_id, 0.0))
            scored.setdefault(record.article_id, []).append((chunk_score, record))

        ranked = []
        for chunks in scored.values():
            best_score = max(score for score, _ in chunks)
            by_language: dict[str, float] = {}
            for score, record in chunks:
                by_language[record.language] = max(score, by_language.get(record.language, 0.0))
            second_language = sorted(by_language.values(), reverse=True)[1:2]
            cross_language = CROSS_LANGUAGE_WEIGHT * second_language[0] if second_language and self.mode == "fused" else 0.0
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
                decline_below=threshold,
            )
            ranked.append((best_score + cross_language + bonus, shown_score, hit))
        ranked.sort(key=lambda item: (item[0], item[1]), reverse=True)
        hits = [hit for _, _, hit in ranked[:k]]
        if hits:
            top = round(hits[0].score if confidence is None else confidence, 4)
            hits = [dataclasses.replace(hit, confidence=top) for hit in hits]
        return hits

    def is_confident(self, hits: Sequence[Hit]) -> bool:
        """Return whether the query's confidence reaches the decline threshold of its group."""
        return bool(hits) and hits[0].confidence >= hits[0].decline_below


@functools.cache
def get_retriever() -> Retriever:
    """Return the process-wide fused retriever over the index named in the settings.

    The retriever hot-reloads: an index saved by ``spin kb build``, ``spin kb add`` or
    ``spin kb remove`` in another process is picked up within RELOAD_CHECK_SECONDS.
    """
    from bot.settings import get_settings
    from knowledge_base.index import open_index

    index_dir = get_settings().resolved_index_dir
    index = open_index(index_dir)
    if len(index) == 0:
        logger.warning("The knowledge-base index is empty. Run `spin kb build` to build it.")
    return Retriever(index, index_dir=index_dir)
