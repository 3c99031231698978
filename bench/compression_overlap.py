"""How compression moves neighbours across a stored corpus: the Compression tab's corpus-wide figures (mean overlap@10
of int8, binary and Matryoshka-N with exact dense, documents below 0.5), and our exact top-10 pass against a plain
numpy one (`X @ X.T` in blocks + argpartition) in the same run.
    .venv/bin/python bench/compression_overlap.py --db DB --session S --corpus C [--model M] [--dims 192] --json OUT
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
from browser_helpers import emit

from embedlab.compression_neighbours import corpus_exact, corpus_overlaps, layer_methods, overlap_at_k
from embedlab.embedding.cache import find_embedding
from embedlab.embedding.embedders import DEFAULT_MODEL
from storage import connect
from storage.corpora import find_corpus
from storage.matrices import load_matrix
from storage.sessions import require_session

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def numpy_top10(X: np.ndarray, k: int = 10, block: int = 2048) -> np.ndarray:
    """The plain recipe: cosine scores block by block, self masked, argpartition then sort."""
    out = np.empty((len(X), k), dtype=np.int64)
    for s in range(0, len(X), block):
        S = X[s:s + block] @ X.T
        S[np.arange(len(S)), np.arange(s, s + len(S))] = -np.inf
        part = np.argpartition(-S, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(S, part, axis=1), axis=1, kind="stable")
        out[s:s + block] = np.take_along_axis(part, order, axis=1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--session", required=True)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--dims", type=int, default=192)
    parser.add_argument("--json")
    args = parser.parse_args()
    db = connect(args.db)
    info = find_corpus(db, require_session(db, args.session), args.corpus)
    X = load_matrix(db, find_embedding(db, info.content_hash, args.model).id).astype(np.float32)
    names = layer_methods(args.dims)
    t0 = time.perf_counter()
    layers = corpus_overlaps(X, names)
    layers_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = corpus_exact(X)
    ours_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    plain = numpy_top10(X)
    plain_s = time.perf_counter() - t0
    emit({"n_docs": len(X), "dim": int(X.shape[1]), "model": args.model,
          "mean_overlap@10": {m: round(float(layers[m].mean()), 4) for m in names},
          "documents_below_0.5": {m: int((layers[m] < 0.5).sum()) for m in names},
          "layers_s": round(layers_s, 2), "exact_top10_s": round(ours_s, 2), "numpy_top10_s": round(plain_s, 2),
          "ratio": round(plain_s / ours_s, 2),
          "exact_vs_numpy_overlap@10": round(float(overlap_at_k(plain, ours).mean()), 4)}, args.json)


if __name__ == "__main__":
    main()
