"""Find the articles that answer a question, fusing dense and BM25 scores.

Fusion: a weighted sum of two scores that are each put on a 0-1 scale with fixed
constants, rather than reciprocal rank fusion. Ranks alone carry no confidence, and the
assistant has to decline questions that no article answers, so the scores stay on a
fixed scale that the decline rule (below) can use. The constants are in ``Calibration``;
E5_CALIBRATION is for the multilingual-e5-small build. The dense-only and lexical-only
modes, kept as baselines, decline by the top hit's score.

- Dense: the cosine between the e5 "query: " and "passage: " embeddings, mapped
  linearly from [dense_floor, dense_ceiling] to [0, 1] and clipped. multilingual-e5
  gives unrelated texts cosines around 0.7-0.8, so the raw cosine is a poor confidence.
- Lexical: the BM25 score divided by the query's maximum possible score
  (``KnowledgeIndex.lexical_scores``), divided by lexical_full_match and clipped.

Results are per article: the article's score is that of its best chunk in any language.
For ranking, each language version of an article scores the sum of its chunk scores, best
first, each weighted CHUNK_DECAY times the one before (1, 0.5, 0.25, ...). An article with
several passages about the question is more likely to be about it than one with a single
passage that shares a few words or a nearby topic. With the decay of 0.5 the sum is at
most twice the best chunk's score, so a long document gains little from its length. The
article also gets CROSS_LANGUAGE_WEIGHT times the ranking score of its second best
language version. A question that matches two language versions of an article is more likely
about it than one that matches a single version by chance.
The passage shown is the best chunk in the requested language when the article has a
version in it, otherwise its best English chunk, otherwise its best chunk in any language
(cross-language fallback).
Articles with a version in the requested language get SAME_LANGUAGE_BONUS for ranking.

Declining: a logistic model (``DeclineModel``) estimates the probability that an article
answers the query from three signals of the evidence article, the one ranked first by its
best chunk alone (without CHUNK_DECAY's sum): the cosine of its best chunk, the normalised
BM25 score of its best chunk, and whether the dense and the lexical rankings agree (the
best article by one is among the AGREEMENT_TOP_K best by the other).
The intercept and the two score weights are per query group (English, Vietnamese with
diacritics, Vietnamese without, Khmer, Lao), because the signals separate answerable from
unanswerable questions differently by group. On the dev questions the cosine did well for
English and accented Vietnamese. BM25 did well for Khmer and Lao, where multilingual-e5
gives unrelated texts high cosines. The agreement weight and the decline threshold are shared.
The query is declined when the probability is below the threshold.

The model is fitted on the dev split of the evaluation questions by
``spin kb calibrate --write`` (``knowledge_base.calibrate``) and stored in
``decline_model.json`` beside this module, with the fingerprint of the encoder it was
fitted with. Cosines move when the encoder changes (another model, quantised weights),
so refit after such a change. The retriever logs a warning when the fingerprints differ.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
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
#: Weight of each further chunk of a language version relative to the one before, in the ranking score.
CHUNK_DECAY = 0.5
#: Ranks within which the dense and the lexical best article must appear to count as agreeing.
AGREEMENT_TOP_K = 3
#: Seconds between two checks of the index folder's CURRENT pointer by a hot-reloading Retriever.
RELOAD_CHECK_SECONDS = 5.0
#: Language shown when an article has no version in the user's language but has one in this one.
FALLBACK_LANGUAGE = "en"
#: Decline model fitted by ``spin kb calibrate --write``.
DECLINE_MODEL_FILE = Path(__file__).with_name("decline_model.json")


class DeclineModelError(ValueError):
    """An invalid decline model file. The message names the file and the fix."""


@dataclasses.dataclass(frozen=True)
class QuerySignals:
    """Signals of one fused search that the decline model turns into a probability."""

    group: str
    """Query group (``query_group``)."""
    top_dense: float
    """Cosine of the best chunk of the evidence article (``Retriever.search_with_signals``), in any language."""
    top_lexical: float
    """Normalised BM25 score of the best chunk of the evidence article, 0 without a word match."""
    agree: bool
    """Whether the best article by dense score is among the AGREEMENT_TOP_K best by BM25, or the other way round."""


@dataclasses.dataclass(frozen=True)
class GroupDecline:
    """Logistic coefficients of one query group: the log-odds are intercept + dense × cosine + lexical × BM25."""

    intercept: float
    dense: float
    lexical: float


@dataclasses.dataclass(frozen=True)
class DeclineModel:
    """Logistic model of the probability that an article answers a query, and the decline threshold."""

    groups: dict[str, GroupDecline]
    agreement: float
    """Added to the log-odds when the dense and lexical rankings agree."""
    threshold: float
    """Queries whose probability is below this are declined."""
    encoder: str = ""
    """Fingerprint of the embedding model the coefficients were fitted with ("" when unknown)."""
    fallback_group: str = "en"
    """Group whose coefficients serve queries of a group the model lacks (undetected language)."""
    fit: dict[str, object] = dataclasses.field(default_factory=dict)
    """Fit record (date, number of questions, cross-validation estimates), not used for declining."""

    def probability(self, signals: QuerySignals) -> float:
        """Return the probability in [0, 1] that some article answers the query."""
        coefficients = self.groups.get(signals.group) or self.groups[self.fallback_group]
        log_odds = (
            coefficients.intercept
            + coefficients.dense * signals.top_dense
            + coefficients.lexical * signals.top_lexical
            + (self.agreement if signals.agree else 0.0)
        )
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, log_odds))))

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: object, source: str = "decline model") -> DeclineModel:
        """Build a model from ``to_dict`` output. Raise DeclineModelError naming ``source`` and the fault."""
        fix = "Refit it with `spin kb calibrate --write`."
        if not isinstance(data, dict):
            raise DeclineModelError(f"{source}: expected a JSON object, got {type(data).__name__}. {fix}")
        try:
            groups = {name: GroupDecline(**{key: float(value) for key, value in entry.items()})
                      for name, entry in data["groups"].items()}  # fmt: skip
            model = cls(
                groups=groups,
                agreement=float(data["agreement"]),
                threshold=float(data["threshold"]),
                encoder=str(data.get("encoder", "")),
                fallback_group=str(data.get("fallback_group", "en")),
                fit=dict(data.get("fit", {})),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise DeclineModelError(f"{source}: invalid or missing field ({error!r}). {fix}") from error
        if model.fallback_group not in model.groups:
            raise DeclineModelError(f"{source}: fallback group {model.fallback_group!r} has no coefficients. {fix}")
        if not 0.0 < model.threshold < 1.0:
            raise DeclineModelError(f"{source}: threshold {model.threshold} is not a probability in (0, 1). {fix}")
        return model


def load_decline_model(path: Path = DECLINE_MODEL_FILE) -> DeclineModel | None:
    """Load the decline model from ``path``; return None (with a warning) when the file is missing.

    Raise DeclineModelError when the file exists but is invalid.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        logger.warning(
            "Decline model %s not found: fused search declines by its fused score instead. "
            "Run `spin kb calibrate --write` to fit it.",
            path,
        )
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise DeclineModelError(f"{path}: invalid JSON: {error}. Refit it with `spin kb calibrate --write`.") from error
    return DeclineModel.from_dict(data, str(path))


