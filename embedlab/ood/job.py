"""The "ood" job: build the task from stored corpora (`corpus_task`; its docstring lists the params), run the same
`compare_detectors` as `bench-ood`, keep the comparison as a run (`embedlab.runs.save_ood_run`, as `bench-ood
--session` keeps it). The run's details hold per-sample scores for the test set, so the page can redraw anything
without refitting."""
from __future__ import annotations

import sqlite_utils

from embedlab.jobs import JobContext, job_kind
from embedlab.ood.comparison import compare_detectors
from embedlab.ood.corpus_task import task_from_corpora
from embedlab.runs import save_ood_run


@job_kind("ood")
def ood_task(db: sqlite_utils.Database, params: dict, ctx: JobContext) -> str:
    """Embed (cached), fit and score every method, store the run: returns "run:<id>"."""
    setup = task_from_corpora(db, params)
    result = compare_detectors(setup.task, setup.methods, setup.method_params,
                               progress=lambda f, m: ctx.progress(0.95 * float(f), m),
                               should_stop=ctx.should_stop, skip_unavailable=True)
    corpora = {str(c.id): {"name": c.name, "content_hash": c.content_hash} for c in setup.corpora.values()}
    run_id = save_ood_run(db, setup.session_id, setup.run_params(), result, setup.task,
                          n_left_out=setup.split.dropped, corpora=corpora)
    ctx.progress(1.0, f"run {run_id} stored")
    return f"run:{run_id}"
