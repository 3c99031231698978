"""Stored Retrieval and OOD runs: a table of the session's runs to pick one from, and a run's metric table as the
Retrieval and OOD pages show it."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from components.metric_table import metric_table
from components.ood_plots import results_table
from components.state import get_workspace
from embedlab.runs import OODRun, RetrievalRun, Run, RunHeader

MAX_METHODS_SHOWN = 6


def history_frame(runs: list[RunHeader]) -> pd.DataFrame:
    """One row per run: its number, kind, time, methods and dataset."""
    return pd.DataFrame([{"run": r.id, "kind": r.kind, "when": r.created_at,
                          "methods": ", ".join(r.methods[:MAX_METHODS_SHOWN])
                          + (" …" if len(r.methods) > MAX_METHODS_SHOWN else ""),
                          "dataset": r.dataset} for r in runs])


def run_history(session_id: int, *, kind: str | None = None, key: str = "runs") -> Run | None:
    """A table of the session's runs (of one kind); returns the picked run (with its details) or None."""
    ws = get_workspace()
    runs = ws.runs(session_id, kind)
    if not runs:
        st.caption("No runs yet.")
        return None
    table = history_frame(runs)
    event = st.dataframe(table, hide_index=True, width="stretch", on_select="rerun",
                         selection_mode="single-row", key=f"{key}-table")
    rows = event.selection.rows if event is not None else []
    if not rows:
        return None
    return ws.run(int(table.iloc[rows[0]]["run"]))


def run_metrics(run: Run, *, key: str) -> None:
    """A run's metric table, as its lab page shows it."""
    if isinstance(run, RetrievalRun):
        metric_table(run.metrics, significance=run.significance, baseline=run.baseline, key=key)
    elif isinstance(run, OODRun):
        results_table(run.metrics, key=key)
