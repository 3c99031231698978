"""A deterministic fake embedder for fast tests (no model, no torch)."""
from __future__ import annotations

import hashlib

import numpy as np


class FakeEmbedder:
    """Hash-seeded random unit vectors; counts the texts it was asked to encode."""

    name = "fake"
    fitted_on_corpus = False
    has_tokens = False

    def __init__(self, dim: int = 16, version: int = 1) -> None:
        self.dim, self.version, self.encoded = dim, version, 0

    def identity(self) -> dict:
        return {"embedder": "fake", "dim": self.dim, "version": self.version}

    def dimension(self) -> int:
        return self.dim

    def fit(self, corpus) -> "FakeEmbedder":
        return self

    def encode_with_tokens(self, texts, *, batch_size=32, progress=None):
        raise NotImplementedError("the fake embedder has no token embeddings")

    def encode(self, texts, *, batch_size=None, progress=None) -> np.ndarray:
        texts = list(texts)
        self.encoded += len(texts)
        out = np.stack([np.random.default_rng(int(hashlib.md5(t.encode()).hexdigest()[:8], 16)).normal(size=self.dim)
                        for t in texts]).astype(np.float32) if texts else np.zeros((0, self.dim), np.float32)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        if progress:
            progress(1.0, "done")
        return out
