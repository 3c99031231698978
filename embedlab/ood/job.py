"""The "ood" job: compare detectors on stored corpora and keep the comparison as a run; plus the pure helpers
the OOD page reads a stored run with (confusion counts at a threshold, the lists of documents to look at).

params (JSON): session_id; model; id_corpus_id; id_labels (optional: only these labels are in-distribution);
ood_labels and near_ood_labels (documents with these labels leave training and are tested as OOD); test:
"holdout" (ID test = a held-out `fraction` of the in-distribution documents, seeded by `seed`) or "corpus"
(the same, plus every document of test_corpus_id as OOD); methods; params ({method: {name: value}}).
The run's details hold per-sample scores for the test set, so the page can redraw anything without refitting.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import sqlite_utils

from embedlab.errors import InputError
from embedlab.jobs import JobContext, job_kind

ROC_POINTS = 300
METRIC_KEYS = ("auroc", "auroc_ci", "fpr95", "fpr95_openood", "aupr_in", "aupr_out")
DEFAULT_FRACTION = 0.3
TEST_SOURCES = ("holdout", "corpus")


# ---- which documents train, which test -------------------------------------------------------------------------

@dataclass
class OODSplit:
    """Positions in the in-distribution corpus: training, ID test and OOD test (from labels marked OOD)."""

    train: np.ndarray
    id_test: np.ndarray
    ood: np.ndarray
    labels: list[str | None] | None = None
    dropped: int = 0


def split_corpus(labels: Sequence[str | None], *, id_labels: Sequence[str] | None = None,
                 ood_labels: Sequence[str] = (), fraction: float = DEFAULT_FRACTION, seed: int = 0) -> OODSplit:
    """Carve training, ID test and OOD test out of one corpus's documents (by position).

    ood_labels leave training and become OOD test; with id_labels, only those labels are in-distribution and
    documents of other labels are left out. The ID test is a seeded, label-stratified hold-out.
    labels: one per document, None where a document has none."""
    from embedlab.ood.clinc import holdout

    n = len(labels)
    if all(v in (None, "") for v in labels):
        labels = None
    ood_set, id_set = {str(v) for v in ood_labels}, {str(v) for v in (id_labels or [])}
    present = set() if labels is None else {str(v) for v in labels if v not in (None, "")}
    asked = ood_set | id_set
    if asked and labels is None:
        raise InputError("this corpus has no labels, so no label can be in-distribution or OOD")
    unknown = sorted(asked - present)
    if unknown:
        raise InputError(f"label(s) {', '.join(unknown)} do not occur in the in-distribution corpus")
    both = sorted(ood_set & id_set)
    if both:
        raise InputError(f"label(s) {', '.join(both)} are marked both in-distribution and OOD")
    positions = np.arange(n)
    if labels is None:
        is_ood, is_id = np.zeros(n, bool), np.ones(n, bool)
    else:
        text_labels = np.asarray(["" if v is None else str(v) for v in labels], dtype=object)
        is_ood = np.isin(text_labels, list(ood_set)) if ood_set else np.zeros(n, bool)
        is_id = np.isin(text_labels, list(id_set)) if id_set else ~is_ood
    if not is_id.any():
        raise InputError("nothing is left in distribution: every document has a label marked OOD")
    id_pos = positions[is_id]
    id_labels_kept = None if labels is None else [labels[i] for i in id_pos]
    # The engine's hold-out works on any sequence: given positions, it returns positions.
    kept, held = holdout(list(id_pos), id_labels_kept, fraction=float(fraction), seed=int(seed))
    return OODSplit(train=np.asarray(kept.texts, dtype=np.int64), id_test=np.asarray(held.texts, dtype=np.int64),
                    ood=positions[is_ood], labels=None if labels is None else list(labels),
                    dropped=int(n - is_id.sum() - is_ood.sum()))


def label_status(train_labels: Sequence[str | None] | None) -> tuple[bool, str | None]:
    """(usable, reason when not): label-based detectors need a label on every training document, two at least."""
    if train_labels is None or all(v in (None, "") for v in train_labels):
        return False, "needs labels on the in-distribution set, and it has none"
    if any(v in (None, "") for v in train_labels):
        return False, "needs a label on every in-distribution document"
    if len(set(map(str, train_labels))) < 2:
        return False, "needs at least two labels in the in-distribution set"
    return True, None


def disabled_methods(methods: Sequence[str], train_labels: Sequence[str | None] | None,
                     *, has_embedder: bool = True) -> dict[str, str]:
    """{method: why it cannot run on this in-distribution set} for the methods that cannot."""
    from embedlab.ood import REGISTRY, parse_methods, unavailable_reason

    has_labels, why = label_status(train_labels)
    out = {}
    for name in parse_methods(list(methods)):
        reason = unavailable_reason(name, has_labels=has_labels, has_embedder=has_embedder)
        if reason and REGISTRY[name].needs_labels and not has_labels:
            reason = why  # more precise than "has none" when labels exist but do not suffice
        if reason:
            out[name] = reason
    return out


# ---- reading a run: threshold and lists ------------------------------------------------------------------------

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


# ---- the job ---------------------------------------------------------------------------------------------------

def _embedder_space(db, model: str, corpus_ids: list[int], progress, should_stop):
    """Embeddings of each corpus in one space, and a function that embeds new texts (label prompts) in it.

    Sentence encoders embed each corpus on its own (cached, shared with the other pages). An embedder that is
    fitted on its corpus (TF-IDF + SVD) would give each corpus its own space, so several corpora are embedded
    together (cached under their joint content)."""
    from embedlab.embedding.embedders import get_embedder
    from embedlab.embedding.cache import compute_embedding, embed_corpus
    from storage.corpora import get_corpus, load_texts
    from storage.matrices import load_matrix

    embedder = get_embedder(model)
    fitted_on_corpus = hasattr(embedder, "fit")
    if fitted_on_corpus and len(corpus_ids) > 1:
        texts = [load_texts(db, cid) for cid in corpus_ids]
        X = load_matrix(db, compute_embedding(db, [t for part in texts for t in part], embedder,
                                              progress=progress, should_stop=should_stop))
        bounds = np.cumsum([0, *map(len, texts)])
        mats = {cid: X[bounds[i]:bounds[i + 1]] for i, cid in enumerate(corpus_ids)}
    else:
        mats = {}
        for i, cid in enumerate(corpus_ids):
            part = (lambda f, m, i=i: progress((i + float(f)) / len(corpus_ids),
                                               f"{get_corpus(db, cid).name}: {m}")) if progress else None
            mats[cid] = load_matrix(db, embed_corpus(db, cid, embedder, progress=part, should_stop=should_stop))
    fitted = {"done": not fitted_on_corpus}

    def embed_fn(texts: list[str]) -> np.ndarray:
        if not fitted["done"]:  # the same (deterministic) fit as the stored embedding
            embedder.fit([t for cid in corpus_ids for t in load_texts(db, cid)])
            fitted["done"] = True
        return np.asarray(embedder.encode(list(texts)), dtype=np.float32)

    return mats, embed_fn


@job_kind("ood")
def ood_task(db: sqlite_utils.Database, params: dict, ctx: JobContext) -> str:
    """Embed (cached), split, fit and score every method, store the run: returns "run:<id>"."""
    from embedlab.embedding.embedders import DEFAULT_MODEL
    from embedlab.errors import Cancelled
    from embedlab.ood import parse_methods
    from embedlab.ood.bench import run_ood_comparison
    from embedlab.ood.evaluate import roc_points
    from storage.corpora import get_corpus, load_labels
    from storage.sessions import save_run

    model = params.get("model") or DEFAULT_MODEL
    info = get_corpus(db, int(params["id_corpus_id"]))
    session_id = int(params.get("session_id") or info.session_id)
    if info.session_id != session_id:
        raise InputError("the in-distribution corpus belongs to another session")
    test = params.get("test", "holdout")
    if test not in TEST_SOURCES:
        raise InputError(f"unknown test source {test!r} (valid: {', '.join(TEST_SOURCES)})")
    methods = parse_methods(params.get("methods") or None)
    method_params = {m: dict(v) for m, v in (params.get("params") or {}).items() if m in methods}
    ood_labels = list(dict.fromkeys([*(params.get("ood_labels") or []), *(params.get("near_ood_labels") or [])]))

    labels = load_labels(db, info.id)
    split = split_corpus(labels, id_labels=params.get("id_labels") or None, ood_labels=ood_labels,
                         fraction=float(params.get("fraction", DEFAULT_FRACTION)), seed=int(params.get("seed", 0)))
    test_info = None
    if test == "corpus":
        if params.get("test_corpus_id") is None:
            raise InputError("pick the corpus to test on")
        test_info = get_corpus(db, int(params["test_corpus_id"]))
        if test_info.id == info.id:
            raise InputError("the test corpus must be another corpus than the in-distribution one")
        if test_info.session_id != session_id:
            raise InputError("the test corpus belongs to another session")
    n_ood = len(split.ood) + (test_info.n_docs if test_info else 0)
    if n_ood == 0:
        raise InputError("nothing to test as OOD: mark labels as OOD, hold out labels as near-OOD, "
                         "or test on another corpus")

    train_labels = None if split.labels is None else [split.labels[i] for i in split.train]
    disabled = disabled_methods(methods, train_labels)
    runnable = [m for m in methods if m not in disabled]
    if not runnable:
        raise InputError("none of the chosen methods can run here: " +
                         "; ".join(f"{m} {why}" for m, why in disabled.items()))
    has_labels = label_status(train_labels)[0]

    corpus_ids = [info.id] + ([test_info.id] if test_info else [])
    mats, embed_fn = _embedder_space(db, model, corpus_ids, lambda f, m: ctx.progress(0.5 * float(f), m),
                                     ctx.should_stop)
    X = mats[info.id]
    X_train = X[split.train]
    test_rows = [X[split.id_test], X[split.ood]]
    test_idx = [[info.id, int(i)] for i in split.id_test] + [[info.id, int(i)] for i in split.ood]
    test_labels = [None if split.labels is None else split.labels[i] for i in [*split.id_test, *split.ood]]
    if test_info is not None:
        test_rows.append(mats[test_info.id])
        test_idx += [[test_info.id, i] for i in range(test_info.n_docs)]
        test_labels += load_labels(db, test_info.id)
    X_test = np.vstack(test_rows)
    is_ood = np.r_[np.zeros(len(split.id_test), bool), np.ones(len(X_test) - len(split.id_test), bool)]

    def report(fraction: float, message: str) -> None:
        if ctx.should_stop():
            raise Cancelled("stopped by the user")
        ctx.progress(0.5 + 0.45 * float(fraction), message)

    y_test = None
    if has_labels:
        y_test = [split.labels[i] for i in split.id_test] + [None] * int(is_ood.sum())
    result = run_ood_comparison(X_train, train_labels if has_labels else None, X_test, is_ood, runnable,
                                embed_fn=embed_fn, params=method_params, progress=report, y_test=y_test)

    metrics = {m: {k: result["methods"][m][k] for k in METRIC_KEYS if k in result["methods"][m]}
               for m in runnable}
    roc = {}
    for m in runnable:
        points = roc_points(result["scores"][m], is_ood, max_points=ROC_POINTS)
        roc[m] = {"fpr": points["fpr"], "tpr": points["tpr"]}
    details = {
        "scores": {m: [float(v) for v in result["scores"][m]] for m in runnable},
        "test_idx": test_idx,
        "is_ood": [int(v) for v in is_ood],
        "test_labels": test_labels,
        "roc": roc,
        "id_accuracy": result["id_accuracy"],
        "n_id": result["n_id"],
        "n_ood": result["n_ood"],
        "n_train": int(len(split.train)),
        "n_left_out": split.dropped,
        "disabled": disabled,
        "timing": {m: {k: result["methods"][m].get(k) for k in ("fit_s", "score_s")} for m in runnable},
        "train_labels": dict(Counter(map(str, train_labels))) if has_labels else {},
        "corpora": {str(c.id): {"name": c.name, "content_hash": c.content_hash}
                    for c in ([info, test_info] if test_info else [info])},
    }
    stored = {**params, "model": model, "corpus": info.name}
    if test_info is not None:
        stored["test_corpus"] = test_info.name
    run_id = save_run(db, session_id, "ood", stored, metrics, details)
    ctx.progress(1.0, f"run {run_id} stored")
    return f"run:{run_id}"
