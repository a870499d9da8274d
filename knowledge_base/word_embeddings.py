"""A word-embedding table read from the model file row by row, instead of held in memory.

multilingual-e5-small has an XLM-R vocabulary of 250,037 tokens: its word-embedding
table is 192 MB in bfloat16, 82% of the model's weights, while a question touches a few
dozen rows. ``FileBackedEmbedding`` takes the place of the model's ``nn.Embedding`` and
reads the rows each lookup needs with ``os.pread`` through the page cache, which the
kernel shares between processes and can drop. ``knowledge_base.embedding_model`` swaps
it into the e5 build when it loads the model for serving.

Memory-mapping the table would not keep it small: every page fault also maps the
neighbouring cached pages (the kernel's fault-around, 64 KB by default), so touching
2,000 random rows made 166 MB resident on Linux 6.18, with or without ``MADV_RANDOM``.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

#: Tensor name of the word-embedding table in a built folder's model.safetensors.
WORD_EMBEDDINGS_TENSOR = "embeddings.word_embeddings.weight"

#: safetensors dtype names this module reads, and their torch dtypes.
_SAFETENSORS_DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}
#: Size of the little-endian header length at the start of a safetensors file.
_HEADER_LENGTH_BYTES = 8


class EmbeddingFileError(ValueError):
    """The weights file has no usable word-embedding table, or it is truncated."""


class FileBackedEmbedding(torch.nn.Module):
    """Word-embedding lookup that reads only the requested rows from a safetensors file.

    The file stays open for the life of the module. ``os.pread`` keeps no file position,
    so threads can embed at the same time. A lookup makes one system call per distinct token.
    """

    def __init__(self, path: Path, tensor_name: str = WORD_EMBEDDINGS_TENSOR) -> None:
        super().__init__()
        with path.open("rb") as handle:
            (header_size,) = struct.unpack("<Q", handle.read(_HEADER_LENGTH_BYTES))
            header = json.loads(handle.read(header_size))
        entry = header.get(tensor_name)
        if entry is None or entry.get("dtype") not in _SAFETENSORS_DTYPES or len(entry.get("shape", ())) != 2:
            raise EmbeddingFileError(
                f"{path} has no 2-dimensional float tensor {tensor_name!r}. Rebuild the model folder with "
                "`python -m knowledge_base.embedding_model`."
            )
        self.path = path
        self.dtype = _SAFETENSORS_DTYPES[entry["dtype"]]
        self.num_embeddings, self.embedding_dim = (int(size) for size in entry["shape"])
        self.row_bytes = self.embedding_dim * torch.finfo(self.dtype).bits // 8
        self.data_offset = _HEADER_LENGTH_BYTES + header_size + int(entry["data_offsets"][0])
        self._file = path.open("rb", buffering=0)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Return the rows of ``input_ids``, shape ``input_ids.shape + (embedding_dim,)``."""
        unique_ids, inverse = torch.unique(input_ids, return_inverse=True)
        ids = unique_ids.tolist()
        if not ids:
            return torch.zeros((*input_ids.shape, self.embedding_dim), dtype=self.dtype)
        if ids[0] < 0 or ids[-1] >= self.num_embeddings:
            raise IndexError(f"Token ids {ids[0]}..{ids[-1]} are out of range for a table of {self.num_embeddings} rows.")

        rows = bytearray(len(ids) * self.row_bytes)
        descriptor = self._file.fileno()
        for position, token_id in enumerate(ids):
            data = os.pread(descriptor, self.row_bytes, self.data_offset + token_id * self.row_bytes)
            if len(data) != self.row_bytes:
                raise EmbeddingFileError(
                    f"{self.path} ends inside the row of token {token_id}. Rebuild the model folder with "
                    "`python -m knowledge_base.embedding_model`."
                )
            rows[position * self.row_bytes : (position + 1) * self.row_bytes] = data

        table = torch.frombuffer(rows, dtype=self.dtype).view(len(ids), self.embedding_dim)
        return table[inverse]

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, dtype={self.dtype}, file={self.path.name}"


def serve_word_embeddings_from_file(transformer: torch.nn.Module, weights_file: Path) -> bool:
    """Replace ``transformer.embeddings.word_embeddings`` by a ``FileBackedEmbedding`` of ``weights_file``.

    Returns False, and changes nothing, when the model has no such attribute or the file's
    table differs in shape or dtype from the loaded one: the lookup must give the same rows.
    """
    embeddings = getattr(transformer, "embeddings", None)
    loaded = getattr(embeddings, "word_embeddings", None)
    if not isinstance(loaded, torch.nn.Embedding):
        return False
    backed = FileBackedEmbedding(weights_file)
    if (backed.num_embeddings, backed.embedding_dim) != tuple(loaded.weight.shape) or backed.dtype != loaded.weight.dtype:
        logger.warning(
            "Word embeddings of %s (%s, %s) differ from the loaded model's; keeping them in memory",
            weights_file, (backed.num_embeddings, backed.embedding_dim), backed.dtype,
        )  # fmt: skip
        return False
    embeddings.word_embeddings = backed  # type: ignore[union-attr]
    return True
