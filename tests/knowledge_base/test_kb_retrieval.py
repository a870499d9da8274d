"""Retrieval with the real e5 model over the fixture articles, including hostile input."""

from __future__ import annotations

import time

import pytest

from knowledge_base import retrieval
from knowledge_base.index import ChunkRecord
from knowledge_base.retrieval import CHUNK_DECAY, MAX_QUERY_CHARS, Retriever, article_score, clean_query, query_group

BAD_INPUTS = [
    "",
    "   ",
    "\n\t",
    "😀🙏🔥",
    "12345 !!! ???",
    "\x00\x01\x02\x1b\x7f",
    "\u200b\u200c\u200d\ufeff",
]


@pytest.mark.parametrize("query", BAD_INPUTS)
def test_queries_without_letters_return_nothing_fast(retriever: Retriever, query: str) -> None:
    started = time.perf_counter()
    assert retriever.search(query, "en") == []
    assert time.perf_counter() - started < 0.05


def test_non_string_query_returns_nothing(retriever: Retriever) -> None:
    assert retriever.search(None, "en") == []  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "query",
    [
        "plastic " * 2500,
        "x" * 20_000,
        "packaging\x00\x07 with control\x1f characters \x1b[31m",
        "Giảm bao bì nhựa plastic ការវេចខ្ចប់ ບັນຈຸພັນ 😀 packaging",
        "Gia\u0309m bao bi\u0300 nhu\u031bạ",
        "ປະຫຍັດ\u200bໄຟຟ້າ",
    ],
)
def test_hostile_queries_never_raise(retriever: Retriever, query: str) -> None:
    hits = retriever.search(query, None, k=3)
    assert len(hits) <= 3


def test_long_query_is_cut() -> None:
    assert len(clean_query("word " * 10_000)) <= MAX_QUERY_CHARS
    assert len(clean_query("w" * 10_000)) == MAX_QUERY_CHARS
    assert clean_query("  Hello\u200b world \x00") == "Hello world"
    assert clean_query("🙂") == ""


@pytest.mark.parametrize(
    ("query", "language", "article_id", "shown_language"),
    [
        ("How can I use less plastic packaging?", "en", "plastic-packaging", "en"),
        ("Làm sao để giảm bao bì nhựa?", "vi", "plastic-packaging", "vi"),
        ("lam sao giam bao bi nhua", "vi", "plastic-packaging", "vi"),
        ("តើធ្វើដូចម្តេចដើម្បីសន្សំអគ្គិសនី?", "km", "energy-saving", "km"),
        ("ຫຼຸດການໃຊ້ພລາສຕິກແນວໃດ", "lo", "plastic-packaging", "lo"),
        ("Which certificate shows that my furniture wood is from a well-managed forest?", "en", "fsc-wood", "en"),
    ],
)
def test_finds_expected_article(retriever: Retriever, query: str, language: str, article_id: str, shown_language: str) -> None:
    hits = retriever.search(query, language)
    assert hits, query
    assert hits[0].article_id == article_id
    assert hits[0].language == shown_language


def test_clear_question_is_confident(retriever: Retriever) -> None:
    hits = retriever.search("How can I use less plastic packaging for my products?", "en")
    assert retriever.is_confident(hits)


def test_falls_back_to_english_version(retriever: Retriever) -> None:
    hits = retriever.search("តើវិញ្ញាបនបត្រ FSC សម្រាប់ឈើគឺជាអ្វី?", "km")
    assert hits[0].article_id == "fsc-wood"
    assert hits[0].language == "en"


def test_prefers_english_over_other_fallbacks(retriever: Retriever) -> None:
    hits = retriever.search("ការវេចខ្ចប់ប្លាស្ទិក plastic packaging", "km")
    packaging = next(hit for hit in hits if hit.article_id == "plastic-packaging")
    assert packaging.language == "en"


def test_one_hit_per_article(retriever: Retriever) -> None:
    hits = retriever.search("electricity packaging wood", "en", k=10)
    article_ids = [hit.article_id for hit in hits]
    assert len(article_ids) == len(set(article_ids)) == 3


def test_out_of_scope_question_is_declined(retriever: Retriever) -> None:
    for query, language in [
        ("Who won the football match last night?", "en"),
        ("Ngày mai Hà Nội có mưa không?", "vi"),
    ]:
        hits = retriever.search(query, language)
        assert not retriever.is_confident(hits), (query, hits[0].score if hits else None)


def test_scores_are_in_unit_range(retriever: Retriever) -> None:
    for hit in retriever.search("energy saving in workshops", "en", k=5):
        assert 0.0 <= hit.score <= 1.0


def test_modes_score_differently(fixture_index) -> None:
    lexical = Retriever(fixture_index, "lexical").search("FSC", "en")
    dense = Retriever(fixture_index, "dense").search("FSC", "en")
    assert lexical[0].article_id == "fsc-wood"
    assert lexical[0].dense == 0.0
    assert dense[0].lexical == 0.0


@pytest.mark.parametrize(
    ("text", "language", "group"),
    [
        ("lam sao giam bao bi nhua", "vi", "vi-nd"),
        ("Làm sao giảm bao bì nhựa", "vi", "vi"),
        ("plastic packaging", "en", "en"),
        ("ຫຼຸດການໃຊ້ພລາສຕິກ", "lo", "lo"),
    ],
)
def test_query_group(text: str, language: str, group: str) -> None:
    assert query_group(text, language) == group


