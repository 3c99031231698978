"""Late interaction over token embeddings: exact MaxSim (ColBERT's scoring, Chamfer similarity) and MUVERA.

MaxSim(q, d) = sum over query tokens of the max cosine with the document's tokens (tokens L2-normalised).
Exact MaxSim scores every document: the query's tokens times the concatenated document-token matrix (kept
transposed, float32), in large blocks of whole documents, reduced by segment max (np.maximum.reduceat) per
document, then summed over query tokens. Nothing is skipped or approximated.

MUVERA (Dhulipala et al., 2024) turns each token set into one Fixed Dimensional Encoding whose inner product
approximates Chamfer similarity; candidates come from FDE inner products, the top `candidates` are re-ranked by
exact MaxSim. See `fde_encode` for the encoding (DESIGN §5). The methods: `methods/maxsim.py`, `methods/muvera.py`.
"""
from __future__ import annotations

import numpy as np

from embedlab.neighbours import l2_normalise
from embedlab.retrieval.base import TextSet, TokenMatrix


def maxsim_scores(query_tokens: np.ndarray, docs: TokenMatrix, *, token_block: int = 131072,
                  columns: np.ndarray | None = None) -> np.ndarray:
    """Exact MaxSim of one query ([n_tok, d]) against every document: float32 [n_docs].

    `columns` may hold the same token matrix transposed ([d, total_tokens], C order): the query-times-tokens
    product then runs as a plain (not transposed) matrix product, which BLAS does faster for a few query rows.
    """
    q = np.asarray(query_tokens, dtype=np.float32)
    scores = np.zeros(len(docs), dtype=np.float32)
    if len(q) == 0 or len(docs) == 0:
        return scores
    for d0, d1 in _doc_blocks(docs.offsets, token_block):
        base, end = docs.offsets[d0], docs.offsets[d1]
        starts = docs.offsets[d0:d1] - base
        nonempty = np.flatnonzero(np.diff(docs.offsets[d0:d1 + 1]) > 0)
        if len(nonempty) == 0:
            continue
        if columns is not None:
            sims = q @ columns[:, base:end]
        else:
            sims = q @ np.asarray(docs.data[base:end], dtype=np.float32).T
        # Empty documents own no rows, so the non-empty ones' starts partition the block's columns exactly.
        best = np.maximum.reduceat(sims, starts[nonempty], axis=1)
        scores[d0 + nonempty] = best.sum(axis=0)
    return scores


def unit_rows(x: np.ndarray, *, tol: float = 1e-3) -> np.ndarray:
    """x as float32 with unit-length rows; returned as is (no copy) when it already has them."""
    x = np.asarray(x, dtype=np.float32)
    if len(x) == 0:
        return x
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    if np.all(np.abs(norms - 1) <= tol):
        return x
    return l2_normalise(x)


def maxsim_subset(query_tokens: np.ndarray, docs: TokenMatrix, rows: np.ndarray) -> np.ndarray:
    """Exact MaxSim of one query against the given document rows only."""
    rows = np.asarray(rows, dtype=np.int64)
    return maxsim_scores(query_tokens, docs.subset(rows)) if len(rows) else np.zeros(0, np.float32)


def _doc_blocks(offsets: np.ndarray, token_block: int):
    """Consecutive document ranges of at most ~token_block tokens (a longer single document is its own block)."""
    n = len(offsets) - 1
    d0 = 0
    while d0 < n:
        d1 = int(np.searchsorted(offsets, offsets[d0] + token_block, side="right")) - 1
        d1 = min(max(d1, d0 + 1), n)
        yield d0, d1
        d0 = d1


def unit_query_tokens(queries: TextSet, i: int) -> np.ndarray:
    """Query i's token embeddings with unit-length rows."""
    return unit_rows(queries.tokens().item(i))


class TokenOffsets:
    """The part of a TokenMatrix that block iteration reads, for a matrix stored transposed."""

    def __init__(self, offsets: np.ndarray) -> None:
        self.offsets = offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1


# --- MUVERA Fixed Dimensional Encodings ------------------------------------------------------------------------

