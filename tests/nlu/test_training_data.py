"""Checks on the Rasa domain, training data, rules, config and held-out examples.

These read the YAML files directly, so they run in the app venv without Rasa.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from nlu.text import KHMER_RANGE, LAO_RANGE, fold_diacritics, normalize

ROOT = Path(__file__).resolve().parents[2]
NLU_DIR = ROOT / "nlu"
TRAINING_DIR = NLU_DIR / "data" / "nlu"
HELDOUT_DIR = NLU_DIR / "test_data" / "heldout"

REQUIRED_INTENTS = (
    "greet",
    "goodbye",
    "help",
    "ask_question",
    "start_assessment",
    "list_events",
    "subscribe_events",
    "unsubscribe_events",
    "set_language",
    "delete_my_data",
    "affirm",
    "deny",
    "cancel",
    "human_handoff",
    "out_of_scope",
    "resume",
    "thanks",
)
#: One training file per language variant; vi_nodiac is Vietnamese typed without diacritics.
VARIANTS = ("vi", "vi_nodiac", "en", "km", "lo")
MIN_EXAMPLES_PER_INTENT = 30
MIN_EXAMPLES_PER_VARIANT = 5

_ANNOTATION = re.compile(r"\[([^\]]*)\](?:\{[^}]*\}|\([^)]*\))")


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def intent_examples(path: Path) -> dict[str, list[str]]:
    """Return intent -> example texts of a Rasa NLU file, with entity markup removed."""
    examples: dict[str, list[str]] = {}
    for block in load_yaml(path).get("nlu", []):
        if "intent" not in block:
            continue
        lines = [line.strip()[2:] for line in block["examples"].splitlines() if line.strip().startswith("- ")]
        examples.setdefault(block["intent"], []).extend(_ANNOTATION.sub(r"\1", line) for line in lines)
    return examples


def comparison_key(text: str) -> str:
    """Return ``text`` folded, lower-cased and reduced to its words."""
    return " ".join(re.findall(r"\w+", fold_diacritics(normalize(text)).lower()))


@pytest.fixture(scope="module")
def training() -> dict[str, dict[str, list[str]]]:
    return {variant: intent_examples(TRAINING_DIR / f"{variant}.yml") for variant in VARIANTS}


@pytest.fixture(scope="module")
def heldout() -> list[tuple[Path, str, str]]:
    rows = []
    for path in sorted(HELDOUT_DIR.rglob("*.yml")):
        for intent, texts in intent_examples(path).items():
            rows.extend((path, intent, text) for text in texts)
    return rows


def test_domain_lists_required_intents() -> None:
    domain = load_yaml(NLU_DIR / "domain.yml")
    assert set(REQUIRED_INTENTS) | {"press"} <= set(domain["intents"])


def test_domain_has_only_action_spin() -> None:
    domain = load_yaml(NLU_DIR / "domain.yml")
    assert domain["actions"] == ["action_spin"]
    assert {"cmd", "language", "sector"} <= set(domain["entities"])


def test_domain_session_config() -> None:
    session = load_yaml(NLU_DIR / "domain.yml")["session_config"]
    assert session["session_expiration_time"] == 60
    assert session["carry_over_slots_to_new_session"] is False


def test_every_intent_has_enough_examples(training: dict[str, dict[str, list[str]]]) -> None:
    for intent in REQUIRED_INTENTS:
        total = sum(len(training[variant].get(intent, [])) for variant in VARIANTS)
        assert total >= MIN_EXAMPLES_PER_INTENT, f"{intent} has {total} training examples"


def test_every_variant_covers_every_intent(training: dict[str, dict[str, list[str]]]) -> None:
    for variant in VARIANTS:
        for intent in REQUIRED_INTENTS:
            count = len(training[variant].get(intent, []))
            assert count >= MIN_EXAMPLES_PER_VARIANT, f"{variant}.yml has {count} examples of {intent}"


def test_training_files_use_their_script(training: dict[str, dict[str, list[str]]]) -> None:
    def count(text: str, bounds: tuple[str, str]) -> int:
        return sum(bounds[0] <= char <= bounds[1] for char in text)

    for intent, texts in training["km"].items():
        for text in texts:
            assert count(text, KHMER_RANGE) > 0, f"km.yml {intent}: {text!r} has no Khmer"
    for intent, texts in training["lo"].items():
        for text in texts:
            assert count(text, LAO_RANGE) > 0, f"lo.yml {intent}: {text!r} has no Lao"
    for intent, texts in training["vi_nodiac"].items():
        for text in texts:
            assert text.isascii(), f"vi_nodiac.yml {intent}: {text!r} has diacritics"


def test_vietnamese_file_has_diacritics(training: dict[str, dict[str, list[str]]]) -> None:
    texts = [text for examples in training["vi"].values() for text in examples]
    with_marks = sum(fold_diacritics(text) != text for text in texts)
    assert with_marks >= 0.8 * len(texts)


def test_training_examples_are_normalised(training: dict[str, dict[str, list[str]]]) -> None:
    for variant, examples in training.items():
        for texts in examples.values():
            for text in texts:
                assert normalize(text) == text, f"{variant}.yml: {text!r} is not normalised"


def test_no_example_under_two_intents(training: dict[str, dict[str, list[str]]]) -> None:
    owners: dict[str, set[str]] = {}
    for examples in training.values():
        for intent, texts in examples.items():
            for text in texts:
                owners.setdefault(comparison_key(text), set()).add(intent)
    conflicts = {key: intents for key, intents in owners.items() if len(intents) > 1}
    assert conflicts == {}


def test_rules_send_every_intent_to_action_spin() -> None:
    domain_intents = load_yaml(NLU_DIR / "domain.yml")["intents"]
    rules = load_yaml(NLU_DIR / "data" / "rules.yml")["rules"]
    covered = {}
    for rule in rules:
        steps = rule["steps"]
        assert len(steps) == 2, rule["rule"]
        covered[steps[0]["intent"]] = steps[1]["action"]
    for intent in [*domain_intents, "nlu_fallback"]:
        assert covered.get(intent) == "action_spin", f"no rule sends {intent} to action_spin"


def test_config_pipeline_and_policies() -> None:
    config = load_yaml(ROOT / "config.yml")
    names = [component["name"] for component in config["pipeline"]]
    assert config["assistant_id"]
    assert names[0] == "nlu.components.SpinTokenizer"
    assert "FallbackClassifier" in names
    assert [policy["name"] for policy in config["policies"]] == ["RulePolicy"]


def test_language_synonyms_map_to_codes() -> None:
    synonyms = [block for block in load_yaml(TRAINING_DIR / "synonyms.yml")["nlu"] if "synonym" in block]
    values = {block["synonym"] for block in synonyms}
    assert {"vi", "en", "km", "lo"} <= values


def test_heldout_covers_every_variant_and_intent(heldout: list[tuple[Path, str, str]]) -> None:
    pairs = Counter((path.stem, intent) for path, intent, _ in heldout)
    for variant in VARIANTS:
        for intent in REQUIRED_INTENTS:
            assert pairs[(variant, intent)] >= 1, f"no held-out {variant} example of {intent}"


def test_heldout_is_outside_training_path() -> None:
    training_root = (NLU_DIR / "data").resolve()
    for path in HELDOUT_DIR.rglob("*.yml"):
        assert training_root not in path.resolve().parents


def test_heldout_examples_not_in_training(
    training: dict[str, dict[str, list[str]]], heldout: list[tuple[Path, str, str]]
) -> None:
    seen = {comparison_key(text) for examples in training.values() for texts in examples.values() for text in texts}
    leaks = [f"{path.parent.name}/{path.name}: {text}" for path, _, text in heldout if comparison_key(text) in seen]
    assert leaks == []
