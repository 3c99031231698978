"""Why is a document OOD? The pieces behind the Atlas's "Why OOD" view, read from a stored OOD run.

A run keeps its test scores, not its training set; the training set is rebuilt deterministically from the run's
params (`task_from_corpora`: the same seeded split) and embedded in the run's space (the in-distribution corpus's
stored embedding under the run's model; other corpora's documents encoded in it, as the job did). From there:
the nearest training documents of a test document (cosine), the nearest class means (means of the L2-normalised
training vectors per label, renormalised), every detector's score with its percentile among the run's ID test
scores and its flag at that detector's FPR95 threshold, and a one-line verdict.

Streamlit-free; the pure functions take arrays, `load_run_training` reads the database.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np
import sqlite_utils

from embedlab.neighbours import l2_normalise
from embedlab.ood.comparison import embed_task
from embedlab.ood.corpus_task import task_from_corpora
from embedlab.ood.label_rules import is_missing
from embedlab.ood.run_reading import id_quantile_threshold, resolve_run_corpora
from embedlab.runs import OODRun

CORPUS_KEYS = ("id_corpus_id", "id_test_corpus_id", "test_corpus_id")
REFERENCE_LIMIT = 2000     # ID test documents sampled for the "typical" distances of the verdict


# --- which run, which documents --------------------------------------------------------------------------------


def run_corpora(db: sqlite_utils.Database, run: OODRun) -> dict[int, Any]:
    """{corpus id as the run names it: the stored CorpusInfo now, or None} for every corpus of the run (the
    in-distribution one too, which a "corpora" run does not test), matched like `resolve_run_corpora`."""
    ids = [int(k) for k in run.details.get("corpora") or {}]
    ids += [int(run.params[k]) for k in CORPUS_KEYS if run.params.get(k) is not None]
    ids += [int(p[0]) for p in run.test_idx]
    probe = replace(run, details={**run.details, "test_idx": [[c, 0] for c in dict.fromkeys(ids)]})
    return resolve_run_corpora(db, probe)


def rows_tested_on(run: OODRun, stored: Mapping[int, Any], corpus_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(positions in the run's test set, rows of stored corpus `corpus_id`) of the run's test documents that are
    documents of that corpus, in test-set order."""
    positions, rows = [], []
    for i, (cid, row) in enumerate(run.test_idx):
        info = stored.get(int(cid))
        if info is not None and int(info.id) == int(corpus_id):
            positions.append(i)
            rows.append(int(row))
    return np.asarray(positions, dtype=np.int64), np.asarray(rows, dtype=np.int64)


@dataclass
class RunTraining:
    """A run's training set and test set in the run's space, rebuilt from its params."""

    rows: np.ndarray                      # training rows of the in-distribution corpus
    labels: list[Any] | None              # their labels (None: the corpus has none)
    vectors: np.ndarray                   # L2-normalised, one per training row
    test_vectors: np.ndarray              # L2-normalised, one per test position of the run
    id_corpus: Any                        # the stored CorpusInfo holding the training rows
    model: str
    matches_run: bool                     # the rebuilt test set is the run's (same documents, same order)


def load_run_training(db: sqlite_utils.Database, run: OODRun) -> RunTraining:
    """Rebuild a run's task from its params (corpus ids mapped to where the corpora are stored now) and embed it
    as the job did: training rows and held-out rows from the stored embedding, other corpora encoded in it.
    InputError / UserError when a corpus of the run is gone."""
    stored = run_corpora(db, run)
    params = {**run.params, "session_id": int(run.session_id)}
    for key in CORPUS_KEYS:
        if params.get(key) is not None and stored.get(int(params[key])) is not None:
            params[key] = int(stored[int(params[key])].id)
    setup = task_from_corpora(db, params)
    emb = embed_task(setup.task)
    now = {int(cid): int(info.id) for cid, info in stored.items() if info is not None}
    wanted = [[now.get(int(c), -1), int(r)] for c, r in run.test_idx]
    rebuilt = [[int(c), int(r)] for c, r in setup.test_idx]
    labels = setup.split.train_labels
    return RunTraining(rows=np.asarray(setup.split.train, dtype=np.int64), labels=labels,
                       vectors=l2_normalise(emb.train), test_vectors=l2_normalise(emb.test),
                       id_corpus=setup.corpora["in-distribution"], model=setup.model,
                       matches_run=rebuilt == wanted)


# --- nearest training documents and class means ----------------------------------------------------------------


