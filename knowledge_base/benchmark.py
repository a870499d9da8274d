"""Speed and memory benchmark of the knowledge base (a script, not a test).

Measures, with the real embedding model:

- search: query embedding plus fused search, median and p95, over an index of
  ``--chunks`` chunks (default 10,000). The large index is synthetic: the real chunks
  repeated under new ids and article ids, with their stored vectors and words, so search
  works on the same number of vectors and BM25 documents as a real index of that size;
- full build: ``KnowledgeIndex.build`` of ``--build-chunks`` chunks from synthetic articles
  (real articles copied with a numbered sentence added, so every chunk is embedded anew);
  the time for 10,000 chunks is extrapolated when fewer are built;
- incremental add: ``spin kb add`` of one HTML document into the large index, plus saving it;
- RSS of this process after loading the model and the large index, as the action server holds them.

The machine is shared, so the load average is printed before and after.

Command line: ``python -m knowledge_base.benchmark [--chunks 10000] [--build-chunks 500]``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer

from knowledge_base.content import load_articles
from knowledge_base.index import DocumentRecord, KnowledgeIndex, open_index
from knowledge_base.retrieval import Retriever

logger = logging.getLogger(__name__)

SEARCH_QUERIES = 200
TARGET_CHUNKS = 10_000


def rss_mb() -> float:
    """Resident set size of this process in MB, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def percentile(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(percent / 100 * (len(ordered) - 1)))]


def enlarge(index: KnowledgeIndex, target: int) -> KnowledgeIndex:
    """Return a copy of ``index`` with its chunks repeated under new ids up to ``target`` chunks."""
    assert index._faiss is not None
    source = sorted(index.chunks.values(), key=lambda record: record.int_id)
    vectors = {int(int_id): index._faiss.reconstruct(int(int_id)) for int_id in index.chunks}
    folded_ids = index.folded_ids
    folded = {int_id: index._folded.reconstruct(int_id) for int_id in folded_ids} if index._folded is not None else {}
    large = KnowledgeIndex(index.embedder, index.tokenizer_source)
    ids, rows, folded_rows, folded_keys = [], [], [], []
    copy = 0
    while len(large.chunks) < target:
        for record in source:
            if len(large.chunks) >= target:
                break
            int_id = large.next_id
            large.next_id += 1
            article_id = record.article_id if copy == 0 else f"{record.article_id}-copy{copy}"
            document_id = f"{article_id}.{record.language}"
            chunk_id = f"{document_id}#{record.position}"
            large.chunks[int_id] = dataclasses.replace(
                record, int_id=int_id, chunk_id=chunk_id, document_id=document_id, article_id=article_id
            )
            large.chunk_int_ids[chunk_id] = int_id
            document = large.documents.setdefault(
                document_id, DocumentRecord(document_id, article_id, record.language, record.title, "synthetic", [])
            )
            document.chunk_ids.append(chunk_id)
            ids.append(int_id)
            rows.append(vectors[record.int_id])
            if record.int_id in folded:
                folded_keys.append(int_id)
                folded_rows.append(folded[record.int_id])
        copy += 1
    large._add_vectors(ids, np.stack(rows))
    if folded_rows:
        large._add_folded(folded_keys, np.stack(folded_rows))
    for document in large.documents.values():
        document.chunk_ids.sort(key=lambda chunk_id: int(chunk_id.rsplit("#", 1)[1]))
    large.check_consistency()
    return large


def synthetic_content(content_dir: Path, target_chunks: int, chunks_per_article: float, dest: Path) -> int:
    """Write copies of the real articles under ``dest`` until about ``target_chunks`` chunks; return the article count."""
    articles = load_articles(content_dir)
    wanted = max(1, round(target_chunks / chunks_per_article))
    for number in range(wanted):
        article = articles[number % len(articles)]
        copy = number // len(articles)
        text = article.path.read_text(encoding="utf-8")
        new_id = f"{article.id}-b{copy}"
        text = text.replace(f"id: {article.id}\n", f"id: {new_id}\n", 1)
        text = text.replace("translations: [", "translations_original: [", 1)
        text = text.replace("\n---\n", f"\ntranslations: []\n---\n\nCopy number {copy} of this article.\n", 1)
        target = dest / article.language / f"{new_id}.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return wanted


