"""Score a trained Rasa model on the held-out NLU examples, overall and per language.

Run in the Rasa venv from the repository root::

    PYTHONPATH=. RASA_TELEMETRY_ENABLED=false .venv-rasa/bin/python -m nlu.evaluate \\
        --model var/rasa-models/spin.tar.gz

Each held-out file contains one language variant, named by the file: ``vi`` (with
diacritics), ``vi_nodiac`` (Vietnamese typed without diacritics), ``en``, ``km`` and
``lo``. Files sit in one subfolder per round of writing (``round1``, ``round2``), and
scores are reported per round as well. Macro F1 is the unweighted mean of per-intent F1 over the intents in the
gold labels, so a prediction of ``nlu_fallback`` counts as a miss for the gold intent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

HELDOUT_DIR = Path(__file__).resolve().parent / "test_data" / "heldout"

logger = logging.getLogger(__name__)


def load_heldout(folder: Path) -> list[dict[str, Any]]:
    """Load held-out examples with their intent, entities, language variant and round."""
    from rasa.shared.nlu.training_data.loading import load_data

    examples = []
    for path in sorted(folder.rglob("*.yml")):
        for message in load_data(str(path)).intent_examples:
            examples.append(
                {
                    "variant": path.stem,
                    "round": path.parent.name if path.parent != folder else "",
                    "text": message.get("text"),
                    "intent": message.get("intent"),
                    "entities": sorted((entity["entity"], str(entity["value"])) for entity in message.get("entities") or []),
                }
            )
    if not examples:
        raise SystemExit(f"No held-out examples found in {folder}; expected <variant>.yml files.")
    return examples


def macro_f1(gold: list[str], predicted: list[str]) -> float:
    """Return the mean F1 over the intents that occur in ``gold``."""
    from sklearn.metrics import f1_score

    labels = sorted(set(gold))
    return float(f1_score(gold, predicted, labels=labels, average="macro", zero_division=0))


def entity_scores(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Return micro precision and recall of (entity, value) pairs over ``rows``."""
    true_positive = predicted_total = gold_total = 0
    for row in rows:
        gold = Counter(row["entities"])
        predicted = Counter(row["predicted_entities"])
        true_positive += sum((gold & predicted).values())
        predicted_total += sum(predicted.values())
        gold_total += sum(gold.values())
    return {
        "precision": true_positive / predicted_total if predicted_total else 0.0,
        "recall": true_positive / gold_total if gold_total else 0.0,
        "gold": gold_total,
    }


async def predict(model_path: Path, examples: list[dict[str, Any]]) -> list[float]:
    """Parse every example with the model and store the predictions in it.

    Returns the parse latency of each example in milliseconds.
    """
    from rasa.core.agent import Agent

    agent = Agent.load(str(model_path))
    await agent.parse_message("warm-up")
    latencies_ms = []
    for example in examples:
        started = time.perf_counter()
        result = await agent.parse_message(example["text"])
        latencies_ms.append((time.perf_counter() - started) * 1000)
        example["predicted"] = result["intent"]["name"]
        example["confidence"] = result["intent"]["confidence"]
        # The classifier's own best intent, before FallbackClassifier replaces it.
        ranking = [r for r in result.get("intent_ranking", []) if r["name"] != "nlu_fallback"]
        top = ranking[0] if ranking else result["intent"]
        example["classifier_intent"] = top["name"]
        example["classifier_confidence"] = top["confidence"]
        example["predicted_entities"] = sorted((entity["entity"], str(entity["value"])) for entity in result.get("entities", []))
    return latencies_ms