@dataclasses.dataclass(frozen=True)
class Calibration:
    """Constants that put dense and lexical scores on a 0-1 scale, and the decline rule."""

    dense_floor: float
    """Cosine that maps to 0, typical of unrelated texts for the model."""
    dense_ceiling: float
    """Cosine that maps to 1, typical of a passage that matches the query."""
    lexical_full_match: float
    """Normalised BM25 score that maps to 1."""
    dense_weight: float
    lexical_weight: float
    decline_below: dict[str, float]
    """Top scores below this are declined ("I am not sure"), per mode. For "fused" only
    without a decline model. Also the floor of a second passage in a reply."""
    decline_model: DeclineModel | None = None
    """Decline rule of the fused mode; None declines by the fused score and ``decline_below``."""


#: Calibration for the multilingual-e5-small build. The ranking constants were tuned on the
#: dev questions; the decline model is fitted by ``spin kb calibrate``.
E5_CALIBRATION = Calibration(
    dense_floor=0.80,
    dense_ceiling=0.92,
    lexical_full_match=0.4,
    dense_weight=0.5,
    lexical_weight=0.5,
    decline_below={"fused": 0.44, "dense": 0.35, "lexical": 0.5},
    decline_model=load_decline_model(),
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
    """Score of the article's best chunk in any language, in [0, 1] (fused, dense or lexical by mode)."""
    dense: float
    """Raw cosine of the shown chunk (0 when dense scoring is off)."""
    lexical: float
    """Normalised BM25 score of the shown chunk."""
    confidence: float = 0.0
    """Confidence that some article covers the query (the same value for every hit of a query): the
    decline model's probability in fused mode, else the first hit's score."""
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


def article_score(chunks: Sequence[tuple[float, ChunkRecord]], decay: float, cross_weight: float) -> float:
    """Return an article's score from its chunks' scores, without the same-language bonus.

    Each language version scores its chunk scores, best first, weighted 1, ``decay``,
    ``decay``², ... (with ``decay`` 0, its best chunk's score). The article scores its best
    version plus ``cross_weight`` times its second best.
    """
    by_language: dict[str, list[float]] = {}
    for score, record in chunks:
        by_language.setdefault(record.language, []).append(score)
    versions = []
    for scores in by_language.values():
        scores.sort(reverse=True)
        total, weight = 0.0, 1.0
        for score in scores:
            total += weight * score
            weight *= decay
            if weight == 0.0:
                break
        versions.append(total)
    versions.sort(reverse=True)
    return versions[0] + (cross_weight * versions[1] if len(versions) > 1 else 0.0)


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
        self.decline_model = calibration.decline_model if mode == "fused" else None
        if self.decline_model is not None and self.decline_model.encoder:
            encoder = getattr(index.embedder, "fingerprint", "")
            if encoder != self.decline_model.encoder:
                logger.warning(
                    "The decline model was fitted with encoder %s but the index uses %s, so declining may be "
                    "off. Run `spin kb calibrate --write` to refit it.",
                    self.decline_model.encoder,
                    encoder,
                )

    @property
    def query_threshold(self) -> float:
        """Return the threshold a query's confidence is compared with."""
        if self._fixed_threshold is not None:
            return self._fixed_threshold
        if self.decline_model is not None:
            return self.decline_model.threshold
        return self.decline_below

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
        return self.search_with_signals(query, language, k)[0]

    def search_with_signals(self, query: str, language: str | None = None, k: int = 5) -> tuple[list[Hit], QuerySignals | None]:
        """Return ``search``'s hits and, in fused mode with hits, the signals the decline model uses (else None).

        The signals are those of the evidence article, the first by its best chunk's score,
        which is usually but not always ``hits[0]``.
        """
        text = clean_query(query)
        self.maybe_reload()
        index = self.index  # One index for the whole search, even if a reload swaps it meanwhile.
        if not text or k <= 0 or len(index) == 0:
            return [], None
        if language not in SUPPORTED_LANGUAGES:
            language = detect_language(text)
        group = query_group(text, language or "")

        dense: dict[int, float] = {}
        if self.mode != "lexical":
            vector = index.embedder.embed_queries([text])[0]
            dense = index.dense_scores(vector)
        lexical = index.lexical_scores(lexical_tokens(text)) if self.mode != "dense" else {}

        scored: dict[str, list[tuple[float, ChunkRecord]]] = {}
        for int_id in dense.keys() | lexical.keys():
            record = index.chunks.get(int_id)
            if record is None:  # Impossible while the index is consistent, but never show a stale id.
                continue
            chunk_score = self.score(dense.get(int_id, 0.0), lexical.get(int_id, 0.0))
            scored.setdefault(record.article_id, []).append((chunk_score, record))

        threshold = self.query_threshold
        ranked = []
        for chunks in scored.values():
            best_score = max(score for score, _ in chunks)
            cross_weight = CROSS_LANGUAGE_WEIGHT if self.mode == "fused" else 0.0
            rank_score = article_score(chunks, CHUNK_DECAY if self.mode == "fused" else 0.0, cross_weight)
            evidence_score = article_score(chunks, 0.0, cross_weight)
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
            ranked.append((rank_score + bonus, shown_score, evidence_score + bonus, hit))
        if not ranked:
            return [], None
        ranked.sort(key=lambda item: (item[0], item[1]), reverse=True)
        hits = [item[3] for item in ranked[:k]]
        # The decline signals come from the article with the strongest single passage, as
        # ranked before chunk scores were summed, so the fitted decline model still applies.
        # NOTE: when that article is not hits[0], the answer shows hits[0] with its confidence.
        evidence = max(ranked, key=lambda item: (item[2], item[1]))[3]

        signals = None
        confidence = hits[0].score
        if self.mode == "fused":
            top_chunks = [record.int_id for _, record in scored[evidence.article_id]]
            signals = QuerySignals(
                group=group,
                top_dense=max(dense.get(int_id, 0.0) for int_id in top_chunks),
                top_lexical=max(lexical.get(int_id, 0.0) for int_id in top_chunks),
                agree=self._signals_agree(index, dense, lexical),
            )
            if self.decline_model is not None:
                confidence = self.decline_model.probability(signals)
        top = round(confidence, 4)
        return [dataclasses.replace(hit, confidence=top) for hit in hits], signals

    def is_confident(self, hits: Sequence[Hit]) -> bool:
        """Return whether the query's confidence reaches the decline threshold."""
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
