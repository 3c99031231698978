"""How healthy is an embedding space? Effective rank (RankMe), hubness, anisotropy and intrinsic dimension.

- `rankme` (Garrido et al., 2023): the singular values σ of the n x d matrix (rows L2-normalised, not centred),
  p_k = σ_k / Σσ + 1e-7, RankMe = exp(-Σ p_k log p_k): how many dimensions the space really uses.
- `hubness_skew@10` (Radovanović et al., 2010): the skewness (Fisher) of N_10(x), the number of times x appears in
  the other documents' exact cosine top-10 (itself excluded); `anti_hub_fraction@10`: the share with N_10 = 0;
  `max_k_occurrence@10`: the largest N_10. A hub answers many queries it has nothing to do with.
- `mean_cosine`: the mean cosine over all distinct pairs, exactly, from the sum vector: high = anisotropic.
- `pca_dims_90`: principal components (centred) needed for 90 % of the variance.
- `caveat` (only when the space is degenerate): every document the same point, or documents with a zero vector
  (no usable words): the numbers then describe ties, not structure.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from embedlab.errors import InputError
from embedlab.neighbours import l2_normalise, top_k
from embedlab.projection import one_point

Progress = Callable[[float, str], None]
HUB_K = 10
QUERY_BLOCK = 1024   # documents whose top-k is found per matrix product (bounds memory at 100k documents)
MIN_DOCS = HUB_K + 2  # a top-10 of the others needs 11 others, and the skewness of N_10 more than one document


def require_enough_documents(n: int) -> None:
    """InputError when `n` documents are too few to diagnose (callers check before embedding them)."""
    if n < MIN_DOCS:
        raise InputError(f"diagnostics need at least {MIN_DOCS} documents, got {n}")


def rankme(X: np.ndarray) -> float:
    """RankMe of the L2-normalised rows (not centred); σ from the d x d Gram matrix (n may be 100k)."""
    Xn = l2_normalise(X).astype(np.float64)
    sigma = np.sqrt(np.clip(np.linalg.eigvalsh(Xn.T @ Xn), 0.0, None))
    if sigma.sum() == 0:
        return 0.0    # every vector zero: no direction used
    p = sigma / sigma.sum() + 1e-7
    return float(np.exp(-(p * np.log(p)).sum()))


def k_occurrence(X: np.ndarray, k: int = HUB_K, *, progress: Progress | None = None) -> np.ndarray:
    """N_k(x): how often each document is among the other documents' exact cosine top-k (self excluded)."""
    Xn = l2_normalise(X)
    n = len(Xn)
    counts = np.zeros(n, dtype=np.int64)
    for start in range(0, n, QUERY_BLOCK):
        rows = np.arange(start, min(n, start + QUERY_BLOCK))
        idx, _ = top_k(Xn, rows, k=k, exclude_self=True)
        np.add.at(counts, idx.ravel(), 1)
        if progress:
            progress(rows[-1] / n, f"exact top-{k} of {rows[-1] + 1:,}/{n:,} documents")
    return counts


def mean_cosine(X: np.ndarray) -> float:
    """Mean cosine over all distinct pairs: (|Σx|² − Σ|x|²) / (n(n − 1)) for unit rows."""
    Xn = l2_normalise(X).astype(np.float64)
    n = len(Xn)
    total = Xn.sum(axis=0)
    return float((total @ total - (Xn * Xn).sum()) / (n * (n - 1)))


def pca_dims(X: np.ndarray, share: float = 0.9) -> int:
    """Principal components (centred) needed to explain `share` of the variance."""
    Xc = np.asarray(X, dtype=np.float64)
    Xc = Xc - Xc.mean(axis=0)
    var = np.clip(np.linalg.eigvalsh(Xc.T @ Xc), 0.0, None)[::-1]
    if var.sum() == 0:
        return 0
    return int(np.searchsorted(np.cumsum(var) / var.sum(), share - 1e-12) + 1)


def diagnose(X: np.ndarray, *, model: str = "", progress: Progress | None = None,
             counts: np.ndarray | None = None) -> dict:
    """Every diagnostic of one embedding, as `diagnostics --json` writes it (DESIGN §3); `counts`: its N_10 when
    already computed (`k_occurrence(X)`), so the exact top-10 pass runs once."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[1] < 1:
        raise InputError(f"diagnostics need a 2-D embedding matrix, got shape {X.shape}")
    require_enough_documents(len(X))
    if not np.isfinite(X).all():
        raise InputError("the embedding contains NaN or infinite values")
    report = progress or (lambda f, m: None)
    report(0.0, "effective rank")
    out = {"model": model, "n_docs": int(len(X)), "dim": int(X.shape[1]), "rankme": round(rankme(X), 4)}
    if counts is None:
        counts = k_occurrence(X, HUB_K, progress=lambda f, m: report(0.05 + 0.9 * f, m))
    elif len(counts) != len(X):
        raise ValueError(f"{len(counts)} k-occurrence counts for {len(X)} documents")
    out.update({"hubness_skew@10": round(hubness_skew(counts), 4),
                "anti_hub_fraction@10": round(float((counts == 0).mean()), 6),
                "max_k_occurrence@10": int(counts.max()),
                "mean_cosine": round(mean_cosine(X), 6),
                "pca_dims_90": pca_dims(X, 0.9)})
    caveat = degenerate_space(X)
    if caveat:
        out["caveat"] = caveat
    report(1.0, "done")
    return out


def hubness_skew(counts: np.ndarray) -> float:
    """Skewness (Fisher) of N_k; 0 when every document is a neighbour equally often (scipy gives NaN there)."""
    from scipy.stats import skew

    counts = np.asarray(counts)
    if counts.size == 0 or counts.min() == counts.max():
        return 0.0
    return float(skew(counts))


def degenerate_space(X: np.ndarray) -> str | None:
    """A line saying why the diagnostics of X describe ties rather than structure, or None."""
    n = len(X)
    zero = int((~np.asarray(X).any(axis=1)).sum())
    if zero == n:
        return f"every one of the {n:,} documents has a zero vector: there is no space to diagnose"
    if one_point(l2_normalise(X)):
        return (f"all {n:,} documents have the same embedding (identical texts, or texts the model cannot tell "
                "apart): hubness, anti-hubs and the PCA dimension only reflect how ties are broken")
    if zero:
        return (f"{zero:,} of {n:,} documents have a zero vector (no usable words): their cosine with every "
                "document is 0, so their neighbours are arbitrary ties")
    return None


def hub_order(counts: np.ndarray) -> np.ndarray:
    """Rows by N_k, largest first (ties by lower row)."""
    counts = np.asarray(counts)
    return np.lexsort((np.arange(len(counts)), -counts))


def top_hubs(X: np.ndarray, n: int = 10, k: int = HUB_K) -> list[tuple[int, int]]:
    """The n documents that appear most often in the others' top-k: (row, N_k), most frequent first."""
    counts = k_occurrence(X, k)
    order = hub_order(counts)[:n]
    return [(int(i), int(counts[i])) for i in order]
