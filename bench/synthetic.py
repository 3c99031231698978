"""Synthetic corpora at scale, shared by bench/scale.py and the tests that open the Atlas on one (they import it as
`bench.synthetic`): clustered 384-d unit vectors, and a session `scale` that stores them with a map."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from embedlab.corpus import Corpus
from embedlab.embedding.cache import cache_key
from embedlab.embedding.embedders import DEFAULT_MODEL, get_embedder
from embedlab.projection import projection_params
from embedlab.tasks import projection_key
from storage import connect
from storage.corpora import save_corpus
from storage.matrices import save_matrix
from storage.sessions import ensure_session


def clustered(n: int, dim: int = 384, clusters: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    labels = rng.integers(0, clusters, size=n)
    X = centres[labels] + rng.normal(scale=0.6, size=(n, dim)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32), labels


def build_db(path: Path, X: np.ndarray, labels: np.ndarray, coords: np.ndarray) -> None:
    """A session `scale` whose corpus has X stored as its default-model embedding and coords as its UMAP map."""
    db = connect(path)
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta"]
    texts = [f"document {i} about topic {c} {words[i % 8]} {words[c % 8]}" for i, c in enumerate(labels)]
    corpus = Corpus(name="synthetic", source="bench", texts=texts, doc_ids=[str(i) for i in range(len(texts))],
                    labels=[f"topic {c}" for c in labels], text_col="text", label_col="label")
    info = save_corpus(db, ensure_session(db, "scale"), corpus)
    save_matrix(db, X, cache_key=cache_key(get_embedder(DEFAULT_MODEL), info.content_hash), kind="embedding",
                model=DEFAULT_MODEL, corpus_id=info.id, content_hash=info.content_hash)
    pkey = projection_key(db, info.id, DEFAULT_MODEL, projection_params(method="umap"))
    save_matrix(db, coords, cache_key=pkey, kind="projection", model=DEFAULT_MODEL,
                params=projection_params(method="umap"), corpus_id=info.id, content_hash=info.content_hash)
    db.close()
