"""Plotly selection events (what `st.plotly_chart(on_select=...)` returns) read as document indices: every map
trace carries the document index as its `customdata`, so a point's trace and position do not matter."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np


def selection_indices(event: Any) -> np.ndarray:
    """Document indices of a plotly selection event (the chart's return value, its `selection`, or the
    list of points), read from each point's customdata; sorted, unique, int64."""
    if event is None:
        return np.zeros(0, dtype=np.int64)
    selection = _get(event, "selection", event)
    points = _get(selection, "points", selection)
    out: list[int] = []
    for point in points or []:
        value = _get(point, "customdata", None)
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        if value is None:
            continue
        try:
            out.append(int(value))
        except (TypeError, ValueError):
            continue
    return np.unique(np.asarray(out, dtype=np.int64))


def interpret_selection(event: Any) -> tuple[str, np.ndarray] | None:
    """What a plotly selection event asks for: ("click", [idx]) for a single clicked point, ("select", indices)
    for a box or lasso (or several points), None for an empty event.

    An empty event is ignored rather than read as "deselect": Streamlit reports an empty selection for a
    chart that was redrawn with a new figure, which happens after every change of focus or selection.
    """
    selection = _get(event, "selection", event)
    indices = selection_indices(selection)
    if indices.size == 0:
        return None
    dragged = bool(_get(selection, "box", None) or _get(selection, "lasso", None))
    if not dragged and indices.size == 1:
        return "click", indices
    return "select", indices


def _get(obj: Any, key: str, default: Any) -> Any:
    """`obj[key]` for a mapping, `obj.key` for Streamlit's attribute dicts, `default` for a list of points."""
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    if isinstance(obj, (list, tuple)):
        return default
    return getattr(obj, key, default)
