"""OOD comparisons: detectors side by side on one in-distribution set and one test set.

`run_ood_comparison` works on embeddings and returns metrics and per-sample scores (for the page);
`run_ood_bench` embeds CLINC150 or three files and returns DESIGN §3's `bench-ood --json` object."""
from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from embedlab.errors import InputError
from embedlab.ood import REGISTRY, parse_methods, unavailable_reason
from embedlab.ood.base import EmbedFn, as_labels, as_matrix
from embedlab.ood.clinc import OOS_LABEL, LabelledTexts, load_clinc, split_by_labels
from embedlab.ood.evaluate import ood_metrics
from embedlab.ood.logits import HEAD_C, LinearHead

DEFAULT_MODEL = "all-MiniLM-L6-v2"
Progress = Callable[[float, str], None]


def run_ood_comparison(X_train, y_train, X_test, is_ood, methods=None, label_names=None,
                       embed_fn: EmbedFn | None = None, params: dict[str, dict[str, Any]] | None = None,
                       progress: Progress | None = None, *, y_test=None, interval: bool = True) -> dict[str, Any]:
    """Fit each detector on (X_train, y_train), score X_test, and measure against is_ood.

    Returns {"n_id", "n_ood", "methods": {name: metrics, fit_s, score_s}, "scores": {name: array},
    "skipped": {name: reason}, "id_accuracy": float | None, "head_fit_s": float | None}.
    Explicitly named methods that cannot run raise InputError; with methods=None they are skipped, with the reason.
    id_accuracy is the logistic head's accuracy on the ID test rows (needs y_test and a method that uses the head).
    head_fit_s is the time to fit that shared head, which the head methods' fit_s leave out."""
    report = progress or (lambda fraction, message: None)
    explicit = methods is not None
    names = parse_methods(methods)
    params = params or {}
    for name in params:
        parse_methods([name])
    X_train = as_matrix(X_train, "in-distribution embeddings")
    X_test = as_matrix(X_test, "test embeddings")
    if X_train.shape[1] != X_test.shape[1]:
        raise InputError(f"in-distribution embeddings have {X_train.shape[1]} dimensions, test {X_test.shape[1]}: "
                         "embed both with the same model")
    is_ood = np.asarray(is_ood, dtype=bool)
    if len(is_ood) != len(X_test):
        raise InputError(f"{len(is_ood)} ID/OOD flags for {len(X_test)} test embeddings")
    has_labels = y_train is not None and all(v not in (None, "") for v in y_train)
    skipped: dict[str, str] = {}
    for name in names:
        reason = unavailable_reason(name, has_labels=has_labels, has_embedder=embed_fn is not None)
        if reason and explicit:
            raise InputError(f"OOD method {name!r} {reason}")
        if reason:
            skipped[name] = reason
    names = [n for n in names if n not in skipped]
    labels = as_labels(y_train, len(X_train), "the logistic head") if has_labels else None

    out: dict[str, Any] = {"n_id": int((~is_ood).sum()), "n_ood": int(is_ood.sum()), "methods": {},
                           "scores": {}, "skipped": skipped, "id_accuracy": None, "head_fit_s": None}
    if labels is not None and any(REGISTRY[n].uses_head for n in names):
        # msp, energy and vim share one head, fitted once here (the detectors reuse it); also the ID accuracy
        report(0.0, "fitting the logistic head")
        start = time.perf_counter()
        head = LinearHead.fit(X_train, labels, C=HEAD_C)
        out["head_fit_s"] = round(time.perf_counter() - start, 3)
        if y_test is not None:
            y_test = np.asarray([None if v is None else str(v) for v in y_test], dtype=object)
            if len(y_test) != len(X_test):
                raise InputError(f"{len(y_test)} test labels for {len(X_test)} test embeddings")
            rows = ~is_ood & np.isin(y_test, head.classes)
            if rows.any():
                out["id_accuracy"] = float((head.predict(X_test[rows]) == y_test[rows]).mean())
    for i, name in enumerate(names):
        report(i / len(names), f"{name}: fitting")
        detector = REGISTRY[name](**params.get(name, {}))
        start = time.perf_counter()
        detector.fit(X_train, labels if detector.needs_labels else None, label_names=label_names, embed_fn=embed_fn)
        fitted = time.perf_counter()
        scores = detector.score(X_test)
        scored = time.perf_counter()
        metrics = ood_metrics(scores, is_ood, interval=interval)
        metrics.update(fit_s=round(fitted - start, 3), score_s=round(scored - fitted, 3))
        out["methods"][name] = metrics
        out["scores"][name] = scores
    report(1.0, "done")
    return out


