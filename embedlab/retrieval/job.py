"""The `retrieval` job behind the Retrieval page: the shared comparison (`embedlab.retrieval.comparison`) run in
the background, kept as a run of the session (`embedlab.runs.save_retrieval_run`, as `bench-retrieval --session`
keeps it) with its metrics, significance against the baseline and the details the drill-down shows. Params: see
`embedlab.retrieval.params`."""
from __future__ import annotations

import sqlite_utils

from embedlab.jobs import JobContext, job_kind
from embedlab.retrieval.comparison import compare_methods
from embedlab.retrieval.params import validate_params
from embedlab.runs import save_retrieval_run


@job_kind("retrieval")
def retrieval_task(db: sqlite_utils.Database, params: dict, ctx: JobContext) -> str:
    """Compare retrieval methods as `params` describe; store the run and return its reference `run:<id>`."""
    p = validate_params(params)
    done = compare_methods(db, p, progress=lambda f, m: ctx.progress(0.98 * f, m), should_stop=ctx.should_stop)
    ctx.progress(0.98, "comparing with the baseline")
    run_id = save_retrieval_run(db, p["session_id"], done)
    return f"run:{run_id}"
