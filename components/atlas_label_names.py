"""The Atlas's 🏷️ Label names: name a corpus's label values (AG News: 1 → World…), typed in a table or loaded from a
file. Names are stored per corpus; a label keeps its colour whatever its name."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import streamlit as st

from embedlab.errors import UserError
from embedlab.map_colours import natural_key
from embedlab.text_display import display_text
from embedlab.workspace import Workspace

MAX_NAMED_VALUES = 300    # a label column of near-unique values: name the most frequent


def label_names_popover(where, ws: Workspace, corpus_id: int, labels: Sequence, names: Mapping[str, str]) -> None:
    """The 🏷️ Label names popover in container `where`."""
    with where.popover("🏷️ Label names", width="stretch",
                       help="Name the label values (AG News: 1 → World…); every map, table and legend shows the "
                            "names. A label keeps its colour whatever its name."):
        label_names_editor(ws, corpus_id, labels, names)


def label_names_editor(ws: Workspace, corpus_id: int, labels: Sequence, names: Mapping[str, str]) -> None:
    """A table of the label values (most frequent first beyond MAX_NAMED_VALUES) with their names, and a file
    upload; each saves and reruns."""
    values, counts = np.unique(np.array([str(v) for v in labels if v is not None], dtype=object),
                               return_counts=True)
    order = sorted(range(len(values)), key=lambda i: natural_key(values[i]))
    if len(order) > MAX_NAMED_VALUES:
        order = sorted(sorted(order, key=lambda i: -counts[i])[:MAX_NAMED_VALUES],
                       key=lambda i: natural_key(values[i]))
        st.caption(f"{len(values):,} label values: showing the {MAX_NAMED_VALUES} most frequent.")
    frame = pd.DataFrame({"label": [values[i] for i in order], "documents": [int(counts[i]) for i in order],
                          "name": [names.get(values[i], "") for i in order]})
    names_key = tuple(sorted(names.items()))
    edited = st.data_editor(frame, key=f"atlas-label-names-{corpus_id}-{hash(names_key)}", hide_index=True,
                            disabled=["label", "documents"], width="stretch",
                            height=min(360, 38 + 35 * len(frame)),
                            column_config={"name": st.column_config.TextColumn("name", max_chars=100)})
    if st.button("Save names", key="atlas_label_names_save", type="primary"):
        kept = {k: v for k, v in names.items() if k not in set(frame["label"])}
        _save(ws, corpus_id, {**kept, **dict(zip(edited["label"], edited["name"].fillna("")))})
    upload = st.file_uploader("Or load names from a file", type=["txt", "csv", "tsv"],
                              key=f"atlas-label-file-{corpus_id}",
                              help="`label,name` rows, or one name per line in label order (as AG News' "
                                   "classes.txt: World, Sports, Business, Sci/Tech for labels 1-4).")
    if upload is not None and st.button("Use the names in this file", key="atlas_label_file_use"):
        try:
            parsed = ws.parse_label_names(upload.getvalue().decode("utf-8", errors="replace"), values.tolist())
        except UserError as exc:
            st.error(display_text(exc))
        else:
            _save(ws, corpus_id, {**names, **parsed})


def _save(ws: Workspace, corpus_id: int, names: Mapping[str, str]) -> None:
    try:
        ws.set_label_names(corpus_id, names)
    except UserError as exc:
        st.error(display_text(exc))
    else:
        st.rerun()
