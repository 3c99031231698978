"""The "ood" job kind: build the task from stored corpora (`corpus_task`; its docstring lists the params), run
the same `compare_detectors` as `bench-ood`, keep the comparison as a run.

The run's details hold per-sample scores for the test set, so the page can redraw anything without refitting.
"""
from __future__ import annotations

from collections import Counter

import sqlite_utils

from embedlab.jobs import JobContext, job_kind

# Names the OOD page and older callers import from here.
from embedlab.ood.corpus_task import TEST_SOURCES, task_from_corpora  # noqa: F401
from embedlab.ood.label_rules import disabled_methods, label_status, usable_labels  # noqa: F401
from embedlab.ood.run_reading import confusion_at, id_quantile_threshold, resolve_run_corpora, review_lists  # noqa: F401
from embedlab.ood.split import DEFAULT_FRACTION, OODSplit, split_corpus  # noqa: F401

ROC_POINTS = 300
METRIC_KEYS = ("auroc", "auroc_ci", "fpr95", "fpr95_openood", "aupr_in", "aupr_out")


@job_kind("ood")
def ood_task(db: sqlite_utils.Database, params: dict, ctx: JobContext) -> str:
    """Embed (cached), fit and score every method, store the run: returns "run:<id>"."""
    from embedlab.ood.comparison import compare_detectors
    from embedlab.ood.evaluate import roc_points
    from storage.sessions import save_run

    setup = task_from_corpora(db, params)
    task = setup.task
    result = compare_detectors(task, setup.methods, setup.method_params,
                               progress=lambda f, m: ctx.progress(0.95 * float(f), m),
                               should_stop=ctx.should_stop, skip_unavailable=True)
    runnable = list(result.methods)
    metrics = {m: {k: result.methods[m][k] for k in METRIC_KEYS if k in result.methods[m]} for m in runnable}
    roc = {}
    for m in runnable:
        points = roc_points(result.scores[m], result.is_ood, max_points=ROC_POINTS)
        roc[m] = {"fpr": points["fpr"], "tpr": points["tpr"]}
    train_labels = usable_labels(task.train_labels)
    details = {
        "scores": {m: [float(v) for v in result.scores[m]] for m in runnable},
        "test_idx": setup.test_idx,
        "is_ood": [int(v) for v in result.is_ood],
        "test_labels": task.test_labels,
        "roc": roc,
        "id_accuracy": result.id_accuracy,
        "n_id": result.n_id,
        "n_ood": result.n_ood,
        "n_train": len(setup.split.train),
        "n_left_out": setup.split.dropped,
        "disabled": result.skipped,
        "timing": {m: {k: result.methods[m].get(k) for k in ("fit_s", "score_s")} for m in runnable},
        "timing_s": result.timing_s,
        "train_labels": dict(Counter(train_labels.tolist())) if train_labels is not None else {},
        "corpora": {str(c.id): {"name": c.name, "content_hash": c.content_hash} for c in setup.corpora.values()},
    }
    stored = {**params, "model": setup.model, "corpus": setup.corpora["in-distribution"].name}
    if "id test" in setup.corpora:
        stored["id_test_corpus"] = setup.corpora["id test"].name
    if "ood" in setup.corpora:
        stored["test_corpus"] = setup.corpora["ood"].name
    run_id = save_run(db, setup.session_id, "ood", stored, metrics, details)
    ctx.progress(1.0, f"run {run_id} stored")
    return f"run:{run_id}"
