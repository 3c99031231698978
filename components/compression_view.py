"""Atlas tab "Compression": how compressing the embedding moves a document's nearest neighbours.

For the focused document: its top-10 (itself excluded) under exact dense cosine, int8 and binary quantisation with
rescoring, Matryoshka truncation to N dimensions and, where the token embeddings are stored, MaxSim; each with
its overlap@10 to exact dense. Corpus-wide: overlap@10 of every document under each compressed method as a colour
layer on the tab's own map, the mean per method, and the documents compression hurts most. The numbers come from
`embedlab.compression_neighbours` (the Retrieval lab's own methods, from the registry).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from components.atlas_context import AtlasContext
from components.data import maxsim_index
from components.map_view import draw_map
from components.state import focus_on_pick, keep_widgets, restore_widget
from embedlab.compression_neighbours import (
    EXACT,
    K,
    build_method,
    corpus_exact,
    default_dims,
    focus_neighbours,
    layer_methods,
    overlap_layer,
    sample_rows,
    worst_documents,
)
from embedlab.embedding.embedders import DEFAULT_MODEL, get_embedder
from embedlab.map_colours import numeric_colour
from embedlab.map_figure import Highlight
from embedlab.text_display import display_text, short_text, snippet
from embedlab.workspace import CorpusInfo, Workspace

AUTO_LAYER_MAX_DOCS = 20_000        # above: the corpus-wide layer waits for a button (seconds to minutes)
MAX_STORED_LAYERS = 64             # corpus-wide layers kept on the server (each a float per document)
SAMPLE_SIZE = 2_000                 # rows of the seeded sample that estimates it quickly above that
MAXSIM_MAX_TOKEN_VALUES = 400_000_000   # token rows x dim held as float32 for MaxSim (1.6 GB); above: skipped
CELL_CHARS = 70
N_WORST = 20
TOKEN_JOB_KIND = "tokens"           # the job kind that computes a corpus's token embeddings
DIMS_KEY = "atlas_comp_dims"
LAYER_KEY = "atlas_comp_layer"


# --- cached work (shared by every user of the server) --------------------------------------------------------------


@st.cache_resource(max_entries=8, show_spinner=False)
def _built(emb: tuple[str, int, str], name: str, _X: np.ndarray):
    """The registry's method `name` built on the corpus's embedding (`emb`: its `Workspace.matrix_cache_key`)."""
    return build_method(name, _X)


@st.cache_resource(show_spinner=False)
def _layer_store() -> dict:
    """Corpus-wide overlap layers computed on this server: (db path, matrix id, scope, method) -> overlap@10 per
    row of the scope ("all" documents, or the seeded "sample")."""
    return {}


def estimate_seconds(n: int, m: int) -> float:
    """Rough time of the corpus-wide layers for m query rows against n documents (exact + three methods: about
    14 s for 10,000 x 10,000 on the 2 shared cores this was measured on)."""
    return 1.4e-7 * n * m


class Layers:
    """overlap@10 per row of `rows` (every document, or a seeded sample) for each compressed method."""

    def __init__(self, rows: np.ndarray, values: dict[str, np.ndarray], sample: bool) -> None:
        self.rows, self.values, self.sample = rows, values, sample


def _layers(ctx: AtlasContext, names: list[str], scope: str, *, compute: bool) -> Layers | None:
    """The layers of `scope` ("all" or "sample"): from the store, or computed now with a progress bar when
    `compute`; None when missing and not computed."""
    store = _layer_store()
    rows = np.arange(ctx.n, dtype=np.int64) if scope == "all" else sample_rows(ctx.n, SAMPLE_SIZE)
    emb = ctx.ws.matrix_cache_key(ctx.emb_id)
    keys = {name: (emb, scope, name) for name in names}
    missing = [name for name in names if keys[name] not in store]
    if missing and not compute:
        return None
    if missing:
        bar = st.progress(0.0, text="exact top-10")
        steps = len(missing) + 1
        ref_key = (emb, scope, EXACT)
        if ref_key not in store:
            store[ref_key] = corpus_exact(ctx.X, rows, k=K,
                                          progress=lambda f, m: bar.progress(min(1.0, f / steps), text=m))
        for i, name in enumerate(missing, start=1):
            bar.progress(i / steps, text=f"building {name}")
            method = _built(emb, name, ctx.X)
            store[keys[name]] = overlap_layer(ctx.X, method, store[ref_key], rows, k=K,
                                              progress=lambda f, m, i=i: bar.progress(min(1.0, (i + f) / steps),
                                                                                      text=m))
        bar.empty()
        while len(store) > MAX_STORED_LAYERS:      # oldest first (dicts keep insertion order)
            store.pop(next(iter(store)))
    return Layers(rows, {name: store[keys[name]] for name in names}, scope == "sample")


# --- tokens --------------------------------------------------------------------------------------------------------


def token_status(ws: Workspace, corpus: CorpusInfo, model: str) -> tuple[str, Any, Any]:
    """("none", …) when the model has no token embeddings, ("missing", …) when they are not stored, ("stored",
    tokens meta, offsets meta) when they are (those corpus `corpus_id` uses); never computes anything."""
    try:
        embedder = get_embedder(model)
    except Exception:  # noqa: BLE001 - an unknown model simply has no tokens here
        return "none", None, None
    if not embedder.has_tokens:
        return "none", None, None
    found = ws.tokens(corpus, embedder)
    if found is None:
        return "missing", None, None
    return "stored", *found


def _maxsim_note(ctx: AtlasContext, status: str) -> None:
    if status == "none":
        st.caption(f"MaxSim needs token embeddings; {display_text(ctx.model)} has none (pick a "
                   f"sentence-transformers model such as {DEFAULT_MODEL} to see it).")
        return
    params = {"corpus_id": int(ctx.corpus.id), "model": ctx.model}
    running = ctx.ws.active_job(TOKEN_JOB_KIND, params)
    if running is not None:
        st.caption(f"MaxSim: computing the token embeddings ({running.progress:.0%}); it joins the table when "
                   "they are stored.")
        return
    st.caption("MaxSim needs this corpus's token embeddings, which are not stored yet (one model pass; a MaxSim "
               "run on the Retrieval page stores them too).")
    st.button("Compute token embeddings", key="atlas_comp_tokens",
              on_click=lambda: ctx.ws.submit(TOKEN_JOB_KIND, params, session_id=ctx.session_id),
              help="Runs in the background; MaxSim joins the table when they are stored.")


# --- the view ------------------------------------------------------------------------------------------------------


def compression_view(ctx: AtlasContext) -> None:
    n, d = ctx.X.shape
    if n < 3:
        st.caption("Compression needs at least 3 documents.")
        return
    st.caption("How compressing the embedding moves nearest neighbours: each document's top-10 (itself excluded) "
               "under exact dense cosine and under the Retrieval lab's compressed methods — int8 and binary "
               "quantisation (candidates from the compressed index, rescored with the float vector), Matryoshka "
               "truncation to the first N dimensions, and MaxSim over token embeddings. **overlap@10** is the "
               "share of the exact top-10 a method keeps.")
    dims_key = f"{DIMS_KEY}_{d}"
    restore_widget(dims_key, default_dims(d), lambda v: isinstance(v, int) and 1 <= v <= d)
    c1, c2 = st.columns([1, 3], vertical_alignment="bottom")
    dims = int(c1.number_input("Matryoshka N (dimensions kept)", min_value=1, max_value=int(d), step=1,
                               key=dims_key, on_change=keep_widgets, args=(dims_key,),
                               help=f"Dense retrieval on the first N of {d} dimensions, renormalised. Models "
                                    "trained with a Matryoshka loss keep most neighbours at small N; others lose "
                                    "them fast."))
    keep_widgets(dims_key)
    names = layer_methods(dims)
    c2.caption(f"{n:,} documents · {d} dimensions · model {display_text(ctx.model)}")

    go_key = f"_atlas_comp_scope_{ctx.emb_id}"
    if n <= AUTO_LAYER_MAX_DOCS:
        layers = _layers(ctx, names, "all", compute=True)
    else:   # the whole corpus once asked for; else the sample once asked for (either is kept for the server)
        layers = _layers(ctx, names, "all", compute=st.session_state.get(go_key) == "all") or \
            _layers(ctx, names, "sample", compute=st.session_state.get(go_key) == "sample")

    st.markdown("#### The focused document")
    if ctx.focus is None:
        _no_focus(ctx, layers)
    else:
        _focus_table(ctx, int(ctx.focus), names)

    st.markdown("#### Across the corpus")
    if layers is None or layers.sample:
        m = SAMPLE_SIZE
        st.caption(f"Corpus-wide overlap searches the corpus with each compressed method once per document: for "
                   f"{n:,} documents that is about {_duration(estimate_seconds(n, n))} here, so above "
                   f"{AUTO_LAYER_MAX_DOCS:,} documents it waits for you. A seeded sample of {m:,} documents "
                   f"(about {_duration(estimate_seconds(n, m))}) estimates the means; either result is kept on "
                   "this server.")
        b1, b2 = st.columns(2)
        if layers is None:
            b1.button(f"Estimate on a sample of {m:,} documents", key="atlas_comp_sample",
                      on_click=st.session_state.__setitem__, args=(go_key, "sample"))
        b2.button(f"Compute for all {n:,} documents", key="atlas_comp_all",
                  on_click=st.session_state.__setitem__, args=(go_key, "all"))
        if layers is None:
            return
    _corpus_layers(ctx, layers, names)


def _duration(seconds: float) -> str:
    return f"{max(1, round(seconds))} s" if seconds < 90 else f"{round(seconds / 60)} min"


def _no_focus(ctx: AtlasContext, layers: Layers | None) -> None:
    st.caption("Click a point on the map (here or on the main map), or a row of a table, to see its neighbours "
               "under each method side by side.")
    if layers is None:
        return
    kept = st.session_state.get(LAYER_KEY)
    method = kept if kept in layers.values else next(m for m in layers.values if m == "binary-rescore")
    pos = int(worst_documents(layers.values[method], 1)[0])
    worst = int(layers.rows[pos])
    st.button(f"Focus the document {method} moves most (#{worst}, overlap@10 {layers.values[method][pos]:.1f})",
              key="atlas_comp_worst_focus", on_click=ctx.set_focus, args=(worst,))


def _focus_table(ctx: AtlasContext, row: int, names: list[str]) -> None:
    label = None if ctx.shown_labels is None else ctx.shown_labels[row]
    head = f"**Document #{row}**" + (f" · label *{display_text(label)}*" if label is not None else "")
    st.markdown(head + f" — {display_text(short_text(ctx.texts[row], 240))}")
    emb = ctx.ws.matrix_cache_key(ctx.emb_id)
    methods = {name: _built(emb, name, ctx.X) for name in names}
    status, tok_meta, off_meta = token_status(ctx.ws, ctx.corpus, ctx.model)
    tokens = None
    if status == "stored":
        if tok_meta.rows * tok_meta.cols > MAXSIM_MAX_TOKEN_VALUES:
            status = "too big"
        else:
            with st.spinner("Loading the token embeddings for MaxSim…"):
                methods["maxsim"], tokens = maxsim_index(tok_meta.id, off_meta.id)
    with st.spinner("Searching with each method…"):
        result = focus_neighbours(ctx.X, row, methods, k=K, tokens=tokens)
    exact = set(result[EXACT]["ids"].tolist())
    st.caption("overlap@10 with exact dense:")
    cols = st.columns(len(result))
    for col, (name, res) in zip(cols, result.items()):
        col.metric(name, f"{res['overlap']:.2f}",
                   help="exact dense is the reference" if name == EXACT else
                   f"{round(res['overlap'] * len(res['ids']))} of the exact top-{len(res['ids'])} kept")
    table: dict[str, list[str]] = {}
    ids_of: dict[str, list[int]] = {}
    depth = max(len(r["ids"]) for r in result.values())
    for name, res in result.items():
        ids = res["ids"].tolist()
        ids_of[name] = ids
        cells = [("✓ " if name != EXACT and i in exact else ("· " if name != EXACT else ""))
                 + f"#{i} {short_text(ctx.texts[i], CELL_CHARS)}" for i in ids]
        table[name] = cells + [""] * (depth - len(cells))
    frame = pd.DataFrame(table, index=pd.RangeIndex(1, depth + 1, name="rank"))
    key = f"atlas_comp_nb_{row}_{'_'.join(names)}"

    def pick() -> None:
        state = st.session_state.get(key)
        cells = list(state.selection.cells) if state is not None else []
        if cells:
            r, column = cells[0]
            ids = ids_of.get(column, [])
            if 0 <= int(r) < len(ids):
                ctx.set_focus(ids[int(r)])

    st.dataframe(frame, key=key, on_select=pick, selection_mode="single-cell", width="stretch",
                 height=38 + 35 * depth,
                 column_config={name: st.column_config.TextColumn(name, width="medium") for name in table})
    st.caption("✓: exact dense has this neighbour too. Click a cell to focus that document.")
    if status == "too big":
        st.caption("MaxSim is left out: this corpus's token embeddings are too large to hold in memory here.")
    elif status != "stored":
        _maxsim_note(ctx, status)


def _corpus_layers(ctx: AtlasContext, layers: Layers, names: list[str]) -> None:
    scope = f"a seeded sample of {len(layers.rows):,} documents (an estimate)" if layers.sample else \
        f"all {len(layers.rows):,} documents"
    means = pd.DataFrame({"method": names,
                          "mean overlap@10": [float(layers.values[m].mean()) for m in names],
                          "documents below 0.5": [int((layers.values[m] < 0.5).sum()) for m in names]})
    left, right = st.columns([2, 3])
    with left:
        st.caption(f"overlap@10 of each compressed method with exact dense, over {scope}.")
        restore_widget(LAYER_KEY, "binary-rescore", lambda v: v in names)
        if st.session_state.get(LAYER_KEY) not in names:
            st.session_state[LAYER_KEY] = "binary-rescore"
        method = st.selectbox("Colour the map by the overlap@10 of", names, key=LAYER_KEY, on_change=keep_widgets,
                              args=(LAYER_KEY,))
        keep_widgets(LAYER_KEY)
    with right:
        st.dataframe(means, hide_index=True, width="stretch", key="atlas_comp_means",
                     column_config={"mean overlap@10": st.column_config.NumberColumn(format="%.3f")})
    values = layers.values[method]
    if ctx.coords is None:
        st.caption("No map yet: compute it above to see where compression hurts.")
    else:
        _layer_map(ctx, layers, method, values)
    worst_pos = worst_documents(values, N_WORST)
    worst = [int(layers.rows[p]) for p in worst_pos]
    st.caption(f"The {len(worst)} documents {method} moves most (click one to focus it):")
    frame = pd.DataFrame({"doc": worst, "overlap@10": values[worst_pos],
                          "label": [None if ctx.shown_labels is None else str(ctx.shown_labels[i]) for i in worst],
                          "text": [short_text(ctx.texts[i], 160) for i in worst]})
    if ctx.shown_labels is None:
        frame = frame.drop(columns=["label"])
    key = f"atlas_comp_worst_{method}"

    st.dataframe(frame, key=key, on_select=focus_on_pick(key, worst, ctx.set_focus), selection_mode="single-row",
                 hide_index=True,
                 width="stretch", height=min(420, 38 + 35 * len(frame)),
                 column_config={"doc": st.column_config.NumberColumn(format="%d", width="small"),
                                "overlap@10": st.column_config.NumberColumn(format="%.1f", width="small"),
                                "text": st.column_config.TextColumn(width="large")})


def _layer_map(ctx: AtlasContext, layers: Layers, method: str, values: np.ndarray) -> None:
    """The tab's own map coloured by one method's overlap@10 (only the sampled documents for a sample)."""

    rows = layers.rows
    highlights = []
    if ctx.focus is not None and (not layers.sample or int(ctx.focus) in set(rows.tolist())):
        pos = int(np.searchsorted(rows, int(ctx.focus)))
        highlights.append(Highlight("focus", [pos], symbol="star", size=20, colour="#111111",
                                    line_colour="#FFFFFF", hover=[snippet(ctx.texts[int(ctx.focus)])]))
    coords = ctx.coords if not layers.sample else ctx.coords[rows]
    texts = ctx.texts if not layers.sample else [ctx.texts[i] for i in rows]
    draw_map(coords, numeric_colour(f"overlap@10 {method}", values), key="atlas_comp_map", texts=texts, height=560,
             revision=ctx.revision(f"compression-{len(rows)}"), highlights=highlights,
             numeric={"value_range": (0.0, 1.0)},      # one scale for every method
             on_click=lambda i: ctx.set_focus(int(rows[int(i)])))
    st.caption(f"Dark: {method} loses the exact neighbours there (overlap@10 near 0); yellow: it keeps them."
               + (" Only the sampled documents are drawn." if layers.sample else ""))
