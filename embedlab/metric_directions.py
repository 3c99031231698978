"""Which way is better for every metric a run reports, the order of a run's table columns and their titles: the one
place that knows it (the Retrieval and OOD pages, the Atlas and the report read it from here).

A direction is True (higher is better), False (lower is better) or None (shown, never ranked: no ★). `build_s` is
not ranked: it is the index build from embeddings already computed (the embedding time is kept apart, as the run's
`embed_s`), so a fast build says little about a method's cost, and on a small corpus every build rounds to nothing.
"""
from __future__ import annotations

from typing import Mapping

RETRIEVAL: Mapping[str, bool | None] = {
    "ndcg@10": True, "recall@10": True, "recall@100": True, "mrr@10": True, "map@100": True,
    "ms_per_query": False, "index_bytes": False, "build_s": None,
}
OOD: Mapping[str, bool | None] = {
    "auroc": True, "fpr95": False, "fpr95_openood": False, "aupr_in": True, "aupr_out": True,
}
OOD_TITLES: Mapping[str, str] = {"auroc": "AUROC", "fpr95": "FPR95", "fpr95_openood": "FPR95 OpenOOD",
                                 "aupr_in": "AUPR-In", "aupr_out": "AUPR-Out"}
OOD_CI_TITLE = "AUROC 95 % CI"
BY_KIND: Mapping[str, Mapping[str, bool | None]] = {"retrieval": RETRIEVAL, "ood": OOD}


def higher_is_better(metric: str) -> bool | None:
    """The direction of a metric of either kind of run (None: not ranked, or unknown)."""
    return RETRIEVAL.get(metric, OOD.get(metric))


def arrow(metric: str) -> str:
    """"↑" for higher is better, "↓" for lower, "" when the metric is not ranked."""
    direction = higher_is_better(metric)
    return "" if direction is None else ("↑" if direction else "↓")