def summarize(examples: list[dict[str, Any]], latencies_ms: list[float]) -> dict[str, Any]:
    """Build the report: macro F1 and accuracy per variant, per language and overall."""
    groups: dict[str, list[dict[str, Any]]] = {"all": examples}
    for example in examples:
        groups.setdefault(example["variant"], []).append(example)
    groups["vi+vi_nodiac"] = [e for e in examples if e["variant"] in ("vi", "vi_nodiac")]
    for example in examples:
        if example["round"]:
            groups.setdefault(example["round"], []).append(example)
    for example in examples:
        if example["round"]:
            groups.setdefault(f"{example['round']}/{example['variant']}", []).append(example)

    scores = {}
    for name, rows in groups.items():
        gold = [row["intent"] for row in rows]
        predicted = [row["predicted"] for row in rows]
        scores[name] = {
            "examples": len(rows),
            "macro_f1": round(macro_f1(gold, predicted), 4),
            "accuracy": round(sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(rows), 4),
            "entities": {k: round(v, 4) for k, v in entity_scores(rows).items()},
        }

    # Macro F1 had the fallback threshold been each of these values (the ambiguity
    # threshold is left out), to help choose FallbackClassifier's threshold.
    gold = [row["intent"] for row in examples]
    threshold_sweep = {}
    for threshold in (0.0, 0.3, 0.4, 0.5, 0.6, 0.7):
        predicted = [
            row["classifier_intent"] if row["classifier_confidence"] >= threshold else "nlu_fallback" for row in examples
        ]
        threshold_sweep[str(threshold)] = round(macro_f1(gold, predicted), 4)

    confusions: Counter[tuple[str, str]] = Counter(
        (row["intent"], row["predicted"]) for row in examples if row["intent"] != row["predicted"]
    )
    latencies_ms.sort()
    return {
        "scores": scores,
        "confusions": [
            {"gold": gold, "predicted": predicted, "count": count} for (gold, predicted), count in confusions.most_common()
        ],
        "errors": [
            {
                "variant": row["variant"],
                "round": row["round"],
                "text": row["text"],
                "gold": row["intent"],
                "predicted": row["predicted"],
                "confidence": round(row["confidence"], 3),
            }
            for row in examples
            if row["intent"] != row["predicted"]
        ],
        "fallback_threshold_sweep": threshold_sweep,
        "parse_latency_ms": {
            "p50": round(statistics.median(latencies_ms), 2),
            "p95": round(latencies_ms[int(0.95 * (len(latencies_ms) - 1))], 2),
            "max": round(latencies_ms[-1], 2),
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Evaluate the model and print a table; write the full report as JSON if asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="Trained model (.tar.gz).")
    parser.add_argument("--heldout", type=Path, default=HELDOUT_DIR, help="Folder of round subfolders with <variant>.yml files.")
    parser.add_argument("--out", type=Path, help="Write the full report (with every error) here as JSON.")
    parser.add_argument("--min-macro-f1", type=float, default=0.0, help="Exit with status 1 when overall macro F1 is lower.")
    args = parser.parse_args(argv)

    if not args.model.is_file():
        parser.error(f"model not found: {args.model}; train one first")

    # Rasa logs every parsed message at debug level through structlog otherwise.
    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    configure_logging_and_warnings(logging.WARNING)
    configure_structlog(logging.WARNING)

    examples = load_heldout(args.heldout)
    latencies_ms = asyncio.run(predict(args.model, examples))
    report = summarize(examples, latencies_ms)

    print(f"{'group':<18}{'n':>5}{'macro F1':>10}{'accuracy':>10}{'entity P':>10}{'entity R':>10}")
    for name, score in report["scores"].items():
        entities = score["entities"]
        print(
            f"{name:<18}{score['examples']:>5}{score['macro_f1']:>10.3f}{score['accuracy']:>10.3f}"
            f"{entities['precision']:>10.3f}{entities['recall']:>10.3f}"
        )
    print("parse latency ms (in process):", report["parse_latency_ms"])
    print("macro F1 by fallback threshold:", report["fallback_threshold_sweep"])
    for confusion in report["confusions"][:10]:
        print(f"  {confusion['gold']} -> {confusion['predicted']}: {confusion['count']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")

    overall = report["scores"]["all"]["macro_f1"]
    if overall < args.min_macro_f1:
        print(f"Overall macro F1 {overall:.3f} is below the minimum {args.min_macro_f1:.3f}.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
