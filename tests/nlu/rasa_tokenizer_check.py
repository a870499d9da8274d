"""Checks of nlu.components.SpinTokenizer that need Rasa, so they run in the Rasa venv.

Run from the repository root (pytest is not installed in that venv)::

    PYTHONPATH=. RASA_TELEMETRY_ENABLED=false .venv-rasa/bin/python tests/nlu/rasa_tokenizer_check.py

Prints one line per failed check and ends with "N passed, N failed"; exits 1 on failure.
"""

from __future__ import annotations

import random
import sys
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.message import Message

from nlu.components import SpinTokenizer

ROOT = Path(__file__).resolve().parents[2]
CHECKS: list[Callable[[SpinTokenizer], None]] = []


def check(function: Callable[[SpinTokenizer], None]) -> Callable[[SpinTokenizer], None]:
    CHECKS.append(function)
    return function


def tokens_of(tokenizer: SpinTokenizer, text: str) -> list:
    return tokenizer.tokenize(Message(data={"text": text}), "text")


def assert_offsets_valid(text: str, tokens: list) -> None:
    for token in tokens:
        assert 0 <= token.start <= token.end <= len(text), (text[:40], token.text, token.start, token.end)


@check
def empty_text_gives_one_empty_token(tokenizer: SpinTokenizer) -> None:
    tokens = tokens_of(tokenizer, "")
    assert [(t.text, t.start, t.end) for t in tokens] == [("", 0, 0)]


@check
def emoji_only_keeps_one_token(tokenizer: SpinTokenizer) -> None:
    tokens = tokens_of(tokenizer, "😀👍")
    assert len(tokens) == 1
    assert tokens[0].text == "😀👍"


@check
def control_characters_do_not_raise(tokenizer: SpinTokenizer) -> None:
    for text in ("\x00\x01\x02", "a\x00b\x07c", "\u200b\u200e", "\r\n\t"):
        assert_offsets_valid(text, tokens_of(tokenizer, text))
    assert [t.text for t in tokens_of(tokenizer, "a\x00b")] == ["a", "b"]


@check
def long_message_is_capped_and_fast(tokenizer: SpinTokenizer) -> None:
    text = ("Tôi muốn hỏi về bao bì 👍 ខ្ញុំចង់សួរ ສະບາຍດີ \x01 " * 500)[:20000]
    started = time.perf_counter()
    tokens = tokens_of(tokenizer, text)
    elapsed = time.perf_counter() - started
    assert len(tokens) == tokenizer.max_tokens
    assert elapsed < 2.0, elapsed
    assert_offsets_valid(text, tokens)


@check
def single_huge_word_is_bounded(tokenizer: SpinTokenizer) -> None:
    tokens = tokens_of(tokenizer, "a" * 20000)
    assert len(tokens) == 1
    assert len(tokens[0].text) <= tokenizer.max_tokens * 32


@check
def folded_tokens_follow_vietnamese_words(tokenizer: SpinTokenizer) -> None:
    texts = [t.text for t in tokens_of(tokenizer, "giảm bao bì nhựa")]
    assert texts == ["giảm", "giam", "bao", "bì", "bi", "nhựa", "nhua"]


@check
def folded_form_shares_offsets(tokenizer: SpinTokenizer) -> None:
    tokens = tokens_of(tokenizer, "bao bì")
    assert (tokens[1].start, tokens[1].end) == (tokens[2].start, tokens[2].end) == (4, 6)


@check
def decomposed_input_maps_to_original_offsets(tokenizer: SpinTokenizer) -> None:
    text = unicodedata.normalize("NFD", "đổi sang tiếng Việt")
    tokens = tokens_of(tokenizer, text)
    last = tokens[-2]
    assert last.text == "Việt"
    assert unicodedata.normalize("NFC", text[last.start : last.end]) == "Việt"