def run_ood_bench(*, clinc: str | Path | None = None, train: str | Path | None = None,
                  test: str | Path | None = None, ood: str | Path | None = None, model: Any = DEFAULT_MODEL,
                  methods=None, db=None, progress: Progress | None = None,
                  params: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Embed an OOD benchmark and compare detectors: DESIGN §3's `bench-ood --json` object.

    Either clinc (data_full.json: fit on train without 'oos', test = test + oos_test) or train, test and ood
    files (read by embedlab.ingest; the OOD file's labels are ignored). model: a name or an Embedder object.
    Embeddings are cached in db when given."""
    report = progress or (lambda fraction, message: None)
    names = parse_methods(methods)  # fail on a bad name before any embedding
    if clinc is not None and any(p is not None for p in (train, test, ood)):
        raise InputError("give either --clinc or --train/--test/--ood, not both")
    if clinc is not None:
        dataset, train_set, test_set, ood_set = "clinc150", *clinc_task(clinc)
    elif train is not None and test is not None and ood is not None:
        dataset = Path(train).stem
        train_set, test_set, ood_set = (_read_corpus(p) for p in (train, test, ood))
        ood_set = LabelledTexts(ood_set.texts, None)
    else:
        raise InputError("give --clinc FILE, or all three of --train, --test and --ood")

    def embed(texts: list[str], lo: float, hi: float, what: str) -> np.ndarray:
        report(lo, f"embedding {len(texts):,} {what} texts with {model}")
        inner = (lambda f, m="": report(lo + (hi - lo) * float(f), f"embedding {what}: {m}".rstrip(": "))) \
            if progress else None
        return embed_texts(db, texts, model, progress=inner)

    start = time.perf_counter()
    X_train = embed(train_set.texts, 0.0, 0.55, "in-distribution")
    X_test = embed(test_set.texts + ood_set.texts, 0.55, 0.75, "test")
    embedded = time.perf_counter()
    is_ood = np.r_[np.zeros(len(test_set), bool), np.ones(len(ood_set), bool)]
    y_test = None if test_set.labels is None else list(test_set.labels) + [None] * len(ood_set)
    result = run_ood_comparison(
        X_train, train_set.labels, X_test, is_ood, names if methods is not None else None,
        embed_fn=lambda texts: embed_texts(db, texts, model), params=params, y_test=y_test,
        progress=lambda f, m: report(0.75 + 0.25 * f, m))
    out: dict[str, Any] = {"dataset": dataset, "model": getattr(model, "name", model),
                           "n_id": result["n_id"], "n_ood": result["n_ood"],
                           "methods": {n: result["methods"][n] for n in names if n in result["methods"]}}
    if result["id_accuracy"] is not None:
        out["id_accuracy"] = result["id_accuracy"]
    if result["skipped"]:
        out["skipped"] = result["skipped"]
    out["timing_s"] = {"embed": round(embedded - start, 3), "head_fit": result["head_fit_s"],
                       "total": round(time.perf_counter() - start, 3)}
    return out


def clinc_task(path: str | Path) -> tuple[LabelledTexts, LabelledTexts, LabelledTexts]:
    """CLINC150's standard OOD task: (ID train = train less 'oos', ID test = test less 'oos', OOD = oos_test)."""
    data = load_clinc(path)
    id_train, _ = _drop_oos(data["train"])
    id_test, test_oos = _drop_oos(data["test"])
    ood = LabelledTexts(data["oos_test"].texts + test_oos.texts, None)
    return id_train, id_test, ood


def _drop_oos(split: LabelledTexts) -> tuple[LabelledTexts, LabelledTexts]:
    if OOS_LABEL not in split.labels:
        return split, LabelledTexts([], [])
    return split_by_labels(split.texts, split.labels, [OOS_LABEL])


def export_clinc_csvs(clinc_path: str | Path, out_dir: str | Path) -> tuple[Path, Path, Path]:
    """Write CLINC150's OOD task as train.csv, test.csv and ood.csv (columns text,label), so that
    `bench-ood --train/--test/--ood` on them reproduces `bench-ood --clinc`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    id_train, id_test, ood = clinc_task(clinc_path)
    paths = []
    for name, part, label in (("train", id_train, None), ("test", id_test, None), ("ood", ood, OOS_LABEL)):
        path = out_dir / f"{name}.csv"
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            writer.writerows(zip(part.texts, part.labels or [label] * len(part)))
        paths.append(path)
    return paths[0], paths[1], paths[2]


def _read_corpus(path: str | Path) -> LabelledTexts:
    from embedlab.ingest import load_corpus

    corpus = load_corpus(path, text_col=None, label_col=None)
    labels = corpus.labels
    if labels is not None and all(v in (None, "") for v in labels):
        labels = None
    return LabelledTexts(list(corpus.texts), None if labels is None else list(labels))


def embed_texts(db, texts: list[str], model: Any, *, progress: Progress | None = None) -> np.ndarray:
    """L2-normalised float32 embeddings through the shared embedding cache (db=None: no caching)."""
    from embedlab.embedding.cache import embed_texts as cached_embed

    return np.asarray(cached_embed(db, texts, model, progress=progress), dtype=np.float32)
