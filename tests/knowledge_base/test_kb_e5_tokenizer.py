"""The SentencePiece tokenizer of the e5 build gives the token ids of tokenizer.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from bot.settings import get_settings
from knowledge_base.content import load_articles
from knowledge_base.e5_tokenizer import (
    SENTENCEPIECE_FILE,
    TOKENIZER_CLASS_NAME,
    E5SentencePieceTokenizer,
    E5TokenizerError,
    sentencepiece_model,
)
from knowledge_base.embedding_model import PASSAGE_PROMPT, QUERY_PROMPT, load_sentence_model
from knowledge_base.evaluate import load_questions

EVAL_DIR = Path(__file__).resolve().parents[2] / "knowledge_base" / "eval"


def texts_to_compare() -> list[str]:
    """Every paragraph of the real articles as a passage, and every evaluation question as a query."""
    texts = []
    for article in load_articles(get_settings().kb_content_dir):
        texts.extend(PASSAGE_PROMPT + paragraph.strip() for paragraph in article.body.split("\n\n") if paragraph.strip())
    texts.extend(QUERY_PROMPT + question.q for question in load_questions(sorted(EVAL_DIR.glob("*.yml"))))
    # Text the normalisers must agree on: full-width forms, combining marks, tabs and
    # runs of spaces, non-breaking and zero-width spaces, emoji.
    texts.extend(
        QUERY_PROMPT + text
        for text in ("ＦＵＬＬ width ①", "e\u0301 va ê", "Xin chào,   tôi\tmuốn\n\nhỏi", "a\u00a0b\u200bc", "vải 😀 tái chế")
    )
    return texts


def test_model_folder_tokenizes_with_sentencepiece(e5_model_dir: Path) -> None:
    config = json.loads((e5_model_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["tokenizer_class"] == TOKENIZER_CLASS_NAME
    assert (e5_model_dir / SENTENCEPIECE_FILE).is_file()
    assert isinstance(load_sentence_model(str(e5_model_dir)).tokenizer, E5SentencePieceTokenizer)


def test_ids_match_tokenizer_json(e5_model_dir: Path, tokenizer: Tokenizer) -> None:
    served = load_sentence_model(str(e5_model_dir)).tokenizer
    texts = texts_to_compare()
    assert len(texts) > 3000
    differing = [text for text in texts if served(text)["input_ids"] != tokenizer.encode(text).ids]
    assert differing == []


def test_padded_batch_and_truncation_match(e5_model_dir: Path, tokenizer: Tokenizer) -> None:
    served = load_sentence_model(str(e5_model_dir)).tokenizer
    texts = texts_to_compare()[:40]
    batch = served(texts, padding=True, truncation=True)
    width = max(len(ids) for ids in batch["input_ids"])
    for text, ids, mask in zip(texts, batch["input_ids"], batch["attention_mask"], strict=True):
        expected = tokenizer.encode(text).ids
        assert ids == expected + [1] * (width - len(expected))
        assert mask == [1] * len(expected) + [0] * (width - len(expected))

    long_text = " ".join(texts)
    truncated = served(long_text, truncation=True, max_length=512)["input_ids"]
    assert len(truncated) == 512
    assert truncated[:-1] == tokenizer.encode(long_text).ids[:511]
    assert truncated[-1] == 2


def test_rejects_a_tokenizer_json_of_another_kind() -> None:
    with pytest.raises(E5TokenizerError, match="a BPE model of 0 pieces"):
        sentencepiece_model(json.dumps({"model": {"type": "BPE", "vocab": {}}}).encode())
    vocab = [["<s>", 0.0], ["<unk>", 0.0], ["</s>", 0.0], ["<pad>", 0.0], ["a", -1.0], ["<mask>", 0.0]]
    with pytest.raises(E5TokenizerError, match="'<unk>' at id 1"):
        sentencepiece_model(json.dumps({"model": {"type": "Unigram", "vocab": vocab}}).encode())