def test_confidence_is_decline_model_probability(retriever: Retriever) -> None:
    model = retriever.decline_model
    assert model is not None
    hits, signals = retriever.search_with_signals("lam sao giam bao bi nhua", "vi")
    assert signals is not None
    assert signals.group == "vi-nd"
    assert {hit.confidence for hit in hits} == {hits[0].confidence}
    assert hits[0].confidence == pytest.approx(model.probability(signals), abs=1e-4)
    assert hits[0].decline_below == model.threshold
    fixed = Retriever(retriever.index, decline_below=0.0).search("lam sao giam bao bi nhua", "vi")
    assert fixed[0].decline_below == 0.0


def test_signals_describe_first_article(retriever: Retriever) -> None:
    hits, signals = retriever.search_with_signals("How can I use less plastic packaging?", "en")
    assert signals is not None
    assert hits[0].article_id == "plastic-packaging"
    assert signals.group == "en"
    assert signals.agree
    assert signals.top_dense >= hits[0].dense - 1e-4  # Hit scores are rounded to four decimals.
    assert signals.top_lexical >= hits[0].lexical - 1e-4
    assert hits[0].lexical > 0


def test_baseline_modes_have_no_signals(fixture_index) -> None:
    for mode in ("dense", "lexical"):
        hits, signals = Retriever(fixture_index, mode).search_with_signals("plastic packaging", "en")
        assert hits
        assert signals is None
        assert hits[0].confidence == hits[0].score


def _chunk(article_id: str, language: str, position: int = 0) -> ChunkRecord:
    return ChunkRecord(
        int_id=position,
        chunk_id=f"{article_id}-{language}-{position}",
        document_id=f"{article_id}:{language}",
        article_id=article_id,
        language=language,
        title=article_id,
        section="",
        text="",
        overlap_chars=0,
        position=position,
        content_hash="",
        lexical_tokens=[],
    )


def test_article_score_sums_chunks_with_decay() -> None:
    chunks = [(0.2, _chunk("a", "en", 2)), (0.8, _chunk("a", "en", 0)), (0.6, _chunk("a", "en", 1))]
    assert article_score(chunks, 0.5, 0.0) == pytest.approx(0.8 + 0.5 * 0.6 + 0.25 * 0.2)
    assert article_score(chunks, 0.0, 0.0) == pytest.approx(0.8)
    with_vietnamese = [*chunks, (0.4, _chunk("a", "vi")), (0.2, _chunk("a", "vi", 1))]
    assert article_score(with_vietnamese, 0.5, 0.5) == pytest.approx(1.15 + 0.5 * (0.4 + 0.5 * 0.2))
    assert article_score(with_vietnamese, 0.0, 0.5) == pytest.approx(0.8 + 0.5 * 0.4)


def test_several_matching_passages_outrank_one() -> None:
    single = [(0.7, _chunk("single", "en")), (0.1, _chunk("single", "en", 1))]
    several = [(0.65, _chunk("several", "en")), (0.6, _chunk("several", "en", 1))]
    assert article_score(several, CHUNK_DECAY, 0.0) > article_score(single, CHUNK_DECAY, 0.0)
    assert article_score(several, 0.0, 0.0) < article_score(single, 0.0, 0.0)


def test_long_document_gains_at_most_its_best_chunk() -> None:
    long_document = [(0.5, _chunk("long", "en", position)) for position in range(200)]
    assert article_score(long_document, CHUNK_DECAY, 0.0) <= 2 * 0.5


class _StubEmbedder:
    def embed_queries(self, texts: list[str]) -> list[None]:
        return [None for _ in texts]


class _StubIndex:
    """Index stand-in with fixed cosines: one strong chunk in "single", two slightly weaker in "several"."""

    def __init__(self) -> None:
        self.embedder = _StubEmbedder()
        self.chunks = {1: _chunk("single", "en", 1), 2: _chunk("several", "en", 2), 3: _chunk("several", "en", 3)}

    def __len__(self) -> int:
        return len(self.chunks)

    def dense_scores(self, vector: object) -> dict[int, float]:
        return {1: 0.92, 2: 0.91, 3: 0.91}

    def lexical_scores(self, tokens: object) -> dict[int, float]:
        return {}


def test_decline_signals_ignore_chunk_decay(monkeypatch: pytest.MonkeyPatch) -> None:
    retriever = Retriever(_StubIndex())  # type: ignore[arg-type]
    hits, signals = retriever.search_with_signals("any question", "en")
    assert [hit.article_id for hit in hits] == ["several", "single"]
    assert signals is not None
    # The signals are those of "single", whose best chunk is the strongest, as without the sum.
    assert signals.top_dense == pytest.approx(0.92)
    monkeypatch.setattr(retrieval, "CHUNK_DECAY", 0.0)
    hits_without_decay, signals_without_decay = retriever.search_with_signals("any question", "en")
    assert [hit.article_id for hit in hits_without_decay] == ["single", "several"]
    assert signals_without_decay == signals
