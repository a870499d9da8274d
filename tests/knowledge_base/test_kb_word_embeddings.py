"""Word embeddings read row by row from the weights file give the same rows and vectors."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from knowledge_base.embedding_model import load_sentence_model
from knowledge_base.word_embeddings import (
    WORD_EMBEDDINGS_TENSOR,
    EmbeddingFileError,
    FileBackedEmbedding,
    serve_word_embeddings_from_file,
)


def _weights_file(tmp_path: Path, table: torch.Tensor) -> Path:
    path = tmp_path / "model.safetensors"
    # Another tensor first, so the table does not start at the data section's offset 0.
    save_file({"a.bias": torch.ones(3, dtype=table.dtype), WORD_EMBEDDINGS_TENSOR: table}, str(path))
    return path


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_lookup_matches_in_memory_embedding(tmp_path: Path, dtype: torch.dtype) -> None:
    table = torch.randn(50, 8).to(dtype)
    backed = FileBackedEmbedding(_weights_file(tmp_path, table))
    ids = torch.tensor([[3, 49, 3, 0], [7, 7, 1, 2]])

    rows = backed(ids)

    assert rows.dtype == dtype
    assert rows.shape == (2, 4, 8)
    assert torch.equal(rows, torch.nn.functional.embedding(ids, table))


def test_out_of_range_id_is_refused(tmp_path: Path) -> None:
    backed = FileBackedEmbedding(_weights_file(tmp_path, torch.zeros(5, 4)))
    with pytest.raises(IndexError, match=r"0\.\.5 are out of range for a table of 5 rows"):
        backed(torch.tensor([[0, 5]]))


def test_file_without_table_names_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file({"other.weight": torch.zeros(2, 2)}, str(path))
    with pytest.raises(EmbeddingFileError, match=r"knowledge_base\.embedding_model"):
        FileBackedEmbedding(path)


def test_truncated_file_is_reported(tmp_path: Path) -> None:
    path = _weights_file(tmp_path, torch.ones(20, 4))
    (header_size,) = struct.unpack("<Q", path.read_bytes()[:8])
    header = json.loads(path.read_bytes()[8 : 8 + header_size])
    start = 8 + header_size + header[WORD_EMBEDDINGS_TENSOR]["data_offsets"][0]
    path.write_bytes(path.read_bytes()[: start + 10 * 16])
    backed = FileBackedEmbedding(path)
    assert torch.equal(backed(torch.tensor([9])), torch.ones(1, 4))
    with pytest.raises(EmbeddingFileError, match="ends inside the row of token 10"):
        backed(torch.tensor([10]))


def test_mismatched_table_keeps_the_loaded_one(tmp_path: Path) -> None:
    transformer = torch.nn.Module()
    transformer.embeddings = torch.nn.Module()
    transformer.embeddings.word_embeddings = torch.nn.Embedding(50, 8)
    path = _weights_file(tmp_path, torch.zeros(40, 8))

    assert not serve_word_embeddings_from_file(transformer, path)
    assert isinstance(transformer.embeddings.word_embeddings, torch.nn.Embedding)


def test_served_e5_model_reads_word_embeddings_from_file(e5_model_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer

    served = load_sentence_model(str(e5_model_dir))
    assert isinstance(served[0].auto_model.embeddings.word_embeddings, FileBackedEmbedding)
    in_memory = SentenceTransformer(
        str(e5_model_dir), device="cpu", local_files_only=True, model_kwargs={"dtype": torch.bfloat16}
    )
    texts = ["Giảm bao bì nhựa", "dye house water", "ការសន្សំទឹក", "ປະຢັດພະລັງງານ"]
    ids = served.tokenize(texts)["input_ids"]
    assert torch.equal(
        served[0].auto_model.embeddings.word_embeddings(ids), in_memory[0].auto_model.embeddings.word_embeddings(ids)
    )
