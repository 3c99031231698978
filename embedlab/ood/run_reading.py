"""Reading a stored OOD run: confusion counts at a threshold, the FPR95 operating point, the lists of documents
worth reading (as table rows), and where a run's test documents are stored now. Helpers of the OOD page."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import sqlite_utils

from embedlab.ood.split import DEFAULT_FRACTION
from embedlab.runs import OODRun
from storage.corpora import CorpusInfo, list_corpora


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


def resolve_run_corpora(db: sqlite_utils.Database, run: OODRun) -> dict[int, CorpusInfo | None]:
    """{corpus id in the run's test_idx: the stored CorpusInfo to read it from, or None}.

    A run keeps the ids of its corpora; a duplicated or imported session holds the same documents under other
    ids, so a corpus is matched by content hash within the run's session (ids alone could name another corpus)."""
    known = run.details.get("corpora") or {}
    ids = dict.fromkeys(int(p[0]) for p in run.test_idx)
    mine = list_corpora(db, run.session_id)
    out: dict[int, CorpusInfo | None] = {}
    for cid in ids:
        want = known.get(str(cid)) or {}
        same_id = next((c for c in mine if c.id == cid), None)
        if same_id is not None and (not want or same_id.content_hash == want.get("content_hash")):
            out[cid] = same_id
            continue
        matches = [c for c in mine if want and c.content_hash == want.get("content_hash")]
        out[cid] = next((c for c in matches if c.name == want.get("name")), matches[0] if matches else None)
    return out


def document_rows(run: OODRun, positions: Sequence[int], scores: Sequence[float],
                  documents: Mapping[tuple[int, int], Mapping[str, Any]],
                  corpus_names: Mapping[int, str]) -> list[dict[str, Any]]:
    """One table row per test position: score, truth, label, corpus, document id and text (`documents` by
    (corpus id as in the run, idx), as `Workspace.run_test_documents` gives them)."""
    pairs, labels, is_ood = run.test_idx, run.test_labels, run.is_ood
    out = []
    for i in positions:
        cid, idx = int(pairs[i][0]), int(pairs[i][1])
        doc = documents.get((cid, idx)) or {}
        out.append({"score": float(scores[i]), "truth": "OOD" if is_ood[i] else "ID", "label": labels[i],
                    "corpus": corpus_names.get(cid, f"#{cid}"), "doc id": doc.get("doc_id"),
                    "text": doc.get("text", "(no longer stored)")})
    return out



def setup_row(run: OODRun) -> dict[str, str]:
    """What an OOD run was set up with, as one table row: the page's choices (in-distribution corpus, labels,
    test set), or the files of a `bench-ood` run."""
    p = run.params
    if run.source in ("clinc", "files"):
        if run.source == "clinc":
            return {"in-distribution": f"CLINC150 train ({p.get('clinc', '?')})", "ID test": "CLINC150 test",
                    "OOD": "CLINC150 oos"}
        return {"in-distribution": str(p.get("train", "?")), "ID test": str(p.get("test", "?")),
                "OOD": str(p.get("ood", "?"))}
    setup = {"in-distribution": str(p.get("corpus", "")),
             "ID labels": ", ".join(p.get("id_labels") or []) or "all not marked OOD",
             "marked OOD": ", ".join(p.get("ood_labels") or []) or "—",
             "near-OOD": ", ".join(p.get("near_ood_labels") or []) or "—",
             "other corpus": p.get("test_corpus") or "—"}
    if p.get("test") == "corpora":
        setup["ID test"] = f"every document of {p.get('id_test_corpus') or '?'} (nothing held out)"
    else:
        setup["held out"] = f"{p.get('fraction', DEFAULT_FRACTION):.0%} (seed {p.get('seed', 0)})"
    return setup
