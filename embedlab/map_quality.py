"""The quality of a map in words: how far a user may trust distances on it, from its trustworthiness and kNN
overlap (computed by `embedlab.projection.trustworthiness_score` and `knn_overlap`)."""
from __future__ import annotations

import numpy as np


def quality_verdict(trust: float, overlap: float, *, k: int = 10) -> str:
    """One line telling a user how far to trust distances on the map."""
    if not (np.isfinite(trust) and np.isfinite(overlap)):
        return ("Too few distinct documents to judge the map: with fewer than 3 documents, or all of them the same "
                "point, there are no neighbourhoods to keep.")
    share = f"{overlap:.0%} of each document's {k} true neighbours are among its {k} nearest on the map"
    if trust >= 0.95 and overlap >= 0.5:
        head = "Local neighbourhoods on this map are faithful"
    elif trust >= 0.9:
        head = "Clusters on this map are real, but their fine structure is approximate"
    elif trust >= 0.8:
        head = "Read this map loosely: nearby points are often, not always, similar"
    else:
        head = "This map distorts neighbourhoods a lot"
    return (f"{head}: {share}. Distances between far-apart groups mean little on any map; use the "
            f"neighbour panel (original space) for exact neighbours.")
