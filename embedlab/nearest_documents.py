"""The documents nearest to a focused document (the neighbour panel's rows) or to a query vector (semantic
search), always in the original embedding space (cosine), never on the 2-D map."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from embedlab.ann import IvfIndex
from embedlab.neighbours import far_on_map, l2_normalise, top_k
from embedlab.text_display import short_text


# The neighbour panel shows this much of each neighbour's text (whitespace collapsed); the rest is one click away.
NEIGHBOUR_TEXT_CHARS = 320


def neighbour_rows(X: np.ndarray, coords: np.ndarray | None, focus: int, *, k: int = 10,
                   labels: Sequence[Any] | None = None, texts: Sequence[str] | None = None,
                   quantile: float = 0.9, text_chars: int = NEIGHBOUR_TEXT_CHARS,
                   index: IvfIndex | None = None) -> list[dict]:
    """The k nearest documents to `focus` in the original space (cosine), best first, with a flag for
    those the map puts far away (see `embedlab.neighbours.far_on_map`). "text" is the document cut to
    `text_chars` characters (enough to read: the panel shows it wrapped), "cut" says whether it was cut.
    With `index` (a large corpus: `embedlab.ann`) the neighbours are approximate: found by the index."""
    if index is not None:
        idx, scores = index.search(X, int(focus), k=int(k))
    else:
        idx, scores = top_k(X, int(focus), k=int(k))
    far = far_on_map(coords, int(focus), idx, quantile=quantile) if coords is not None else \
        np.zeros(len(idx), dtype=bool)
    rows = []
    for rank, (i, s, f) in enumerate(zip(idx.tolist(), scores.tolist(), far.tolist()), start=1):
        rows.append({"rank": rank, "idx": int(i), "cosine": round(float(s), 4),
                     "label": None if labels is None else labels[i],
                     "far on map": bool(f),
                     "text": "" if texts is None else short_text(texts[i], text_chars),
                     "cut": texts is not None and len(short_text(texts[i], 10**9)) > text_chars})
    return rows


def semantic_hits(X: np.ndarray, query_vector: np.ndarray, *, k: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosine scores of the k documents nearest to a query vector, best first."""
    q = l2_normalise(np.asarray(query_vector, dtype=np.float32).reshape(1, -1))[0]
    return top_k(X, q, k=int(k))
