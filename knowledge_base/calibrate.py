"""Fit the decline model (``retrieval.DeclineModel``) on the dev questions.

The model is a logistic regression of "the question is in scope" on three signals of
the first-ranked article (``retrieval.QuerySignals``). Its best cosine and its best
normalised BM25 score get a weight per query group, and each group has an intercept.
Whether the dense and lexical rankings agree gets one shared weight. That is 16
coefficients for about 500 dev questions. The features are standardised before fitting, so the
default L2 penalty of scikit-learn (C = 1) shrinks all weights alike, and the fitted
weights are converted back to the raw scale for ``DeclineModel``.

The decline threshold is the probability below which the share ``target_rejection`` of
the dev out-of-scope questions falls. A threshold chosen on the questions the model was
fitted on declines fewer unseen out-of-scope questions than it does on those. So the
command also estimates the result on unseen questions by repeated stratified 5-fold
cross-validation within dev. Each fold is fitted, thresholded and measured on the
questions it was not fitted on. It prints that estimate for several targets, so the
trade-off between declining out-of-scope questions and answering in-scope ones is
visible before choosing one.

Only the dev split is used. The test split is for reporting (``spin kb eval --split test``).

Command line: ``spin kb calibrate [--target-rejection 0.93] [--write]`` (or
``python -m knowledge_base.calibrate``). Refit after any change of the embedding model
or its weights, because the cosines move.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from knowledge_base.evaluate import QUESTION_LANGUAGES, Question, QuestionFileError, load_questions, question_files
from knowledge_base.retrieval import DECLINE_MODEL_FILE, DeclineModel, GroupDecline, QuerySignals, Retriever

logger = logging.getLogger(__name__)

#: Query groups with their own intercept and score weights, in the order of the design matrix.
GROUPS = QUESTION_LANGUAGES
#: Default share of dev out-of-scope questions whose probability falls below the threshold.
DEFAULT_TARGET_REJECTION = 0.93
#: Inverse L2 penalty strength of the logistic regression, on standardised features.
REGULARIZATION_C = 1.0
CV_FOLDS = 5
CV_REPEATS = 20
CV_SEED = 0
#: Targets whose cross-validated result is printed as the trade-off table.
TRADE_OFF_TARGETS = (0.85, 0.88, 0.9, 0.92, 0.93, 0.95)


class CalibrationError(ValueError):
    """The dev questions cannot support a fit. The message names what is missing."""


@dataclasses.dataclass(frozen=True)
class Sample:
    """The signals of one dev question and whether it is in scope."""

    signals: QuerySignals
    in_scope: bool
    question: str


@dataclasses.dataclass
class Rates:
    """Declined out-of-scope and answered in-scope counts, overall and per group."""

    declined: dict[str, int] = dataclasses.field(default_factory=dict)
    out_of_scope: dict[str, int] = dataclasses.field(default_factory=dict)
    answered: dict[str, int] = dataclasses.field(default_factory=dict)
    in_scope: dict[str, int] = dataclasses.field(default_factory=dict)

    def add(self, group: str, in_scope: bool, accepted: bool) -> None:
        if in_scope:
            self.in_scope[group] = self.in_scope.get(group, 0) + 1
            self.answered[group] = self.answered.get(group, 0) + accepted
        else:
            self.out_of_scope[group] = self.out_of_scope.get(group, 0) + 1
            self.declined[group] = self.declined.get(group, 0) + (not accepted)

    def rejection(self, group: str | None = None) -> float:
        return _share(self.declined, self.out_of_scope, group)

    def answered_share(self, group: str | None = None) -> float:
        return _share(self.answered, self.in_scope, group)


def _share(part: dict[str, int], whole: dict[str, int], group: str | None) -> float:
    keys = list(whole) if group is None else [group]
    total = sum(whole.get(key, 0) for key in keys)
    return sum(part.get(key, 0) for key in keys) / total if total else float("nan")


def collect_samples(retriever: Retriever, questions: Sequence[Question]) -> list[Sample]:
    """Search every question with the fused ``retriever`` and keep its signals.

    A question without hits (no word matched and no dense score) has no signals and is
    declined whatever the model, so it is left out of the fit.
    """
    samples = []
    for question in questions:
        _, signals = retriever.search_with_signals(question.q, question.search_language)
        if signals is None:
            logger.info("No hits for %r, left out of the fit", question.q)
            continue
        samples.append(Sample(signals, question.in_scope, question.q))
    return samples


def _raw_features(samples: Sequence[Sample]) -> np.ndarray:
    """Return rows of (cosine, BM25, agreement) for ``samples``."""
    return np.array([[s.signals.top_dense, s.signals.top_lexical, float(s.signals.agree)] for s in samples])


def _group_indexes(samples: Sequence[Sample]) -> np.ndarray:
    unknown = sorted({s.signals.group for s in samples} - set(GROUPS))
    if unknown:
        raise CalibrationError(f"query groups {unknown} are not among {GROUPS}; fix the questions' lang fields")
    return np.array([GROUPS.index(s.signals.group) for s in samples])


def _design(raw: np.ndarray, groups: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Return the design matrix: the standardised agreement, then per group its indicator and standardised scores.

    The first group's indicator is left out because the regression has its own intercept.
    """
    z = (raw - mean) / scale
    columns = [z[:, 2:3]]
    for position in range(len(GROUPS)):
        member = (groups == position).astype(float)[:, None]
        if position:
            columns.append(member)
        columns.append(z[:, :2] * member)
    return np.hstack(columns)


