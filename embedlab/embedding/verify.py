"""Does an imported matrix hold what its claimed model gives for its texts? Re-encode a sample of the documents with
the embedder the matrix's identity names and compare row by row (cosine). Only a verified matrix may enter the
shared cache (`storage.transfer`, which samples the rows and calls this module's `verify_embedding` and
`verify_tokens`: the module is its `MatrixVerifier`); anything that cannot be checked here counts as not verified.

The claimed embedder is rebuilt only from what this machine has: the TF-IDF baseline (fitted on the corpus's texts,
through `EmbeddingSpace`, as the cache computes it), the static model distilled from the bundled MiniLM, and
sentence-transformers models in a local folder (the bundled MiniLM, or a folder path) whose weights match the claimed
identity, run with the claimed backend. A hub name is
never downloaded to check a file: it stays unverified.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence

import numpy as np

from embedlab.embedding.embedders import (
    DEFAULT_MODEL,
    Embedder,
    SentenceTransformerEmbedder,
    TfidfSvdEmbedder,
    resolve_model_path,
)
from embedlab.embedding.space import EmbeddingSpace
from embedlab.embedding.static import StaticEmbedder
from storage.transfer import Verdict

MIN_COSINE = 0.999      # fp32 and bf16 encodings of MiniLM agree to ~0.9999, per document and per token
BACKENDS = ("fp32", "bf16")
MAX_TFIDF_PARAM = 10_000_000
EMPTY = 1e-3            # a stored row shorter than this is an empty document's (see storage.transfer)


class NotVerifiable(Exception):
    """The claimed embedder cannot be rebuilt here (internal: becomes a Verdict)."""


def claimed_embedder(identity: dict) -> Embedder:
    """An embedder here whose identity is exactly `identity` (weights hash, settings, backend), or NotVerifiable."""
    kind = identity.get("embedder")
    if kind == "tfidf-svd":
        params = [identity.get("n_components"), identity.get("max_features")]
        if not all(type(p) is int and 1 <= p <= MAX_TFIDF_PARAM for p in params):
            raise NotVerifiable("its tfidf-svd settings are not valid")
        embedder: Embedder = TfidfSvdEmbedder(*params)
    elif kind == "sentence-transformers":
        model, backend = identity.get("model"), identity.get("backend")
        if not isinstance(model, str) or backend not in BACKENDS:
            raise NotVerifiable("its model name or backend is not valid")
        path = resolve_model_path(model) if model == DEFAULT_MODEL else os.path.expanduser(model)
        if not os.path.isfile(os.path.join(path, "modules.json")):
            raise NotVerifiable(f"model {model!r} is not a local model here (a hub model is not downloaded to "
                                "check an import)")
        embedder = SentenceTransformerEmbedder(model, backend=backend)
    elif kind == "model2vec":      # minilm-static: distilled here from the bundled teacher (identity names both)
        embedder = StaticEmbedder()
    else:
        raise NotVerifiable(f"embedder {str(kind)[:40]!r} is unknown here")
    if embedder.identity() != identity:
        raise NotVerifiable(f"{embedder.name} here has other weights or settings than the file claims")
    return embedder


def verify_embedding(identity: dict, corpus: Callable[[], Sequence[str]], rows: np.ndarray,
                     texts: Sequence[str], stored: np.ndarray) -> Verdict:
    """Compare the stored rows `rows` (`stored`, one per text of `texts`) with a fresh encoding of those texts in
    the corpus's space (`corpus` loads every text: a corpus-fitted embedder is fitted on them first)."""
    def check(space: EmbeddingSpace) -> Verdict:
        fresh = space.encode(list(texts))
        return _compare(fresh, stored, rows)

    return _run(identity, corpus, check)


def verify_tokens(identity: dict, corpus: Callable[[], Sequence[str]], rows: np.ndarray, texts: Sequence[str],
                  stored: Sequence[np.ndarray]) -> Verdict:
    """Compare the stored token rows of documents `rows` (`stored[i]`: the token rows of `texts[i]`) with a fresh
    token encoding: the same number of tokens, each row within the cosine bound."""
    def check(space: EmbeddingSpace) -> Verdict:
        if not space.has_tokens:
            return Verdict(False, f"{space.model} has no token embeddings")
        fresh, offsets = space.encode_tokens(list(texts))
        for i, row in enumerate(rows):
            mine = fresh[offsets[i]:offsets[i + 1]]
            if mine.shape != stored[i].shape:
                return Verdict(False, f"document {row}: {len(stored[i])} token rows stored, the model gives "
                                      f"{len(mine)}")
            verdict = _compare(mine, stored[i], np.full(len(mine), row), what="a token of document")
            if not verdict.verified:
                return verdict
        return Verdict(True)

    return _run(identity, corpus, check)


def _run(identity: dict, corpus: Callable[[], Sequence[str]], check: Callable[[EmbeddingSpace], Verdict]) -> Verdict:
    """Rebuild the claimed embedder and run `check` in the corpus's space; any failure is a reason, never an error:
    a matrix that cannot be checked is simply not verified."""
    try:
        embedder = claimed_embedder(identity)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return check(EmbeddingSpace(None, corpus, embedder))
    except NotVerifiable as exc:
        return Verdict(False, str(exc))
    except Exception as exc:  # noqa: BLE001 - a model that fails to load or run: not verified, never shared
        return Verdict(False, f"cannot check it here: {type(exc).__name__}: {' '.join(str(exc).split())[:160]}")


def _compare(fresh: np.ndarray, stored: np.ndarray, rows: np.ndarray, what: str = "row") -> Verdict:
    """Row-wise cosine of two equally shaped blocks (two empty rows agree: shorter than EMPTY, as `l2_normalise`
    leaves a document whose vector is zero or numerical noise); the worst row must reach MIN_COSINE."""
    if fresh.shape != stored.shape:
        return Verdict(False, f"the model gives {fresh.shape[1]} dimensions, the file holds {stored.shape[1]}")
    if not len(fresh):
        return Verdict(True)
    a, b = fresh.astype(np.float64), stored.astype(np.float64)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    cos = (a * b).sum(axis=1) / np.maximum(na * nb, 1e-30)
    cos[(na < EMPTY) & (nb < EMPTY)] = 1.0
    worst = int(np.argmin(cos))
    if not cos[worst] >= MIN_COSINE:
        return Verdict(False, f"{what} {int(rows[worst])}: cosine {cos[worst]:.3f} with the model's own encoding "
                              f"(at least {MIN_COSINE} needed)")
    return Verdict(True)
