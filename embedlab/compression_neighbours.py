"""How compression moves a document's nearest neighbours: its top-10 under the compressed retrieval methods (int8
and binary quantisation with rescoring, Matryoshka truncation, MaxSim over token embeddings) against exact dense
cosine, and overlap@10 of each compressed method over the whole corpus (a map colour layer).

Documents are their own queries: every method is the registry's (`create_method`), built on the corpus exactly as
the Retrieval lab builds it, and searched for k + 1 results, from which the document itself is removed (so int8
and binary rescore (k + 1) x rescore_multiplier candidates: 44 for k = 10). The reference is the exact blockwise
top-k (`neighbours.top_k`, itself excluded).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from embedlab.neighbours import top_k
from embedlab.retrieval.base import RetrievalMethod, TextSet, TokenMatrix
from embedlab.retrieval.registry import create_method

Progress = Callable[[float, str], None]
K = 10
EXACT = "dense"
QUANTISED = ("int8-rescore", "binary-rescore")
ROW_BLOCK = 1024            # documents searched at once for a corpus-wide layer (progress granularity)


def matryoshka_name(dims: int) -> str:
    """The registry name of Matryoshka truncation to `dims` leading dimensions."""
    return f"matryoshka-{int(dims)}"


def default_dims(dim: int) -> int:
    """Default Matryoshka width: half the embedding dimension (192 of 384), at least 1."""
    return max(1, int(dim) // 2)


def layer_methods(dims: int) -> list[str]:
    """The compressed methods that get a corpus-wide layer (MaxSim is left out: exact late interaction over every
    document is too slow to run once per document)."""
    return [*QUANTISED, matryoshka_name(dims)]


def build_method(name: str, X: np.ndarray, *, tokens: TokenMatrix | tuple[np.ndarray, np.ndarray] | None = None,
                 **params) -> RetrievalMethod:
    """The registry's method `name` built on the corpus X (rows L2-normalised) and, for MaxSim, its tokens."""
    method = create_method(name, **params)
    method.load_libraries()
    return method.build(TextSet.from_arrays(embeddings=np.asarray(X, dtype=np.float32), tokens=tokens))


def method_neighbours(method: RetrievalMethod, X: np.ndarray, rows: Sequence[int] | np.ndarray, *, k: int = K,
                      tokens: TokenMatrix | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k documents of each given row (itself excluded) under a built method, best first: (ids, scores),
    each [len(rows), min(k, n - 1)]."""
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    n = len(X)
    k = int(max(0, min(k, n - 1)))
    q_tokens = tokens.subset(rows) if tokens is not None else None
    queries = TextSet.from_arrays(embeddings=np.asarray(X)[rows], tokens=q_tokens) if len(rows) else \
        TextSet.from_arrays(embeddings=np.zeros((0, np.asarray(X).shape[1]), np.float32))
    ids, scores = method.search(queries, k + 1)
    ids, scores = np.asarray(ids, np.int64), np.asarray(scores, np.float32)
    keep = ids != rows[:, None]
    order = np.argsort(~keep, axis=1, kind="stable")
    return (np.take_along_axis(ids, order, axis=1)[:, :k], np.take_along_axis(scores, order, axis=1)[:, :k])


def exact_neighbours(X: np.ndarray, rows: Sequence[int] | np.ndarray, *, k: int = K) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine top-k of each given row, itself excluded (`neighbours.top_k`): (ids, scores)."""
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    return top_k(np.asarray(X, dtype=np.float32), rows, k=k, exclude_self=True)


def overlap_at_k(ids: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per row, the share of the reference's k neighbours that `ids` also has (overlap@k, 0..1)."""
    ids, reference = np.atleast_2d(ids), np.atleast_2d(reference)
    k = reference.shape[1]
    if k == 0:
        return np.ones(len(reference), dtype=np.float32)
    hits = (reference[:, :, None] == ids[:, None, :]).any(axis=2).sum(axis=1)
    return (hits / k).astype(np.float32)


def focus_neighbours(X: np.ndarray, row: int, methods: dict[str, RetrievalMethod], *, k: int = K,
                     tokens: TokenMatrix | None = None) -> dict[str, dict]:
    """One document's top-k under exact dense and each built method: name -> {"ids", "scores", "overlap"}
    (overlap@k to exact dense; exact dense itself first, overlap 1)."""
    ex_ids, ex_sc = exact_neighbours(X, [row], k=k)
    out = {EXACT: {"ids": ex_ids[0], "scores": ex_sc[0], "overlap": 1.0}}
    for name, method in methods.items():
        ids, sc = method_neighbours(method, X, [row], k=k, tokens=tokens if name == "maxsim" else None)
        out[name] = {"ids": ids[0], "scores": sc[0], "overlap": float(overlap_at_k(ids, ex_ids)[0])}
    return out


def sample_rows(n: int, size: int = 2_000, seed: int = 0) -> np.ndarray:
    """A seeded sample of `size` document rows (all rows when n <= size), sorted."""
    if n <= size:
        return np.arange(n, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False)).astype(np.int64)


def corpus_exact(X: np.ndarray, rows: np.ndarray | None = None, *, k: int = K,
                 progress: Progress | None = None) -> np.ndarray:
    """Exact top-k ids (itself excluded) of every document, or of the given rows, computed in blocks of rows."""
    rows = np.arange(len(X), dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    m = len(rows)
    out = np.empty((m, max(0, min(k, len(X) - 1))), dtype=np.int64)
    for start in range(0, m, ROW_BLOCK):
        end = min(m, start + ROW_BLOCK)
        out[start:end] = exact_neighbours(X, rows[start:end], k=k)[0]
        if progress:
            progress(end / max(1, m), f"exact top-{k}: {end:,}/{m:,} documents")
    return out


def overlap_layer(X: np.ndarray, method: RetrievalMethod, reference: np.ndarray, rows: np.ndarray | None = None,
                  *, k: int = K, progress: Progress | None = None) -> np.ndarray:
    """overlap@k with exact dense (`reference`: `corpus_exact` of the same rows) of every document, or of the
    given rows, under a built method."""
    rows = np.arange(len(X), dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    m = len(rows)
    out = np.empty(m, dtype=np.float32)
    for start in range(0, m, ROW_BLOCK):
        end = min(m, start + ROW_BLOCK)
        ids, _ = method_neighbours(method, X, rows[start:end], k=k)
        out[start:end] = overlap_at_k(ids, reference[start:end])
        if progress:
            progress(end / max(1, m), f"{method.name}: {end:,}/{m:,} documents")
    return out


def corpus_overlaps(X: np.ndarray, names: Sequence[str], rows: np.ndarray | None = None, *, k: int = K,
                    progress: Progress | None = None) -> dict[str, np.ndarray]:
    """overlap@k of every document (or of the given rows) under each named method (e.g. `layer_methods(192)`):
    name -> float32 array aligned with the rows."""
    report = progress or (lambda f, m: None)
    steps = len(names) + 1
    reference = corpus_exact(X, rows, k=k, progress=lambda f, m: report(f / steps, m))
    out = {}
    for i, name in enumerate(names, start=1):
        method = build_method(name, X)
        out[name] = overlap_layer(X, method, reference, rows, k=k,
                                  progress=lambda f, m, i=i: report((i + f) / steps, m))
    return out


def worst_documents(overlap: np.ndarray, n: int = 20) -> np.ndarray:
    """Rows with the lowest overlap, lowest first (ties by lower row)."""
    overlap = np.asarray(overlap)
    return np.lexsort((np.arange(len(overlap)), overlap))[:n]