def _threshold(probabilities: np.ndarray, target_rejection: float) -> float:
    """Return the threshold below which ``target_rejection`` of ``probabilities`` fall (midway between two)."""
    ordered = np.sort(probabilities)
    count = math.ceil(target_rejection * len(ordered))
    if count <= 0:
        return float(ordered[0]) / 2
    if count >= len(ordered):
        return float(min(1.0, ordered[-1] + 1e-6))
    return float((ordered[count - 1] + ordered[count]) / 2)


def fit(samples: Sequence[Sample], target_rejection: float, regularization: float = REGULARIZATION_C) -> DeclineModel:
    """Fit the decline model on ``samples`` and set its threshold for ``target_rejection``.

    Raise CalibrationError when a group lacks in-scope or out-of-scope samples.
    """
    if not 0.0 < target_rejection < 1.0:
        raise CalibrationError(f"target rejection {target_rejection} must be between 0 and 1")
    groups = _group_indexes(samples)
    labels = np.array([s.in_scope for s in samples])
    for position, name in enumerate(GROUPS):
        member = groups == position
        if labels[member].all() or not labels[member].any():
            raise CalibrationError(f"group {name!r} needs both in-scope and out-of-scope dev questions to fit")
    from sklearn.linear_model import LogisticRegression  # Imported here: `spin --help` need not load scikit-learn.

    raw = _raw_features(samples)
    mean, scale = raw.mean(axis=0), raw.std(axis=0)
    scale[scale == 0] = 1.0
    regression = LogisticRegression(C=regularization, max_iter=5000)
    regression.fit(_design(raw, groups, mean, scale), labels)

    weights = regression.coef_[0]
    agreement = weights[0] / scale[2]
    shared_offset = regression.intercept_[0] - weights[0] * mean[2] / scale[2]
    coefficients = {}
    column = 1
    for position, name in enumerate(GROUPS):
        offset = shared_offset
        if position:
            offset += weights[column]
            column += 1
        dense_weight, lexical_weight = weights[column], weights[column + 1]
        column += 2
        coefficients[name] = GroupDecline(
            intercept=float(offset - dense_weight * mean[0] / scale[0] - lexical_weight * mean[1] / scale[1]),
            dense=float(dense_weight / scale[0]),
            lexical=float(lexical_weight / scale[1]),
        )
    model = DeclineModel(groups=coefficients, agreement=float(agreement), threshold=0.5)
    out_of_scope = np.array([model.probability(s.signals) for s in samples if not s.in_scope])
    return dataclasses.replace(model, threshold=_threshold(out_of_scope, target_rejection))


def measure(model: DeclineModel, samples: Sequence[Sample]) -> Rates:
    """Count the declined out-of-scope and answered in-scope samples under ``model``."""
    rates = Rates()
    for sample in samples:
        rates.add(sample.signals.group, sample.in_scope, model.probability(sample.signals) >= model.threshold)
    return rates