@check
def zero_width_inside_word_is_joined(tokenizer: SpinTokenizer) -> None:
    text = "bao\u200bbì"
    tokens = tokens_of(tokenizer, text)
    assert tokens[0].text == "baobì"
    assert (tokens[0].start, tokens[0].end) == (0, len(text))


@check
def khmer_is_segmented(tokenizer: SpinTokenizer) -> None:
    text = "ខ្ញុំចង់ប្តូរទៅភាសាអង់គ្លេស"
    tokens = tokens_of(tokenizer, text)
    assert len(tokens) >= 4
    assert "".join(text[t.start : t.end] for t in tokens) == text


@check
def lao_am_vowel_stays_in_word(tokenizer: SpinTokenizer) -> None:
    text = "ຈະບຳບັດນ້ຳເສຍແນວໃດ"
    tokens = tokens_of(tokenizer, text)
    assert all(not t.text.startswith("\u0eb3") for t in tokens)
    assert "".join(t.text for t in tokens) == text


@check
def random_text_never_raises(tokenizer: SpinTokenizer) -> None:
    generator = random.Random(7)
    pools = [(0x20, 0x7E), (0x1780, 0x17FF), (0x0E80, 0x0EFF), (0x0300, 0x036F), (0x1EA0, 0x1EF9), (0, 0x3000)]
    for _ in range(500):
        length = generator.randint(0, 60)
        text = "".join(chr(generator.randint(*generator.choice(pools))) for _ in range(length))
        assert_offsets_valid(text, tokens_of(tokenizer, text))


@check
def entity_annotations_align_with_tokens(tokenizer: SpinTokenizer) -> None:
    paths = sorted((ROOT / "nlu" / "data" / "nlu").glob("*.yml")) + sorted(
        (ROOT / "nlu" / "test_data" / "heldout").rglob("*.yml")
    )
    for path in paths:
        for example in load_data(str(path)).training_examples:
            entities = example.get("entities") or []
            if not entities:
                continue
            tokens = tokenizer.tokenize(example, "text")
            starts = {t.start for t in tokens}
            ends = {t.end for t in tokens}
            for entity in entities:
                assert entity["start"] in starts, (path.name, example.get("text"), entity)
                assert entity["end"] in ends, (path.name, example.get("text"), entity)


def check_trained_model(model_path: Path) -> None:
    """Parse messages without known words with the trained model: all must fall back."""
    import asyncio
    import logging

    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    # Rasa logs every parsed message at debug level through structlog otherwise.
    configure_structlog(logging.WARNING)

    async def parse_all() -> dict[str, str]:
        agent = Agent.load(str(model_path))
        texts = ["", "😀", "👍", "\x00\x01", "?!", "123", "asdfgh qwerty", "a" * 20000, "ok"]
        return {text[:20]: (await agent.parse_message(text))["intent"]["name"] for text in texts}

    intents = asyncio.run(parse_all())
    assert intents.pop("ok") == "affirm", "the model no longer classifies 'ok' as affirm"
    wrong = {text: intent for text, intent in intents.items() if intent != "nlu_fallback"}
    assert wrong == {}, wrong


def main() -> int:
    tokenizer = SpinTokenizer(SpinTokenizer.get_default_config())
    checks: list[tuple[str, Callable[[], None]]] = [
        (function.__name__, lambda function=function: function(tokenizer)) for function in CHECKS
    ]
    model_path = ROOT / "var" / "rasa-models" / "spin.tar.gz"
    if model_path.is_file():
        checks.append(("trained_model_falls_back_on_unknown_words", lambda: check_trained_model(model_path)))
    else:
        print(f"Skipped the trained-model check: no model at {model_path}; run make train first.")

    failed = 0
    for name, run in checks:
        try:
            run()
        except Exception as error:
            # Report every failing check, then exit 1.
            failed += 1
            print(f"FAILED {name}: {type(error).__name__}: {error}")
    print(f"{len(checks) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
