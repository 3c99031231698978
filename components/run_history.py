"""Stored Retrieval and OOD runs: a list to pick from and the chosen run's metrics table."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from components.state import get_db
from storage.sessions import list_runs, load_run


def metrics_frame(metrics: dict) -> pd.DataFrame:
    """{method: {metric: value}} as a table, one row per method."""
    rows = [{"method": m, **{k: v for k, v in vals.items() if not isinstance(v, (list, dict))}}
            for m, vals in metrics.items() if isinstance(vals, dict)]
    return pd.DataFrame(rows)


def run_history(session_id: int, *, kind: str | None = None, key: str = "runs") -> dict | None:
    """A table of the session's runs; returns the picked run (with its details) or None."""
    runs = list_runs(get_db(), session_id, kind)
    if not runs:
        st.caption("No runs yet.")
        return None
    table = pd.DataFrame([{"run": r["id"], "kind": r["kind"], "when": r["created_at"],
                           "methods": ", ".join(list(r["metrics"])[:6]) + (" …" if len(r["metrics"]) > 6 else ""),
                           "dataset": r["params"].get("beir") or r["params"].get("clinc") or
                           r["params"].get("dataset") or r["params"].get("corpus", "")} for r in runs])
    event = st.dataframe(table, hide_index=True, width="stretch", on_select="rerun",
                         selection_mode="single-row", key=f"{key}-table")
    rows = event.selection.rows if event is not None else []
    if not rows:
        return None
    return load_run(get_db(), int(table.iloc[rows[0]]["run"]))
