"""One OOD comparison, the same for the OOD page's job and for `bench-ood`: a task (the in-distribution space,
its training rows and labels, the test parts) goes in; metrics and per-sample scores come out.

The in-distribution corpus defines the embedding space (`EmbeddingSpace`): training documents and held-out
rows are rows of its stored matrix, every other text (a test file, a test corpus, MCM's label prompts) is
`space.encode(...)`, so a corpus-fitted embedder (TF-IDF + SVD) puts test texts in the training fit's space.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from embedlab.errors import Cancelled, InputError
from embedlab.ood import REGISTRY, get_detector, parse_methods
from embedlab.ood.base import as_matrix
from embedlab.ood.evaluate import ood_metrics
from embedlab.ood.label_rules import label_problem, method_problem, usable_labels
from embedlab.ood.logits import HEAD_C, LinearHead

Progress = Callable[[float, str], None]
EmbedFn = Callable[[list[str]], np.ndarray]
ShouldStop = Callable[[], bool]
EMBED_SHARE = 0.5   # of the progress bar: embedding, then the detectors


# ---- the task ----------------------------------------------------------------------------------------------------

@dataclass
class TestPart:
    """One block of the test set, all ID or all OOD: rows of the in-distribution space's documents (held-out
    documents, documents of labels marked OOD) or other texts, encoded in that space (a test file or corpus)."""

    name: str
    is_ood: bool
    rows: np.ndarray | None = None
    texts: list[str] | None = None
    labels: list[str | None] | None = None      # one per sample; on ID parts they also give the ID accuracy
    refs: list[list[int]] | None = None         # [corpus id, idx] per sample, where the samples are stored

    def __post_init__(self) -> None:
        if (self.rows is None) == (self.texts is None):
            raise ValueError("a test part is either rows of the space's documents or texts")
        if self.rows is not None:
            self.rows = np.asarray(self.rows, dtype=np.int64)
        for what, values in (("labels", self.labels), ("refs", self.refs)):
            if values is not None and len(values) != len(self):
                raise ValueError(f"test part {self.name!r}: {len(values)} {what} for {len(self)} samples")

    def __len__(self) -> int:
        return len(self.rows) if self.rows is not None else len(self.texts or [])


@dataclass
class OODTask:
    """What to compare on. `space` holds the in-distribution documents; `train_rows` are the ones detectors are
    fitted on (None: all of them), with `train_labels` (one per training row, or None)."""

    dataset: str
    space: Any                                  # embedlab.embedding.space.EmbeddingSpace
    train_labels: list[str | None] | None
    tests: list[TestPart]
    train_rows: np.ndarray | None = None
    label_names: dict[str, str] | None = None

    @property
    def n_id(self) -> int:
        return sum(len(p) for p in self.tests if not p.is_ood)

    @property
    def n_ood(self) -> int:
        return sum(len(p) for p in self.tests if p.is_ood)

    @property
    def is_ood(self) -> np.ndarray:
        return np.concatenate([np.full(len(p), p.is_ood, dtype=bool) for p in self.tests]) if self.tests \
            else np.zeros(0, bool)

    @property
    def test_labels(self) -> list[str | None]:
        return [v for p in self.tests for v in (p.labels if p.labels is not None else [None] * len(p))]

    @property
    def test_refs(self) -> list[list[int] | None]:
        return [r for p in self.tests for r in (p.refs if p.refs is not None else [None] * len(p))]

    @property
    def label_problem(self) -> str | None:
        return label_problem(self.train_labels)

    @property
    def y_test(self) -> list[str | None] | None:
        """ID test labels (None on OOD samples), when the training labels are usable; for the ID accuracy."""
        if self.label_problem is not None:
            return None
        return [None if p.is_ood or p.labels is None else v for p in self.tests
                for v in (p.labels if p.labels is not None else [None] * len(p))]


@dataclass
class TaskEmbeddings:
    train: np.ndarray
    test: np.ndarray
    is_ood: np.ndarray


@dataclass
class Comparison:
    """What `compare_detectors` found: per method the metrics (with fit_s and score_s) and the test scores
    (in the order of the task's test parts)."""

    n_id: int
    n_ood: int
    methods: dict[str, dict[str, Any]]
    scores: dict[str, np.ndarray]
    skipped: dict[str, str]
    is_ood: np.ndarray
    id_accuracy: float | None = None
    timing_s: dict[str, float | None] = field(default_factory=dict)


# ---- embedding a task --------------------------------------------------------------------------------------------

def embed_task(task: OODTask, progress: Progress | None = None, should_stop: ShouldStop | None = None
               ) -> TaskEmbeddings:
    """The training rows and the test set in the in-distribution space: documents from `space.documents()`,
    every other text from `space.encode`."""
    report = progress or (lambda fraction, message: None)
    space = task.space
    stored = space.db is not None and space.stored() is not None
    weights = [1.0 if stored else float(max(1, len(space.texts)))] + \
        [float(len(p)) for p in task.tests if p.texts is not None]
    total, done = sum(weights), 0.0

    def step(weight: float, what: str) -> Progress:
        def inner(fraction: float, message: str = "") -> None:
            report(min(1.0, (done + weight * float(fraction)) / total), f"{what}: {message}".rstrip(": "))
        return inner

    def check() -> None:
        if should_stop is not None and should_stop():
            raise Cancelled("stopped by the user")

    check()
    report(0.0, f"embedding the in-distribution documents with {space.model}")
    documents = np.asarray(space.documents(progress=step(weights[0], "in-distribution documents"),
                                           should_stop=should_stop), dtype=np.float32)
    done += weights[0]
    train = documents if task.train_rows is None else documents[np.asarray(task.train_rows, dtype=np.int64)]
    blocks = []
    for part in task.tests:
        check()
        if part.rows is not None:
            blocks.append(documents[part.rows])
            continue
        blocks.append(np.asarray(space.encode(part.texts, progress=step(len(part), part.name)), dtype=np.float32))
        done += len(part)
    report(1.0, "embedded")
    dim = documents.shape[1] if documents.ndim == 2 else 0
    test = np.vstack(blocks) if blocks else np.zeros((0, dim), np.float32)
    return TaskEmbeddings(train=train, test=test, is_ood=task.is_ood)


# ---- the comparison ----------------------------------------------------------------------------------------------

def runnable_methods(task: OODTask, methods: Sequence[str] | str | None = None, *,
                     skip_unavailable: bool | None = None) -> tuple[list[str], dict[str, str]]:
    """(methods to run, {method: why it cannot run}) under the label rules.

    Named methods that cannot run raise InputError unless skip_unavailable; methods=None (= all) skips them."""
    names = parse_methods(methods)
    skip = methods is None if skip_unavailable is None else skip_unavailable
    problem = task.label_problem
    skipped: dict[str, str] = {}
    for name in names:
        reason = method_problem(REGISTRY[name], labels_problem=problem, has_embedder=not task.space.query_problem)
        if reason and not skip:
            raise InputError(f"OOD method {name!r} {reason}")
        if reason:
            skipped[name] = reason
    runnable = [n for n in names if n not in skipped]
    if not runnable:
        raise InputError("none of the chosen methods can run here: " +
                         "; ".join(f"{m} {why}" for m, why in skipped.items()))
    return runnable, skipped


def compare_detectors(task: OODTask, methods: Sequence[str] | str | None = None,
                      params: dict[str, dict[str, Any]] | None = None, progress: Progress | None = None,
                      should_stop: ShouldStop | None = None, *, skip_unavailable: bool | None = None,
                      interval: bool = True) -> Comparison:
    """Embed the task (ID documents via `space.documents()`, everything else via `space.encode`), fit the shared
    head, fit and score every detector, measure. Everything a user can get wrong is refused before embedding."""
    report = progress or (lambda fraction, message: None)
    params = _check_params(params)
    if task.n_id == 0:
        raise InputError("no in-distribution test documents: hold some out, or pick an ID test set")
    if task.n_ood == 0:
        raise InputError("nothing to test as OOD: mark labels as OOD, hold out labels as near-OOD, "
                         "or test on another corpus")
    runnable, skipped = runnable_methods(task, methods, skip_unavailable=skip_unavailable)
    for name in runnable:  # unknown parameters are refused now, not after the embedding
        get_detector(name, **params.get(name, {}))
    n_train = len(task.train_rows) if task.train_rows is not None else None
    if n_train == 0:
        raise InputError("no in-distribution training documents")
    if task.train_labels is not None and n_train is not None and len(task.train_labels) != n_train:
        raise ValueError(f"{len(task.train_labels)} training labels for {n_train} training rows")

    start = time.perf_counter()
    emb = embed_task(task, lambda f, m: report(EMBED_SHARE * f, m), should_stop)
    embedded = time.perf_counter()
    if task.train_labels is not None and len(task.train_labels) != len(emb.train):
        raise ValueError(f"{len(task.train_labels)} training labels for {len(emb.train)} training rows")
    out = run_ood_comparison(
        emb.train, task.train_labels, emb.test, emb.is_ood, runnable, label_names=task.label_names,
        embed_fn=None if task.space.query_problem else lambda texts: task.space.encode(list(texts)),   # MCM's
        params=params, y_test=task.y_test,
        interval=interval, should_stop=should_stop,
        progress=lambda f, m: report(EMBED_SHARE + (1 - EMBED_SHARE) * f, m))
    return Comparison(n_id=out["n_id"], n_ood=out["n_ood"], methods=out["methods"], scores=out["scores"],
                      skipped={**skipped, **out["skipped"]}, is_ood=emb.is_ood, id_accuracy=out["id_accuracy"],
                      timing_s={"embed": round(embedded - start, 3), "head_fit": out["head_fit_s"],
                                "total": round(time.perf_counter() - start, 3)})


def run_ood_comparison(X_train, y_train, X_test, is_ood, methods=None, label_names=None,
                       embed_fn: EmbedFn | None = None, params: dict[str, dict[str, Any]] | None = None,
                       progress: Progress | None = None, *, y_test=None, interval: bool = True,
                       should_stop: ShouldStop | None = None) -> dict[str, Any]:
    """The comparison on embeddings: fit each detector on (X_train, y_train), score X_test, measure against is_ood.

    Returns {"n_id", "n_ood", "methods": {name: metrics, fit_s, score_s}, "scores": {name: array},
    "skipped": {name: reason}, "id_accuracy": float | None, "head_fit_s": float | None}.
    Explicitly named methods that cannot run raise InputError; with methods=None they are skipped, with the reason.
    id_accuracy is the logistic head's accuracy on the ID test rows (needs y_test and a method that uses the head).
    head_fit_s is the time to fit that shared head, which the head methods' fit_s leave out."""
    report = progress or (lambda fraction, message: None)
    explicit = methods is not None
    names = parse_methods(methods)
    params = _check_params(params)
    X_train = as_matrix(X_train, "in-distribution embeddings")
    X_test = as_matrix(X_test, "test embeddings")
    if X_train.shape[1] != X_test.shape[1]:
        raise InputError(f"in-distribution embeddings have {X_train.shape[1]} dimensions, test {X_test.shape[1]}: "
                         "embed both with the same model")
    is_ood = np.asarray(is_ood, dtype=bool)
    if len(is_ood) != len(X_test):
        raise InputError(f"{len(is_ood)} ID/OOD flags for {len(X_test)} test embeddings")
    if y_train is not None and len(y_train) != len(X_train):
        raise InputError(f"{len(y_train)} labels for {len(X_train)} in-distribution embeddings")
    problem = label_problem(y_train)
    skipped: dict[str, str] = {}
    for name in names:
        reason = method_problem(REGISTRY[name], labels_problem=problem, has_embedder=embed_fn is not None)
        if reason and explicit:
            raise InputError(f"OOD method {name!r} {reason}")
        if reason:
            skipped[name] = reason
    names = [n for n in names if n not in skipped]
    labels = usable_labels(y_train)

    out: dict[str, Any] = {"n_id": int((~is_ood).sum()), "n_ood": int(is_ood.sum()), "methods": {},
                           "scores": {}, "skipped": skipped, "id_accuracy": None, "head_fit_s": None}
    if labels is not None and any(getattr(REGISTRY[n], "uses_head", False) for n in names):
        # msp, energy and vim share one head, fitted once here (the detectors reuse it); also the ID accuracy
        report(0.0, "fitting the logistic head")
        start = time.perf_counter()
        head = LinearHead.fit(X_train, labels, C=HEAD_C)
        out["head_fit_s"] = round(time.perf_counter() - start, 3)
        if y_test is not None:
            y = np.asarray([None if v is None else str(v) for v in y_test], dtype=object)
            if len(y) != len(X_test):
                raise InputError(f"{len(y)} test labels for {len(X_test)} test embeddings")
            rows = ~is_ood & np.isin(y, head.classes)
            if rows.any():
                out["id_accuracy"] = float((head.predict(X_test[rows]) == y[rows]).mean())
    for i, name in enumerate(names):
        if should_stop is not None and should_stop():
            raise Cancelled("stopped by the user")
        report(i / len(names), f"{name}: fitting")
        detector = get_detector(name, **params.get(name, {}))
        start = time.perf_counter()
        detector.fit(X_train, labels if getattr(detector, "needs_labels", False) else None,
                     label_names=label_names, embed_fn=embed_fn)
        fitted = time.perf_counter()
        scores = np.asarray(detector.score(X_test), dtype=np.float64)
        scored = time.perf_counter()
        metrics = ood_metrics(scores, is_ood, interval=interval)
        metrics.update(fit_s=round(fitted - start, 3), score_s=round(scored - fitted, 3))
        out["methods"][name] = metrics
        out["scores"][name] = scores
    report(1.0, "done")
    return out


def _check_params(params: Any) -> dict[str, dict[str, Any]]:
    """{method: {parameter: value}} with known method names (InputError otherwise)."""
    if params is None:
        return {}
    if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
        raise InputError("method parameters must be {method: {parameter: value}}")
    for name in params:
        parse_methods([name])
    return {str(k): dict(v) for k, v in params.items()}
