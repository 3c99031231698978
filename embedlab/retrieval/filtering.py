"""Relevance filtering on top of any method: keep only results that clear a score threshold, or that stay within a
fraction of the query's top score, and measure how precise and complete the kept sets are."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np


def relevance_filter(ids: np.ndarray, scores: np.ndarray, *, min_score: float | None = None,
                     min_fraction_of_top: float | None = None) -> np.ndarray:
    """Boolean mask [n_q, k] of the results kept.

    min_score: keep score >= min_score (absolute threshold, in the method's score units).
    min_fraction_of_top: keep score >= fraction * (the query's top score) when the top score is positive, and
    score >= top score / fraction when it is negative (a cut relative to the best hit, in both cases).
    Padding (id < 0) is never kept; with neither option, every real result is kept.
    """
    ids = np.asarray(ids)
    scores = np.asarray(scores, dtype=np.float64)
    keep = ids >= 0
    if min_score is not None:
        keep &= scores >= min_score
    if min_fraction_of_top is not None:
        if not 0 < min_fraction_of_top <= 1:
            raise ValueError("min_fraction_of_top must be in (0, 1]")
        top = np.where(ids >= 0, scores, -np.inf).max(axis=1, keepdims=True) if scores.size else scores[:, :1]
        cut = np.where(top >= 0, top * min_fraction_of_top, top / min_fraction_of_top)
        keep &= scores >= cut
    return keep


@dataclass
class FilterReport:
    """Precision and recall of the kept sets, averaged over queries (macro), and the pooled (micro) values."""
    precision: float          # mean over queries that kept something
    recall: float             # mean over queries with at least one relevant document
    micro_precision: float
    micro_recall: float
    mean_kept: float
    n_empty: int              # queries that kept nothing
    per_query: dict[str, dict[str, float]]


def filter_report(ids: np.ndarray, keep: np.ndarray, query_ids: Sequence[str], doc_ids: Sequence[str],
                  qrels: Mapping[str, Mapping[str, int]]) -> FilterReport:
    """How good the kept sets are as answers: relevant = qrels judgement > 0."""
    per_query: dict[str, dict[str, float]] = {}
    precisions, recalls = [], []
    hits_total = kept_total = rel_total = 0
    for qi, qid in enumerate(query_ids):
        relevant = {d for d, r in qrels.get(qid, {}).items() if r > 0}
        kept = {doc_ids[d] for d in ids[qi][keep[qi]]}
        hits = len(kept & relevant)
        hits_total, kept_total, rel_total = hits_total + hits, kept_total + len(kept), rel_total + len(relevant)
        row = {"kept": float(len(kept)), "hits": float(hits)}
        if kept:
            row["precision"] = hits / len(kept)
            precisions.append(row["precision"])
        if relevant:
            row["recall"] = hits / len(relevant)
            recalls.append(row["recall"])
        per_query[qid] = row
    n = len(query_ids)
    return FilterReport(float(np.mean(precisions)) if precisions else 0.0,
                        float(np.mean(recalls)) if recalls else 0.0,
                        hits_total / kept_total if kept_total else 0.0,
                        hits_total / rel_total if rel_total else 0.0,
                        kept_total / n if n else 0.0,
                        sum(1 for qi in range(n) if not keep[qi].any()), per_query)