def cross_validate(
    samples: Sequence[Sample],
    target_rejection: float,
    folds: int = CV_FOLDS,
    repeats: int = CV_REPEATS,
    seed: int = CV_SEED,
) -> Rates:
    """Pool the held-out results of repeated stratified k-fold cross-validation.

    Folds are stratified by query group and scope, so each contains every kind of question.
    Each question is held out once per repeat, so the pooled counts are ``repeats`` times
    the number of samples.
    """
    from sklearn.model_selection import RepeatedStratifiedKFold

    strata = _group_indexes(samples) * 2 + np.array([s.in_scope for s in samples])
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    pooled = Rates()
    for train, held_out in splitter.split(np.zeros(len(samples)), strata):
        model = fit([samples[i] for i in train], target_rejection)
        part = measure(model, [samples[i] for i in held_out])
        for counts, more in (
            (pooled.declined, part.declined),
            (pooled.out_of_scope, part.out_of_scope),
            (pooled.answered, part.answered),
            (pooled.in_scope, part.in_scope),
        ):
            for group, count in more.items():
                counts[group] = counts.get(group, 0) + count
    return pooled


def _rates_row(label: str, rates: Rates) -> list[str]:
    cells = [label, f"{rates.rejection():.3f}", f"{rates.answered_share():.3f}"]
    cells += [f"{rates.rejection(group):.2f}/{rates.answered_share(group):.2f}" for group in GROUPS]
    return cells


def main(
    files: Annotated[
        list[Path] | None, typer.Argument(help="Question files. Default: every .yml file in knowledge_base/eval/.")
    ] = None,
    target_rejection: Annotated[
        float, typer.Option(help="Share of dev out-of-scope questions to decline, between 0 and 1.")
    ] = DEFAULT_TARGET_REJECTION,
    write: Annotated[bool, typer.Option("--write", help="Write the fitted model to the decline model file.")] = False,
    output: Annotated[Path, typer.Option(help="Decline model file written by --write.")] = DECLINE_MODEL_FILE,
) -> None:
    """Fit the decline model on the dev questions and print it with cross-validated estimates."""
    from rich.console import Console
    from rich.table import Table

    from knowledge_base.index import build_index, open_index

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    missing = [str(path) for path in files or [] if not path.is_file()]
    if missing:
        raise typer.BadParameter(f"question file(s) not found: {missing}")
    try:
        questions = [q for q in load_questions(files or question_files()) if q.split == "dev"]
    except QuestionFileError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(1) from error

    build_index()
    retriever = Retriever(open_index(), "fused")
    samples = collect_samples(retriever, questions)
    try:
        model = fit(samples, target_rejection)
        estimate = cross_validate(samples, target_rejection)
    except CalibrationError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(1) from error
    encoder = str(getattr(retriever.index.embedder, "fingerprint", ""))
    in_sample = measure(model, samples)

    console = Console(width=132)  # Wide enough for the per-group columns when output is piped.
    coefficients = Table(title=f"Decline model (encoder {encoder})")
    for column in ("group", "intercept", "× cosine", "× BM25"):
        coefficients.add_column(column, justify="left" if column == "group" else "right")
    for group, entry in model.groups.items():
        coefficients.add_row(group, f"{entry.intercept:.3f}", f"{entry.dense:.3f}", f"{entry.lexical:.3f}")
    console.print(coefficients)
    console.print(f"agreement {model.agreement:+.3f}; threshold {model.threshold:.4f} (target rejection {target_rejection})")

    results = Table(title=f"Dev: {len(samples)} questions (declined out of scope / answered in scope)")
    for column in ("", "declined", "answered", *GROUPS):
        results.add_column(column, justify="left" if not column else "right")
    results.add_row(*_rates_row("fitted questions", in_sample))
    results.add_row(*_rates_row(f"{CV_FOLDS}-fold CV × {CV_REPEATS}", estimate))
    console.print(results)

    trade_off = Table(title=f"Trade-off, {CV_FOLDS}-fold CV × {CV_REPEATS} within dev")
    for column in ("target", "declined", "answered", *GROUPS):
        trade_off.add_column(column, justify="right")
    for target in TRADE_OFF_TARGETS:
        trade_off.add_row(*_rates_row(f"{target:.2f}", cross_validate(samples, target)))
    console.print(trade_off)

    if write:
        fitted = dataclasses.replace(
            model,
            encoder=encoder,
            fit={
                "date": datetime.date.today().isoformat(),
                "dev_questions": len(samples),
                "target_rejection": target_rejection,
                "regularization_c": REGULARIZATION_C,
                "cv_declined": round(estimate.rejection(), 4),
                "cv_answered": round(estimate.answered_share(), 4),
            },
        )
        output.write_text(json.dumps(fitted.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        console.print(f"Wrote {output}")


if __name__ == "__main__":
    typer.run(main)
