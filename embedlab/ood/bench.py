"""`bench-ood`: an OOD task read from CLINC150 or from three files, compared by the same `compare_detectors` as
the OOD page, written as DESIGN §3's `bench-ood --json` object.

The training texts are the in-distribution corpus and define the embedding space; the ID test and OOD texts
are encoded in that space (with a corpus-fitted embedder such as tfidf-svd: with the training texts' fit)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedlab.embedding.embedders import DEFAULT_MODEL
from embedlab.embedding.space import EmbeddingSpace
from embedlab.errors import InputError
from embedlab.ingest import load_corpus
from embedlab.ood import parse_methods
from embedlab.ood.clinc import LabelledTexts, clinc_task, export_clinc_csvs
from embedlab.ood.comparison import Comparison, OODTask, TestPart, compare_detectors, run_ood_comparison
from embedlab.ood.label_rules import is_missing

Progress = Callable[[float, str], None]

__all__ = [
    "DEFAULT_MODEL",
    "BenchSets",
    "bench_json",
    "bench_params",
    "bench_task",
    "export_clinc_csvs",
    "read_bench_sets",
    "run_ood_bench",
    "run_ood_comparison",
]


@dataclass
class BenchSets:
    """The three sets of a bench: in-distribution training texts (with labels or not), ID test, OOD."""

    dataset: str
    train: LabelledTexts
    test: LabelledTexts
    ood: LabelledTexts


def read_bench_sets(*, clinc: str | Path | None = None, train: str | Path | None = None,
                    test: str | Path | None = None, ood: str | Path | None = None) -> BenchSets:
    """Read CLINC150 (fit on train without 'oos'; test = test less 'oos'; OOD = oos_test and the test split's
    'oos') or three files (read by embedlab.ingest; the OOD file's labels are ignored). Writes nothing."""
    files = (train, test, ood)
    if clinc is not None and any(p is not None for p in files):
        raise InputError("give either --clinc FILE or --train/--test/--ood, not both")
    if clinc is not None:
        sets = BenchSets("clinc150", *clinc_task(clinc))
    elif all(p is not None for p in files):
        train_set, test_set, ood_set = (_read_corpus(p) for p in files)
        sets = BenchSets(Path(train).stem, train_set, test_set, LabelledTexts(list(ood_set.texts), None))
    else:
        raise InputError("give --clinc FILE, or all three of --train F --test F --ood F")
    for what, part in (("in-distribution training", sets.train), ("in-distribution test", sets.test),
                       ("OOD", sets.ood)):
        if not len(part):
            raise InputError(f"the {what} set is empty")
    return sets


def bench_task(sets: BenchSets, model: Any = DEFAULT_MODEL, db=None) -> OODTask:
    """The comparison task of a bench: the training texts' space (cached in db when given; db=None stores
    nothing), the ID test and OOD texts encoded in it."""
    space = EmbeddingSpace(db, sets.train.texts, model)
    return OODTask(dataset=sets.dataset, space=space, train_labels=sets.train.labels,
                   tests=[TestPart("ID test texts", False, texts=list(sets.test.texts), labels=sets.test.labels),
                          TestPart("OOD texts", True, texts=list(sets.ood.texts))])


def bench_json(task: OODTask, result: Comparison) -> dict[str, Any]:
    """DESIGN §3's `bench-ood --json` object, plus id_accuracy, skipped and timing_s."""
    out: dict[str, Any] = {"dataset": task.dataset, "model": task.space.model, "n_id": result.n_id,
                           "n_ood": result.n_ood, "methods": dict(result.methods)}
    if result.id_accuracy is not None:
        out["id_accuracy"] = result.id_accuracy
    if result.skipped:
        out["skipped"] = dict(result.skipped)
    out["timing_s"] = dict(result.timing_s)
    return out


def bench_params(sets: BenchSets, task: OODTask, methods: str | list[str] | None = None, *,
                 clinc: str | Path | None = None, train: str | Path | None = None, test: str | Path | None = None,
                 ood: str | Path | None = None) -> dict[str, Any]:
    """The params a `bench-ood --session` run keeps (`embedlab.runs.OODRun`): the comparison as validated, with the
    files it read."""
    files = {"clinc": clinc} if clinc is not None else {"train": train, "test": test, "ood": ood}
    return {"source": "clinc" if clinc is not None else "files", **{k: str(v) for k, v in files.items()},
            "model": task.space.model, "methods": parse_methods(methods), "params": {}, "dataset": sets.dataset}


def run_ood_bench(*, clinc: str | Path | None = None, train: str | Path | None = None,
                  test: str | Path | None = None, ood: str | Path | None = None, model: Any = DEFAULT_MODEL,
                  methods=None, db=None, progress: Progress | None = None,
                  params: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Read, embed and compare: DESIGN §3's `bench-ood --json` object. model: a name or an Embedder object.
    Methods named explicitly that cannot run raise InputError; with methods=None they are skipped, with why."""
    parse_methods(methods)  # fail on a bad name before reading or embedding anything
    task = bench_task(read_bench_sets(clinc=clinc, train=train, test=test, ood=ood), model, db)
    return bench_json(task, compare_detectors(task, methods, params, progress))


def _read_corpus(path: str | Path) -> LabelledTexts:
    corpus = load_corpus(path, text_col=None, label_col=None)
    labels = corpus.labels
    if labels is not None and all(is_missing(v) for v in labels):
        labels = None
    return LabelledTexts(list(corpus.texts), None if labels is None else list(labels))