def fde_projections(dim: int, *, k_sim: int, d_proj: int, reps: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per repetition: Gaussian SimHash hyperplanes [dim, k_sim] and a +-1/sqrt(d_proj) projection [dim, d_proj].

    Queries and documents must use the same seed, hence the same matrices.
    """
    out = []
    for r in range(reps):
        rng = np.random.default_rng([seed, r])
        planes = rng.standard_normal((dim, k_sim)).astype(np.float32)
        proj = (rng.integers(0, 2, size=(dim, d_proj)) * 2 - 1).astype(np.float32) / np.sqrt(d_proj)
        out.append((planes, proj))
    return out


def simhash_codes(x: np.ndarray, planes: np.ndarray) -> np.ndarray:
    """Partition of each row: its SimHash bits (sign of x . plane_i) read as a binary number, first bit highest."""
    bits = (x @ planes) > 0
    weights = 1 << np.arange(planes.shape[1] - 1, -1, -1)
    return (bits.astype(np.int64) * weights).sum(axis=1)


def fde_encode(tokens: TokenMatrix, *, is_query: bool, k_sim: int = 5, d_proj: int = 16, reps: int = 20,
               seed: int = 42, projections: list | None = None, token_block: int = 65536) -> np.ndarray:
    """Fixed Dimensional Encodings [n, reps * 2**k_sim * d_proj] (float32).

    Per repetition, 2**k_sim SimHash partitions; a query block is the sum of its tokens in the partition, a document
    block their average, and an empty document partition takes the document token whose SimHash bits are nearest in
    Hamming distance (lowest token on ties); never for queries. Blocks are projected to d_proj by the +-1 matrix
    (projection is linear, so tokens are projected first). Documents are processed in blocks of ~token_block
    tokens, all repetitions in one matrix product per block.
    """
    from scipy import sparse

    n, n_part = len(tokens), 1 << k_sim
    dim = tokens.data.shape[1] if tokens.data.ndim == 2 else 0
    projections = projections or fde_projections(dim, k_sim=k_sim, d_proj=d_proj, reps=reps, seed=seed)
    weights = np.concatenate([p for p, _ in projections] + [m for _, m in projections], axis=1)
    bit_values = 1 << np.arange(k_sim - 1, -1, -1)
    popcount = np.array([bin(v).count("1") for v in range(n_part)], dtype=np.int32)
    out = np.zeros((n, reps, n_part, d_proj), dtype=np.float32)
    lengths = tokens.lengths
    for d0, d1 in _doc_blocks(tokens.offsets, token_block):
        lo, hi = tokens.offsets[d0], tokens.offsets[d1]
        if hi == lo:
            continue
        z = np.asarray(tokens.data[lo:hi], dtype=np.float32) @ weights
        codes = ((z[:, :reps * k_sim] > 0).reshape(-1, reps, k_sim) * bit_values).sum(axis=2)   # [tok, rep]
        projected = z[:, reps * k_sim:].reshape(-1, reps, d_proj)
        nb = d1 - d0
        owner = np.repeat(np.arange(nb), lengths[d0:d1])
        cell = ((owner[:, None] * reps + np.arange(reps)) * n_part + codes).ravel()
        # Sum projected tokens per (document, repetition, partition) cell: a 0/1 matrix with one entry a column.
        gather = sparse.csc_matrix((np.ones(len(cell), np.float32), cell, np.arange(len(cell) + 1)),
                                   shape=(nb * reps * n_part, len(cell)))
        block = np.asarray(gather @ projected.reshape(-1, d_proj), dtype=np.float32).reshape(nb, reps, n_part, d_proj)
        if not is_query:
            counts = np.bincount(cell, minlength=nb * reps * n_part).reshape(nb, reps, n_part)
            block /= np.maximum(counts, 1)[..., None]
            empty = (counts == 0) & (lengths[d0:d1] > 0)[:, None, None]
            for doc in np.flatnonzero(empty.any(axis=(1, 2))):
                rr, pp = np.nonzero(empty[doc])
                t0, t1 = tokens.offsets[d0 + doc] - lo, tokens.offsets[d0 + doc + 1] - lo
                # Hamming distance of every token's bits (in repetition rr) to each empty partition pp.
                nearest = np.argmin(popcount[codes[t0:t1, rr] ^ pp], axis=0)   # first minimum: lowest token
                block[doc, rr, pp] = projected[t0 + nearest, rr]
        out[d0:d1] = block
    return out.reshape(n, -1)
