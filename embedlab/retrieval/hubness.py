"""Hubness reduction: InvGC (Wang et al., 2023, "InvGC: Robust Cross-Modal Retrieval by Inverse Graph Convolution").

Each document vector is pushed away from its reference banks, then renormalised:
    x' = x - r_gallery * A(x, gallery) - r_query * A(x, training queries),   x' <- x' / |x'|
    A(x, Y) = (1/N) * sum_j (<x, y_j> - mean_j <x, y_j>) * y_j            (InvGC, N = |Y|)
    A(x, Y) = (1/K) * sum_{j in top-K of <x, y_j>} <x, y_j> * y_j          (LocalAdj, K = ceil(top_frac * N))
Queries are not changed; search is exact cosine against the adjusted documents (the method: `methods/invgc.py`).
"""
from __future__ import annotations

import math

import numpy as np

from embedlab.neighbours import l2_normalise, top_k_of_scores


def bank_adjustment(x: np.ndarray, bank: np.ndarray, *, local_adj: bool = False, top_frac: float = 0.01,
                    block: int = 4096) -> np.ndarray:
    """A(x, bank) for every row of x (see the module docstring), in row blocks of x."""
    x = np.asarray(x, dtype=np.float32)
    bank = np.asarray(bank, dtype=np.float32)
    n_bank = len(bank)
    out = np.zeros_like(x)
    if n_bank == 0:
        return out
    top = max(1, math.ceil(top_frac * n_bank))
    for s in range(0, len(x), block):
        sims = x[s:s + block] @ bank.T
        if local_adj:
            if top < n_bank:
                # Exactly `top` neighbours per row (the most similar ones), weighted by their similarity.
                keep = np.zeros_like(sims, dtype=bool)
                np.put_along_axis(keep, top_k_of_scores(sims, top)[0], True, axis=1)
                weights = np.where(keep, sims, 0.0)
            else:
                weights = sims
            out[s:s + block] = (weights @ bank) / top
        else:
            weights = sims - sims.mean(axis=1, keepdims=True)
            out[s:s + block] = (weights @ bank) / n_bank
    return out


def invgc(docs: np.ndarray, *, query_bank: np.ndarray | None = None, r_gallery: float = 1.0,
          r_query: float = 1.0, local_adj: bool = False, top_frac: float = 0.01) -> np.ndarray:
    """Adjusted, renormalised document vectors; the gallery bank is the documents themselves."""
    docs = np.asarray(docs, dtype=np.float32)
    adjusted = docs - r_gallery * bank_adjustment(docs, docs, local_adj=local_adj, top_frac=top_frac)
    if query_bank is not None and len(query_bank) and r_query:
        adjusted -= r_query * bank_adjustment(docs, query_bank, local_adj=local_adj, top_frac=top_frac)
    return l2_normalise(adjusted)