def nearest_training(vectors: np.ndarray, query: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(positions among the training vectors, cosine similarities) of the k most similar, best first; ties go
    to the lower position. Rows and query L2-normalised."""
    sims = np.asarray(vectors, dtype=np.float64) @ l2_normalise(np.asarray(query), dtype=np.float64)
    order = np.argsort(-sims, kind="stable")[:max(0, int(k))]
    return order.astype(np.int64), sims[order]


def class_means(vectors: np.ndarray, labels: Sequence[Any] | None) -> tuple[list[str], np.ndarray]:
    """(class names, sorted; unit-length means of each class's L2-normalised vectors). Documents without a label
    are left out; no labels: no classes."""
    if labels is None:
        return [], np.zeros((0, np.asarray(vectors).shape[1] if np.ndim(vectors) == 2 else 0))
    Xn = l2_normalise(vectors, dtype=np.float64)
    names = np.asarray(["" if is_missing(v) else str(v) for v in labels], dtype=object)
    classes = sorted({n for n in names if n})
    if not classes:
        return [], np.zeros((0, Xn.shape[1]))
    means = np.vstack([Xn[names == c].mean(0) for c in classes])
    return classes, l2_normalise(means, dtype=np.float64)


def nearest_classes(classes: Sequence[str], means: np.ndarray, query: np.ndarray,
                    k: int = 2) -> list[tuple[str, float]]:
    """The k nearest class means as (class, cosine distance = 1 − cosine), nearest first."""
    if not len(classes):
        return []
    dist = 1.0 - means @ l2_normalise(np.asarray(query), dtype=np.float64)
    order = np.argsort(dist, kind="stable")[:k]
    return [(str(classes[i]), float(dist[i])) for i in order]


def nearest_class_distance(means: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Each row's cosine distance to its nearest class mean."""
    return 1.0 - (l2_normalise(vectors, dtype=np.float64) @ np.asarray(means, dtype=np.float64).T).max(1)


# --- detector scores -------------------------------------------------------------------------------------------


def percentile_among(value: float, reference: Sequence[float]) -> float:
    """Share (in %) of the reference scores at or below `value`."""
    ref = np.asarray(reference, dtype=np.float64)
    return float(100.0 * np.count_nonzero(ref <= value) / len(ref)) if len(ref) else float("nan")


@dataclass
class DetectorReading:
    detector: str
    score: float
    id_percentile: float                 # % of the run's ID test scores ≤ this score
    threshold: float                     # the detector's FPR95 threshold (95 % of ID test accepted)
    flagged: bool                        # score ≥ threshold
    auroc: float | None = None


def detector_readings(scores: Mapping[str, Sequence[float]], is_ood: Sequence[bool], position: int, *,
                      metrics: Mapping[str, Mapping[str, Any]] | None = None) -> list[DetectorReading]:
    """Every detector's score of test position `position`, its percentile among the ID test scores and its flag
    at that detector's FPR95 threshold; best AUROC first when `metrics` are given."""
    flags = np.asarray(is_ood, dtype=bool)
    out = []
    for name, values in scores.items():
        s = np.asarray(values, dtype=np.float64)
        t = id_quantile_threshold(s, flags)
        auroc = (metrics or {}).get(name, {}).get("auroc")
        out.append(DetectorReading(detector=name, score=float(s[position]),
                                   id_percentile=percentile_among(s[position], s[~flags]), threshold=float(t),
                                   flagged=bool(s[position] >= t),
                                   auroc=float(auroc) if isinstance(auroc, (int, float)) else None))
    return sorted(out, key=lambda r: -(r.auroc if r.auroc is not None else -1.0))


# --- the explanation -------------------------------------------------------------------------------------------


@dataclass
class IdReference:
    """What ID test documents look like, for the verdict: 95 % of them are within `class_distance` of a class
    mean and have a training document at cosine ≥ `top_similarity`."""

    class_distance: float | None
    top_similarity: float
    n: int                                # ID test documents measured (a seeded sample of at most REFERENCE_LIMIT)
    of: int = 0                           # ID test documents of the run

    @property
    def population(self) -> str:
        """Which documents the percentiles are of, in words: "the run's 6,750 ID test documents", or "a seeded
        sample of 2,000 of the run's 6,750 ID test documents"."""
        total = max(self.of, self.n)
        whole = f"the run's {total:,} ID test documents"
        return whole if self.n >= total else f"a seeded sample of {self.n:,} of {whole}"


def id_reference(training: RunTraining, is_ood: Sequence[bool], means: np.ndarray, *,
                 limit: int = REFERENCE_LIMIT, seed: int = 0) -> IdReference:
    """The 95th percentile of the ID test documents' nearest-class-mean distance and the 5th percentile of their
    best training cosine (at most `limit` of them, seeded sample)."""
    ids = np.flatnonzero(~np.asarray(is_ood, dtype=bool))
    total = len(ids)
    if len(ids) > limit:
        ids = np.sort(np.random.default_rng(seed).choice(ids, size=limit, replace=False))
    if not len(ids):
        return IdReference(None, float("nan"), 0, 0)
    V = training.test_vectors[ids].astype(np.float64)
    top = (V @ training.vectors.T.astype(np.float64)).max(1) if len(training.vectors) else np.zeros(len(ids))
    dist = float(np.quantile(nearest_class_distance(means, V), 0.95)) if len(means) else None
    return IdReference(dist, float(np.quantile(top, 0.05)), int(len(ids)), int(total))


@dataclass
class Explanation:
    position: int                                      # in the run's test set
    neighbours: list[dict[str, Any]]                   # rank, row (of the ID corpus), label, cosine
    classes: list[tuple[str, float]]                   # nearest class means: (class, cosine distance)
    readings: list[DetectorReading]
    reference: IdReference
    verdict: str
    extra: dict[str, Any] = field(default_factory=dict)


def explain(training: RunTraining, run: OODRun, position: int, *, k: int = 10,
            reference: IdReference | None = None) -> Explanation:
    """Why test document `position` of `run` scores as it does (training from `load_run_training`)."""
    is_ood = np.asarray(run.is_ood, dtype=bool)
    query = training.test_vectors[position]
    pos, sims = nearest_training(training.vectors, query, k)
    neighbours = [{"rank": r + 1, "row": int(training.rows[p]),
                   "label": None if training.labels is None else training.labels[p], "cosine": float(s)}
                  for r, (p, s) in enumerate(zip(pos, sims))]
    names, means = class_means(training.vectors, training.labels)
    classes = nearest_classes(names, means, query, k=2)
    readings = detector_readings(run.scores, is_ood, position, metrics=run.metrics)
    reference = reference or id_reference(training, is_ood, means)
    return Explanation(position=position, neighbours=neighbours, classes=classes, readings=readings,
                       reference=reference, verdict=verdict(neighbours, classes, readings, reference))


def verdict(neighbours: Sequence[Mapping[str, Any]], classes: Sequence[tuple[str, float]],
            readings: Sequence[DetectorReading], reference: IdReference) -> str:
    """One plain-language line: far from every class, in a class's range but with no close training document,
    between classes, or like the in-distribution documents; then how many detectors flag it."""
    top = float(neighbours[0]["cosine"]) if neighbours else float("nan")
    near = f"nearest training document at cosine {top:.2f}"
    typical_top = f"95 % of ID test documents have one at ≥ {reference.top_similarity:.2f}"
    isolated = bool(neighbours) and top < reference.top_similarity
    labels = [str(n["label"]) for n in neighbours if not is_missing(n.get("label"))]
    if classes and reference.class_distance is not None:
        name, dist = classes[0]
        within = f"ID test documents are typically within {reference.class_distance:.2f}"
        if dist > reference.class_distance:
            line = f"far from every training class: nearest class mean '{name}' at cosine distance {dist:.2f}, {within}"
        elif isolated:
            line = (f"within the range of class '{name}' (cosine distance {dist:.2f}; {within}) but no training "
                    f"document is close: {near}, {typical_top}")
        elif labels and max(labels.count(v) for v in set(labels)) / len(labels) < 0.6:
            mix = ", ".join(f"{labels.count(v)} '{v}'" for v in sorted(set(labels), key=lambda v: -labels.count(v))[:3])
            line = (f"between classes: its {len(labels)} nearest training documents are {mix}; nearest class mean "
                    f"'{name}' at cosine distance {dist:.2f} ({within})")
        else:
            line = (f"looks in-distribution: nearest class mean '{name}' at cosine distance {dist:.2f} ({within}), "
                    f"{near}")
    elif isolated:
        line = f"no training document is close: {near}, {typical_top}"
    else:
        line = f"close to the training documents: {near} ({typical_top})"
    if readings:
        n_flagged = sum(r.flagged for r in readings)
        line += f". Flagged by {n_flagged} of {len(readings)} detectors at their FPR95 thresholds."
    return line[0].upper() + line[1:]
