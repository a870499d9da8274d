"""Index consistency: FAISS ids, chunk records and BM25 stay in step through every change."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pytest
from tokenizers import Tokenizer

from knowledge_base.content import load_article
from knowledge_base.index import (
    CURRENT_FILE,
    KEEP_OLD_VERSIONS,
    KnowledgeIndex,
    KnowledgeIndexError,
    lexical_tokens,
)
from knowledge_base.retrieval import Retriever

EXTRA_PARAGRAPH = "\n\nA new paragraph about sorting waste by material before it leaves the workshop.\n"


def faiss_ids(index: KnowledgeIndex) -> set[int]:
    assert index._faiss is not None
    return set(faiss.vector_to_array(index._faiss.id_map).tolist())


def build(content_dir: Path, embedder: object, tokenizer: Tokenizer) -> KnowledgeIndex:
    index = KnowledgeIndex(embedder, tokenizer)  # type: ignore[arg-type]
    index.build(content_dir)
    return index


def test_add_documents_fills_all_structures(content_dir: Path, fake_embedder, tokenizer: Tokenizer) -> None:
    index = build(content_dir, fake_embedder, tokenizer)
    assert len(index.documents) == 7
    assert index.ntotal == len(index.chunks)
    assert faiss_ids(index) == set(index.chunks)
    listed = [chunk_id for document in index.documents.values() for chunk_id in document.chunk_ids]
    assert sorted(listed) == sorted(index.chunk_int_ids)
    assert len(fake_embedder.embedded) == len(index.chunks) + len(index.folded_ids)


def test_add_existing_document_raises(content_dir: Path, fake_embedder, tokenizer: Tokenizer) -> None:
    index = build(content_dir, fake_embedder, tokenizer)
    with pytest.raises(ValueError, match="already indexed"):
        index.add_document(load_article(content_dir / "en" / "fsc-wood.md"))


def test_replace_reembeds_only_changed_chunks(content_dir: Path, fake_embedder, tokenizer: Tokenizer) -> None:
    index = build(content_dir, fake_embedder, tokenizer)
    old_ids = {record.chunk_id: record.int_id for record in index.document_chunks("energy-saving.en")}
    old_next_id = index.next_id
    path = content_dir / "en" / "energy-saving.md"
    path.write_text(path.read_text(encoding="utf-8") + EXTRA_PARAGRAPH, encoding="utf-8")
    fake_embedder.embedded.clear()

    change = index.replace_document(load_article(path))

    new_records = index.document_chunks("energy-saving.en")
    assert change.added == len(fake_embedder.embedded) >= 1
    assert change.kept + change.added == len(new_records)
    assert change.removed == len(old_ids) - change.kept
    for record in new_records:
        if record.int_id in old_ids.values():
            assert old_ids[record.chunk_id] == record.int_id
        else:
            assert record.int_id >= old_next_id
    assert faiss_ids(index) == set(index.chunks)
    assert index.ntotal == len(index.chunks)


def test_unchanged_replace_embeds_nothing(content_dir: Path, fake_embedder, tokenizer: Tokenizer) -> None:
    index = build(content_dir, fake_embedder, tokenizer)
    fake_embedder.embedded.clear()
    change = index.replace_document(load_article(content_dir / "vi" / "plastic-packaging.md"))
    assert fake_embedder.embedded == []
    assert change.added == 0
    assert change.removed == 0


def test_remove_document_drops_every_id(content_dir: Path, fake_embedder, tokenizer: Tokenizer) -> None:
    index = build(content_dir, fake_embedder, tokenizer)
    removed_ids = {record.int_id for record in index.document_chunks("plastic-packaging.en")}
    total = index.ntotal

    assert index.remove_document("plastic-packaging.en") == len(removed_ids)

    assert index.ntotal == total - len(removed_ids)
    assert not removed_ids & faiss_ids(index)
    assert not removed_ids & set(index.chunks)
    assert "plastic-packaging.en" not in index.documents
    assert index.remove_document("plastic-packaging.en") == 0
    index.check_consistency()


def test_search_never_returns_removed_chunks(content_dir: Path, fake_embedder, tokenizer: Tokenizer) -> None:
    index = build(content_dir, fake_embedder, tokenizer)
    removed_ids = {record.int_id for record in index.document_chunks("fsc-wood.en")}
    index.remove_document("fsc-wood.en")
    query = fake_embedder.embed_queries(["FSC chain of custody for wood"])[0]
    assert not removed_ids & set(index.dense_scores(query))
    assert not removed_ids & set(index.lexical_scores(lexical_tokens("FSC chain of custody wood")))
    hits = Retriever(index, "lexical").search("FSC chain of custody certification for wood", "en")
    assert all(hit.article_id != "fsc-wood" for hit in hits)


def test_ids_are_never_reused(content_dir: Path, fake_embedder, tokenizer: Tokenizer) -> None:
    index = build(content_dir, fake_embedder, tokenizer)
    first_ids = {record.int_id for record in index.document_chunks("energy-saving.km")}
    next_id = index.next_id
    index.remove_document("energy-saving.km")
    index.add_document(load_article(content_dir / "km" / "energy-saving.md"))
    new_ids = {record.int_id for record in index.document_chunks("energy-saving.km")}
    assert not first_ids & new_ids
    assert min(new_ids) >= next_id


def test_save_load_round_trip(content_dir: Path, fake_embedder, tokenizer: Tokenizer, tmp_path: Path) -> None:
    index = build(content_dir, fake_embedder, tokenizer)
    index_dir = tmp_path / "index"
    index.save(index_dir)

    loaded = KnowledgeIndex.load(index_dir, fake_embedder, tokenizer)

    assert loaded.next_id == index.next_id
    assert loaded.content_hash == index.content_hash
    assert loaded.chunk_int_ids == index.chunk_int_ids
    assert loaded.documents == index.documents
    assert loaded.chunks == index.chunks
    query = fake_embedder.embed_queries(["electricity meter"])[0]
    assert loaded.dense_scores(query) == pytest.approx(index.dense_scores(query))
    tokens = lexical_tokens("tiet kiem dien")
    assert loaded.lexical_scores(tokens) == pytest.approx(index.lexical_scores(tokens))


def test_save_switches_current_atomically(content_dir: Path, fake_embedder, tokenizer: Tokenizer, tmp_path: Path) -> None:
    index = build(content_dir, fake_embedder, tokenizer)
    index_dir = tmp_path / "index"
    folders = [index.save(index_dir) for _ in range(KEEP_OLD_VERSIONS + 2)]
    assert (index_dir / CURRENT_FILE).read_text(encoding="utf-8").strip() == folders[-1].name
    remaining = sorted(path.name for path in index_dir.glob("v-*"))
    assert remaining == sorted(folder.name for folder in folders[-(KEEP_OLD_VERSIONS + 1) :])
    assert not list(index_dir.glob(".tmp-*"))


def test_load_empty_folder_gives_empty_index(fake_embedder, tokenizer: Tokenizer, tmp_path: Path) -> None:
    index = KnowledgeIndex.load(tmp_path / "missing", fake_embedder, tokenizer)
    assert len(index) == 0
    assert Retriever(index).search("anything at all", "en") == []


def test_load_detects_inconsistent_files(content_dir: Path, fake_embedder, tokenizer: Tokenizer, tmp_path: Path) -> None:
    index = build(content_dir, fake_embedder, tokenizer)
    folder = index.save(tmp_path / "index")
    sidecar = json.loads((folder / "chunks.json").read_text(encoding="utf-8"))
    sidecar["chunks"].pop()
    (folder / "chunks.json").write_text(json.dumps(sidecar), encoding="utf-8")
    with pytest.raises(KnowledgeIndexError, match="FAISS contains"):
        KnowledgeIndex.load(tmp_path / "index", fake_embedder, tokenizer)


def test_build_skips_unchanged_content(content_dir: Path, fake_embedder, tokenizer: Tokenizer) -> None:
    index = build(content_dir, fake_embedder, tokenizer)
    fake_embedder.embedded.clear()
    report = index.build(content_dir)
    assert report.unchanged
    assert fake_embedder.embedded == []


def test_build_applies_edits_additions_and_deletions(content_dir: Path, fake_embedder, tokenizer: Tokenizer) -> None:
    index = build(content_dir, fake_embedder, tokenizer)
    edited = content_dir / "vi" / "energy-saving.md"
    edited.write_text(edited.read_text(encoding="utf-8") + EXTRA_PARAGRAPH, encoding="utf-8")
    (content_dir / "en" / "fsc-wood.md").unlink()
    new_article = (content_dir / "km" / "energy-saving.md").read_text(encoding="utf-8")
    (content_dir / "km" / "fsc-wood.md").write_text(new_article.replace("id: energy-saving", "id: fsc-wood"), encoding="utf-8")
    fake_embedder.embedded.clear()

    report = index.build(content_dir)

    assert report.documents_added == 1
    assert report.documents_replaced == 1
    assert report.documents_removed == 1
    assert report.chunks_embedded + report.folded_embedded == len(fake_embedder.embedded)
    assert "fsc-wood.en" not in index.documents
    assert "fsc-wood.km" in index.documents
    index.check_consistency()


def test_build_skips_invalid_files(content_dir: Path, fake_embedder, tokenizer: Tokenizer) -> None:
    (content_dir / "en" / "broken.md").write_text("---\nid: broken\n---\nNo title.\n", encoding="utf-8")
    index = KnowledgeIndex(fake_embedder, tokenizer)
    report = index.build(content_dir)
    assert report.documents_skipped == 1
    assert "broken.en" not in index.documents
    assert len(index.documents) == 7


def test_model_change_reembeds_everything(content_dir: Path, fake_embedder, tokenizer: Tokenizer) -> None:
    index = build(content_dir, fake_embedder, tokenizer)
    old_ids = set(index.chunks)
    fake_embedder._fingerprint = "fake-embedder-2"
    fake_embedder.embedded.clear()
    index.build(content_dir)
    assert len(fake_embedder.embedded) == len(index.chunks) + len(index.folded_ids)
    assert not old_ids & set(index.chunks)
    assert index.embedding_model == "fake-embedder-2"


def test_lexical_tokens_add_folded_and_segmented_words() -> None:
    tokens = lexical_tokens("Giảm bao bì nhựa")
    assert tokens[:4] == ["giảm", "bao", "bì", "nhựa"]
    assert {"giam", "bi", "nhua"} <= set(tokens)
    assert len(lexical_tokens("ការច្នៃប្រឌិតផលិតផល")) > 1
    assert len(lexical_tokens("ການອອກແບບຜະລິດຕະພັນ")) > 1


def test_lexical_scores_are_normalised(content_dir: Path, fake_embedder, tokenizer: Tokenizer) -> None:
    index = build(content_dir, fake_embedder, tokenizer)
    scores = index.lexical_scores(lexical_tokens("lam sao giam bao bi nhua"))
    best = max(scores, key=lambda int_id: scores[int_id])
    assert index.chunks[best].document_id == "plastic-packaging.vi"
    assert all(0 < value < 1 for value in scores.values())
    assert index.lexical_scores([]) == {}
    assert index.lexical_scores(["zzzzunknownword"]) == {}


def test_dense_scores_are_cosines(content_dir: Path, fake_embedder, tokenizer: Tokenizer) -> None:
    index = build(content_dir, fake_embedder, tokenizer)
    record = index.document_chunks("fsc-wood.en")[0]
    from knowledge_base.chunking import chunk_article

    text = chunk_article(load_article(content_dir / "en" / "fsc-wood.md"), tokenizer)[0].embedding_text
    vector = fake_embedder.embed_passages([text])[0]
    scores = index.dense_scores(vector)
    assert scores[record.int_id] == pytest.approx(1.0, abs=1e-5)
    assert all(-1.0001 <= value <= 1.0001 for value in scores.values())
    assert np.isclose(max(scores.values()), 1.0, atol=1e-5)


def test_edit_in_long_article_keeps_earlier_chunks(content_dir: Path, fake_embedder, tokenizer: Tokenizer) -> None:
    section = " ".join(["Weigh the scrap bin at the end of each day and write the number in a notebook."] * 12)
    body = "\n\n".join(f"## Part {n}\n\n{section}" for n in range(4))
    path = content_dir / "en" / "fsc-wood.md"
    header = path.read_text(encoding="utf-8").split("---\n\n", 1)[0]
    path.write_text(f"{header}---\n\n{body}\n", encoding="utf-8")
    index = build(content_dir, fake_embedder, tokenizer)
    before = {record.chunk_id: record.int_id for record in index.document_chunks("fsc-wood.en")}
    assert len(before) >= 3

    path.write_text(f"{header}---\n\n{body} One more sentence at the end.\n", encoding="utf-8")
    fake_embedder.embedded.clear()
    change = index.replace_document(load_article(path))

    assert change.kept == len(before) - 1
    assert change.added == change.removed == 1
    assert len(fake_embedder.embedded) == 1
    after = {record.chunk_id: record.int_id for record in index.document_chunks("fsc-wood.en")}
    assert [after[chunk_id] == int_id for chunk_id, int_id in before.items()].count(False) == 1


def test_vietnamese_chunks_get_folded_vectors(content_dir: Path, fake_embedder, tokenizer: Tokenizer, tmp_path: Path) -> None:
    index = build(content_dir, fake_embedder, tokenizer)
    vietnamese = {record.int_id for record in index.chunks.values() if record.language == "vi"}
    assert vietnamese and index.folded_ids == vietnamese

    saved = KnowledgeIndex.load(index.save(tmp_path / "index").parent, fake_embedder, tokenizer)
    assert saved.folded_ids == vietnamese

    # The folded vector counts when it is closer to the query than the accented one.
    record = next(record for record in index.chunks.values() if record.language == "vi")
    folded_query = fake_embedder.embed_queries([KnowledgeIndex.folded_text(record) or ""])[0]
    assert index.dense_scores(folded_query)[record.int_id] == pytest.approx(1.0, abs=1e-5)

    index.remove_document(record.document_id)
    assert record.int_id not in index.folded_ids
    index.check_consistency()


def test_old_index_gets_missing_folded_vectors(content_dir: Path, fake_embedder, tokenizer: Tokenizer) -> None:
    index = build(content_dir, fake_embedder, tokenizer)
    index._folded = None  # As saved before the folded side existed.
    fake_embedder.embedded.clear()
    assert index.add_missing_folded() == len([r for r in index.chunks.values() if r.language == "vi"])
    assert index.add_missing_folded() == 0
    index.check_consistency()
