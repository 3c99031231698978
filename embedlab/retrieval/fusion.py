"""Reciprocal Rank Fusion (Cormack et al., 2009) of ranked runs, for the hybrid method (`methods/hybrid_rrf.py`).

A faithful reimplementation of ranx's `fuse(method="rrf")`: each run contributes 1 / (k + rank), rank from 1 in
that run's order, summed over runs (a document absent from a run gets nothing from it). Checked against ranx in
the tests; done in numpy so that a single query does not pay ranx's per-call Run construction.
"""
from __future__ import annotations

import numpy as np


def rrf_fuse(runs: list[np.ndarray], n_docs: int, *, k: int = 60) -> np.ndarray:
    """[n_q, n_docs] RRF scores from ranked id lists ([n_q, depth_i] each, best first; -1 pads)."""
    n_q = len(runs[0]) if runs else 0
    fused = np.zeros((n_q, n_docs), dtype=np.float64)
    rows = np.arange(n_q)[:, None]
    for ids in runs:
        ids = np.asarray(ids, dtype=np.int64)
        contrib = np.broadcast_to(1.0 / (k + np.arange(1, ids.shape[1] + 1)), ids.shape)
        valid = ids >= 0
        np.add.at(fused, (np.broadcast_to(rows, ids.shape)[valid], ids[valid]), contrib[valid])
    return fused