def main(
    chunks: Annotated[int, typer.Option(help="Chunks in the index searched.")] = TARGET_CHUNKS,
    build_chunks: Annotated[int, typer.Option(help="Chunks in the full-build measurement (10,000 takes long).")] = 500,
    json_output: Annotated[Path | None, typer.Option("--json", help="Also write the results to this JSON file.")] = None,
) -> None:
    """Measure search latency, build and add times and memory of the knowledge base."""
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from bot.settings import get_settings
    from knowledge_base.evaluate import load_questions, question_files
    from knowledge_base.ingest import add_file

    settings = get_settings()
    results: dict[str, object] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}",
        "load_before": load_average(),
    }
    base_rss = rss_mb()
    started = time.perf_counter()
    index = open_index()
    index.embedder.embed_queries(["warm-up"])
    results["model_and_index_load_s"] = round(time.perf_counter() - started, 2)
    large = enlarge(index, chunks)
    del index
    retriever = Retriever(large)
    retriever.search("warm-up", "en")
    results["rss_mb_model_and_index"] = round(rss_mb(), 1)
    results["rss_mb_before_load"] = round(base_rss, 1)
    results["chunks"] = len(large)

    questions = [question for question in load_questions(question_files())][:SEARCH_QUERIES]
    timings = []
    for question in questions:
        begin = time.perf_counter()
        retriever.search(question.q, question.search_language)
        timings.append((time.perf_counter() - begin) * 1000)
    results["search_ms_median"] = round(statistics.median(timings), 1)
    results["search_ms_p95"] = round(percentile(timings, 95), 1)
    typer.echo(f"search over {len(large)} chunks: median {results['search_ms_median']} ms, p95 {results['search_ms_p95']} ms")

    work = Path(tempfile.mkdtemp(prefix="kb-bench-"))
    try:
        page = work / "bench-doc.html"
        paragraph = "Sort fabric offcuts by fibre and colour, weigh them every week and sell clean lots to recyclers. "
        page.write_text(
            f"<html><body><article><h1>Offcut sorting</h1><p>{paragraph * 6}</p></article></body></html>", encoding="utf-8"
        )
        begin = time.perf_counter()
        added = add_file(page, large, work / "imports", settings.kb_content_dir, language="en")
        large.save(work / "index")
        results["incremental_add_s"] = round(time.perf_counter() - begin, 2)
        results["incremental_add_chunks"] = added.change.added
        typer.echo(f"incremental add of one document ({added.change.added} chunks) and save: {results['incremental_add_s']} s")

        chunks_per_article = len(large) / max(1, len(large.documents))
        content = work / "content"
        articles = synthetic_content(settings.kb_content_dir, build_chunks, chunks_per_article, content)
        fresh = KnowledgeIndex(large.embedder, large.tokenizer_source)
        begin = time.perf_counter()
        report = fresh.build(content)
        seconds = time.perf_counter() - begin
        embedded = report.chunks_embedded
        results["build_articles"] = articles
        results["build_chunks_embedded"] = embedded
        results["build_s"] = round(seconds, 1)
        results["build_10000_chunks_s_extrapolated"] = round(seconds / max(1, embedded) * TARGET_CHUNKS, 0)
        typer.echo(
            f"full build: {embedded} embeddings ({len(fresh)} chunks of {articles} articles) in {seconds:.1f} s; "
            f"{TARGET_CHUNKS} chunks would take about {results['build_10000_chunks_s_extrapolated']:.0f} s"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["load_after"] = load_average()
    typer.echo(json.dumps(results, indent=2))
    if json_output is not None:
        json_output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    typer.run(main)
