"""Reading a stored OOD run: confusion counts at a threshold, the FPR95 operating point, the lists of documents
worth reading, and where a run's test documents are stored now. Pure helpers of the OOD page."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sqlite_utils


def confusion_at(scores: Sequence[float], is_ood: Sequence[bool], threshold: float) -> dict[str, float]:
    """OOD is the positive class; a sample is flagged when its score ≥ threshold (as in sklearn's roc_curve).

    Returns tp (OOD flagged), fp (ID flagged), tn (ID accepted), fn (OOD missed), tpr and fpr."""
    s = np.asarray(scores, dtype=np.float64)
    o = np.asarray(is_ood, dtype=bool)
    flagged = s >= threshold
    tp, fp = int((flagged & o).sum()), int((flagged & ~o).sum())
    fn, tn = int((~flagged & o).sum()), int((~flagged & ~o).sum())
    return {"tp": tp, "fp": fp, "tn": tn, "fn": fn,
            "tpr": tp / (tp + fn) if tp + fn else 0.0, "fpr": fp / (fp + tn) if fp + tn else 0.0}


def id_quantile_threshold(scores: Sequence[float], is_ood: Sequence[bool], accept: float = 0.95) -> float:
    """The lowest threshold that still accepts `accept` of the ID samples (the FPR95 operating point)."""
    s = np.asarray(scores, dtype=np.float64)
    id_scores = np.sort(s[~np.asarray(is_ood, dtype=bool)])
    if not len(id_scores):
        return float(s.max()) if len(s) else 0.0
    k = min(len(id_scores) - 1, int(np.ceil(accept * len(id_scores))) - 1)
    above = id_scores[id_scores > id_scores[k]]
    return float(above[0]) if len(above) else float(np.nextafter(id_scores[-1], np.inf))


def review_lists(scores: Sequence[float], is_ood: Sequence[bool], threshold: float, *,
                 limit: int = 50) -> dict[str, list[int]]:
    """Test positions worth reading: most_ood (highest scores), false_alarms (ID flagged, highest first) and
    missed (OOD accepted, lowest first), each at most `limit` long."""
    s = np.asarray(scores, dtype=np.float64)
    o = np.asarray(is_ood, dtype=bool)
    order = np.argsort(-s, kind="stable")
    flagged = s[order] >= threshold
    false_alarms = order[flagged & ~o[order]]
    missed = order[~flagged & o[order]][::-1]
    return {"most_ood": order[:limit].tolist(), "false_alarms": false_alarms[:limit].tolist(),
            "missed": missed[:limit].tolist()}


def resolve_run_corpora(db: sqlite_utils.Database, run: dict) -> dict[int, object]:
    """{corpus id in the run's test_idx: the stored CorpusInfo to read it from, or None}.

    A run keeps the ids of its corpora; a duplicated or imported session holds the same documents under other
    ids, so a corpus is matched by content hash within the run's session (ids alone could name another corpus)."""
    from storage.corpora import list_corpora

    known = run.get("details", {}).get("corpora") or {}
    ids = dict.fromkeys(int(p[0]) for p in run.get("details", {}).get("test_idx") or [])
    mine = list_corpora(db, run["session_id"]) if run.get("session_id") is not None else []
    out: dict[int, object] = {}
    for cid in ids:
        want = known.get(str(cid)) or {}
        same_id = next((c for c in mine if c.id == cid), None)
        if same_id is not None and (not want or same_id.content_hash == want.get("content_hash")):
            out[cid] = same_id
            continue
        matches = [c for c in mine if want and c.content_hash == want.get("content_hash")]
        out[cid] = next((c for c in matches if c.name == want.get("name")), matches[0] if matches else None)
    return out
