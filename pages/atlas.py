"""Atlas: the map of a corpus (UMAP, PCA or t-SNE), search, selection, neighbours, clusters, bookmarks,
the map's quality, and two embeddings side by side."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from components.atlas_map import atlas_map
from components.job_progress import active_jobs_panel
from components.page_setup import ensure_app_shell
from components.neighbour_panel import FOCUS_KEY, neighbour_panel
from components.selection_table import bookmark_form, bookmarks_panel, selection_table
from components.state import db_path, get_db, require_session, shared_embedder, shared_matrix
from embedlab.clusters import cluster_table, default_min_cluster_size
from embedlab.embedding.embedders import DEFAULT_MODEL, available_models
from embedlab.embedding.cache import find_embedding
from embedlab.errors import UserError
from embedlab.jobs import find_active_job, submit_job
from embedlab.map_colours import (NOISE, categorical_colour, colour_spec, document_lengths, metadata_columns,
                                  numeric_colour)
from embedlab.map_figure import HOVER_TEXT_MAX_POINTS, Highlight, build_map_figure, focus_window
from embedlab.map_quality import quality_verdict
from embedlab.nearest_documents import semantic_hits
from embedlab.tasks import find_projection, map_params
from embedlab.text_display import hover_texts, marked_to_markdown, marked_to_plain, short_text, snippet
from storage.corpora import keyword_search, list_corpora, load_documents
from storage.matrices import list_matrices

SELECTION_KEY = "atlas_selection"
SCOPE_KEY = "atlas_scope"
TABS = ["🔎 Search hits", "☑️ Selection", "🧩 Clusters", "🔖 Bookmarks", "📏 Quality", "⚖️ Compare"]
# Widgets that live in tabs (rendered only while their tab is open) keep their values across tabs.
PERSISTENT = ("atlas_cl_method", "atlas_cl_k", "atlas_cl_min", "atlas_cmp_with")
N_HITS = 25


# --- cached data ----------------------------------------------------------------------------------


class CorpusView:
    """Texts, labels and metadata of a corpus, loaded once per server (read-only)."""

    def __init__(self, docs: list[dict]) -> None:
        self.texts = [d["text"] for d in docs]
        labels = [d["label"] for d in docs]
        self.labels = labels if any(lab is not None for lab in labels) else None
        self.metas = [d["meta"] for d in docs]
        self.n = len(docs)


@st.cache_resource(max_entries=4, show_spinner="Loading documents…")
def corpus_view(path: str, corpus_id: int, content_hash: str) -> CorpusView:
    from storage import connect

    db = connect(path)
    try:
        return CorpusView(load_documents(db, corpus_id))
    finally:
        db.close()


@st.cache_resource(max_entries=8, show_spinner=False)
def hover_for(path: str, corpus_id: int, content_hash: str, with_labels: bool) -> list[str]:
    view = corpus_view(path, corpus_id, content_hash)
    return hover_texts(view.texts, view.labels if with_labels else None)


@st.cache_resource(max_entries=4, show_spinner="Preparing the corpus's embedding space…")
def embedding_space(path: str, corpus_id: int, content_hash: str, model: str):
    """The corpus's space under `model`, shared by every user: queries are encoded as its documents were (a
    corpus-fitted model with the corpus's own fit, done once here; a pretrained one with the shared model)."""
    from embedlab.embedding.embedders import get_embedder
    from embedlab.embedding.space import EmbeddingSpace

    embedder = get_embedder(model)   # a corpus-fitted embedder is this space's own; a loaded model is shared
    if not embedder.fitted_on_corpus:
        embedder = shared_embedder(model)
    return EmbeddingSpace(None, corpus_view(path, corpus_id, content_hash).texts, embedder,
                          content_hash=content_hash, corpus_id=corpus_id)


@st.cache_data(max_entries=64, show_spinner="Searching…")
def semantic_search(path: str, emb_id: int, corpus_id: int, content_hash: str, model: str, query: str,
                    k: int) -> tuple[list[int], list[float]]:
    vec = embedding_space(path, corpus_id, content_hash, model).encode([query])
    idx, scores = semantic_hits(shared_matrix(emb_id), vec[0], k=k)
    return idx.tolist(), scores.tolist()


@st.cache_data(max_entries=16, show_spinner="Clustering…")
def clusters_for(path: str, emb_id: int, proj_id: int | None, corpus_id: int, content_hash: str, method: str,
                 n_clusters: int, min_cluster_size: int) -> tuple[np.ndarray, dict[int, str]]:
    from embedlab.clusters import cluster, keyword_labels

    coords = shared_matrix(proj_id) if proj_id is not None and method == "hdbscan" else None
    ids = cluster(shared_matrix(emb_id), method=method, n_clusters=n_clusters,
                  min_cluster_size=min_cluster_size, coords=coords)
    return ids, keyword_labels(corpus_view(path, corpus_id, content_hash).texts, ids)


@st.cache_data(max_entries=16, show_spinner="Measuring the map's quality…")
def map_quality(path: str, emb_id: int, proj_id: int) -> tuple[float, float, int]:
    from embedlab.projection import knn_overlap, trustworthiness_score

    X, Y = shared_matrix(emb_id), shared_matrix(proj_id)
    sample = min(2000, X.shape[0])
    return trustworthiness_score(X, Y, sample=sample), knn_overlap(X, Y, k=10, sample=sample), sample


@st.cache_data(max_entries=16, show_spinner="Comparing the two embedding spaces…")
def space_agreement(path: str, emb_a: int, emb_b: int) -> tuple[float, float, int | None]:
    from embedlab.compare import linear_cka, mean_neighbour_overlap

    A, B = shared_matrix(emb_a), shared_matrix(emb_b)
    sample = 2000 if A.shape[0] > 20_000 else None
    return linear_cka(A, B), mean_neighbour_overlap(A, B, k=10, sample=sample), sample


@st.cache_data(max_entries=8, show_spinner="Per-document neighbour overlap…")
def per_document_overlap(path: str, emb_a: int, emb_b: int) -> np.ndarray:
    from embedlab.compare import neighbour_overlap

    return neighbour_overlap(shared_matrix(emb_a), shared_matrix(emb_b), k=10).astype(np.float32)


def embedded_models(db, content_hash: str) -> list[str]:
    """Models with a finished embedding of this content: the offered ones, then any other stored."""
    names = list(available_models())
    names += sorted({m.model for m in list_matrices(db, content_hash, kind="embedding")} - set(names))
    done = []
    for name in names:
        try:
            if find_embedding(db, content_hash, name) is not None:
                done.append(name)
        except UserError:
            continue
    return done


# --- state helpers --------------------------------------------------------------------------------


def set_focus(idx: int | None) -> None:
    st.session_state[FOCUS_KEY] = None if idx is None else int(idx)


def set_selection(indices) -> None:
    st.session_state[SELECTION_KEY] = [int(i) for i in indices]


def projection_kwargs() -> dict:
    ss = st.session_state
    return {"method": ss["atlas_method"], "n_components": int(ss["atlas_dims"][0]),
            "n_neighbors": int(ss["atlas_nn"]), "min_dist": float(ss["atlas_md"]), "seed": int(ss["atlas_seed"])}


def init_map_settings(db, content_hash: str, model: str) -> None:
    """Map settings start from the latest stored map of this corpus and model (else UMAP 2-D defaults)."""
    stored = [m for m in list_matrices(db, content_hash, kind="projection") if m.model == model]
    p = stored[-1].params if stored else {}
    ss = st.session_state
    ss["atlas_method"] = p.get("method", "umap")
    ss["atlas_dims"] = f"{p.get('n_components', 2)}-D"
    ss["atlas_nn"] = int(p.get("n_neighbors", 15))
    ss["atlas_md"] = float(p.get("min_dist", 0.1))
    ss["atlas_seed"] = int(p.get("seed", 42) if p.get("seed") is not None else 42)


def describe_map(params: dict) -> str:
    text = f"{params.get('method', '?')} {params.get('n_components', 2)}-D"
    if params.get("method") == "umap":
        text += f" · n_neighbors {params.get('n_neighbors')} · min_dist {params.get('min_dist')}"
    if params.get("seed") is not None and params.get("method") != "pca":
        text += f" · seed {params.get('seed')}"
    return text


# --- page -----------------------------------------------------------------------------------------

ensure_app_shell()
st.title("Atlas")
db = get_db()
session_id, session_name = require_session()
for _k in PERSISTENT:
    if _k in st.session_state:
        st.session_state[_k] = st.session_state[_k]
st.session_state.setdefault(FOCUS_KEY, None)
st.session_state.setdefault(SELECTION_KEY, [])


def keep_valid(key: str, options: list) -> None:
    """Drop a widget's remembered value that is no longer among its options (another corpus, say)."""
    if key in st.session_state and st.session_state[key] not in options:
        del st.session_state[key]


corpora = list_corpora(db, session_id)
if not corpora:
    st.info("No corpus in this session yet: add one on the Corpora page.")
    st.page_link("pages/corpora.py", label="Go to Corpora", icon="📚")
    st.stop()

controls = st.columns([3, 3, 3, 2], vertical_alignment="bottom")
names = [c.name for c in corpora]
keep_valid("atlas_corpus", names)
corpus_name = controls[0].selectbox("Corpus", names, key="atlas_corpus")
corpus = next(c for c in corpora if c.name == corpus_name)
if st.session_state.get(SCOPE_KEY, (None,))[0] != corpus.id:
    st.session_state[FOCUS_KEY] = None
    st.session_state[SELECTION_KEY] = []
    st.session_state[SCOPE_KEY] = (corpus.id, None)

models = embedded_models(db, corpus.content_hash)
if not models:
    st.info(f"“{corpus.name}” has no embedding yet: embed it to draw its map.")
    offered = available_models()
    model_to_embed = st.selectbox("Model", offered, index=offered.index(DEFAULT_MODEL), key="atlas_embed_model",
                                  help="all-MiniLM-L6-v2 is bundled (offline); tfidf-svd needs no weights.")
    params = map_params(corpus.id, model_to_embed)
    if find_active_job(db, "project", params) or find_active_job(db, "embed", {"corpus_id": corpus.id,
                                                                               "model": model_to_embed}):
        st.caption("Embedding in progress…")
    elif st.button("Embed and map", type="primary", key="atlas_embed"):
        submit_job(db_path(), "project", params, session_id=session_id)
        st.rerun()
    active_jobs_panel(session_id, kinds=("embed", "project"), key="atlas-jobs")
    st.stop()

keep_valid("atlas_model", models)
model = controls[1].selectbox("Model", models, key="atlas_model",
                              help="Models with a finished embedding of this corpus.")
if st.session_state[SCOPE_KEY] != (corpus.id, model) or "atlas_method" not in st.session_state:
    init_map_settings(db, corpus.content_hash, model)
    st.session_state[SCOPE_KEY] = (corpus.id, model)
emb_meta = find_embedding(db, corpus.content_hash, model)
view = corpus_view(db_path(), corpus.id, corpus.content_hash)
n = view.n
X = shared_matrix(emb_meta.id)

with controls[3].popover("⚙️ Map settings", width="stretch"):
    st.segmented_control("Method", ["umap", "pca", "tsne"], key="atlas_method", required=True)
    st.segmented_control("Dimensions", ["2-D", "3-D"], key="atlas_dims", required=True)
    umap_on = st.session_state["atlas_method"] == "umap"
    st.slider("n_neighbors", 2, 100, key="atlas_nn", disabled=not umap_on,
              help="UMAP: larger values favour the global structure, smaller ones local detail.")
    st.slider("min_dist", 0.0, 0.99, step=0.01, key="atlas_md", disabled=not umap_on,
              help="UMAP: how tightly points may pack together.")
    st.number_input("Seed", 0, 2**31 - 1, step=1, key="atlas_seed",
                    disabled=st.session_state["atlas_method"] == "pca",
                    help="The same seed gives the same map (UMAP then runs single-threaded).")
pkw = projection_kwargs()
proj_meta = find_projection(db, corpus.id, model, **pkw)
coords = shared_matrix(proj_meta.id) if proj_meta is not None else None

# Colour choices: label, cluster, length, metadata columns.
colour_options = (["label"] if view.labels is not None else []) + ["cluster", "length (characters)"]
meta_cols = metadata_columns(view.metas[:2000])
colour_options += [f"meta: {c}" for c in meta_cols]
keep_valid("atlas_colour", colour_options)
colour_choice = controls[2].selectbox("Colour by", colour_options, key="atlas_colour")

# Search row.
s1, s2 = st.columns([5, 2], vertical_alignment="bottom")
query = s1.text_input("Search", key="atlas_query", placeholder="Search the corpus, then press Enter",
                      label_visibility="collapsed")
mode = s2.segmented_control("Search mode", ["Semantic", "Keyword"], default="Semantic", key="atlas_search_mode",
                            required=True, label_visibility="collapsed")
hits: list[dict] = []
if query.strip():
    try:
        if mode == "Semantic":
            idx, scores = semantic_search(db_path(), emb_meta.id, corpus.id, corpus.content_hash, model,
                                          query.strip(), N_HITS)
            hits = [{"idx": i, "score": round(s, 4), "label": None if view.labels is None else view.labels[i],
                     "text": short_text(view.texts[i], 200)} for i, s in zip(idx, scores)]
        else:
            hits = [{"idx": h["idx"], "score": round(h["score"], 3), "label": h["label"],
                     "text": marked_to_plain(h["snippet"])} for h in keyword_search(db, corpus.id, query, 50)]
    except UserError as exc:
        st.error(str(exc))

active_jobs_panel(session_id, kinds=("embed", "project"), key="atlas-jobs")

# Colour values.
# HDBSCAN (sklearn) takes minutes on 100k points of a dense map; k-means seconds.
st.session_state.setdefault("atlas_cl_method", "hdbscan" if n <= 20_000 else "kmeans")
st.session_state.setdefault("atlas_cl_k", 10)
st.session_state.setdefault("atlas_cl_min", default_min_cluster_size(n))
cluster_cfg = {"method": st.session_state["atlas_cl_method"], "k": int(st.session_state["atlas_cl_k"]),
               "min": int(st.session_state["atlas_cl_min"])}


def current_clusters():
    return clusters_for(db_path(), emb_meta.id, proj_meta.id if proj_meta is not None else None, corpus.id,
                        corpus.content_hash, cluster_cfg["method"], cluster_cfg["k"], cluster_cfg["min"])


if colour_choice == "label":
    colour = categorical_colour("label", view.labels)
elif colour_choice == "cluster":
    ids, kw = current_clusters()
    colour = categorical_colour("cluster", [f"{c}: {kw.get(int(c), '')}" if c >= 0 else NOISE for c in ids])
elif colour_choice == "length (characters)":
    colour = numeric_colour("length (characters)", document_lengths(view.texts))
else:
    column = colour_choice.removeprefix("meta: ")
    colour = colour_spec(column, [m.get(column) for m in view.metas])

focus = st.session_state[FOCUS_KEY]
if focus is not None and not 0 <= focus < n:
    focus = st.session_state[FOCUS_KEY] = None
selected = [i for i in st.session_state[SELECTION_KEY] if 0 <= i < n]
with_hover = n <= HOVER_TEXT_MAX_POINTS
hover_labels = colour.kind == "categorical" and colour_choice != "label" and view.labels is not None
hover = hover_for(db_path(), corpus.id, corpus.content_hash, hover_labels) if with_hover else None


def few_hover(indices) -> list[str]:
    return [snippet(view.texts[i]) for i in indices]


def highlights(neighbours: list[int]) -> list[Highlight]:
    out = []
    if hits:
        hit_idx = [h["idx"] for h in hits]
        out.append(Highlight("search hits", hit_idx, symbol="diamond", size=11, colour="#FFB000",
                             line_colour="#222222", hover=few_hover(hit_idx)))
    if neighbours:
        out.append(Highlight("neighbours", neighbours, symbol="circle-open", size=13, colour="#111111",
                             line_colour="#111111", hover=few_hover(neighbours)))
    if focus is not None:
        out.append(Highlight("focus", [focus], symbol="star", size=20, colour="#111111", line_colour="#FFFFFF",
                             hover=few_hover([focus])))
    return out


left, right = st.columns([2, 1], gap="medium")
neighbour_idx: list[int] = []
neighbour_rows_shown: list[dict] = []
with right:
    if focus is None:
        st.markdown("**Neighbours**")
        st.caption("Click a point on the map (or a row in any table below) to see its nearest neighbours in the "
                   "original embedding space. Box or lasso select (toolbar) to pick many documents.")
    else:
        doc = load_documents(db, corpus.id, [focus])[0]
        rows = neighbour_panel(X=X, coords=coords, focus=focus, doc=doc, texts=view.texts, labels=view.labels,
                               on_focus=set_focus, on_clear=lambda: set_focus(None))
        neighbour_idx = [r["idx"] for r in rows]
        neighbour_rows_shown = rows
        with st.popover("🔖 Bookmark this document", width="stretch"):
            bookmark_form(db, session_id, corpus.id, [focus], key="atlas-bm-focus")

with left:
    if coords is None:
        params = {"corpus_id": corpus.id, "model": model, **pkw}
        job = find_active_job(db, "project", params)
        with st.container(border=True, height=400):
            st.markdown(f"**No map yet** for {model} with {describe_map(pkw)}.")
            if job is not None:
                st.caption("Computing the map… it appears here when done.")
            else:
                st.caption("A map of a few thousand documents takes seconds; of 100k, a few minutes (UMAP).")
                if st.button("Compute map", type="primary", key="atlas_compute"):
                    submit_job(db_path(), "project", params, session_id=session_id)
                    st.rerun()
            stored = [m for m in list_matrices(db, corpus.content_hash, kind="projection") if m.model == model]
            if stored:
                st.caption("Other maps stored for this model (other settings, or an older engine version): "
                           + "; ".join(describe_map(m.params) for m in stored))
    else:
        window = None
        if focus is not None and st.session_state.get("atlas_zoom_focus", True):
            near = [r["idx"] for r in neighbour_rows_shown if not r["far on map"]]
            window = focus_window(coords, [focus, *near])
        fig = build_map_figure(coords, colour, hover=hover, labels=view.labels, selected=selected,
                               highlights=highlights(neighbour_idx), height=640,
                               uirevision=f"{corpus.id}-{proj_meta.id}", window=window)
        atlas_map(fig, key="atlas_map", n_points=n, on_select=set_selection, on_click=set_focus,
                  hover_snippets=with_hover)
        c1, c2, c3 = st.columns([2, 4, 1.4], vertical_alignment="center")
        if coords.shape[1] == 2:
            c1.toggle("Zoom to focus", value=True, key="atlas_zoom_focus",
                      help="A click redraws the map; with this on, the view frames the focused document and its "
                           "neighbours, otherwise the whole map.")
        if selected:
            c2.caption(f"{len(selected):,} documents selected (see the Selection tab); the rest are greyed.")
            c3.button("Clear selection", key="atlas_clear_sel", on_click=lambda: set_selection([]))

tabs = st.tabs(TABS, key="atlas_tab", on_change="rerun")
t_hits, t_sel, t_clusters, t_bookmarks, t_quality, t_compare = tabs


def pick_row(key: str, idxs: list[int]) -> None:
    state = st.session_state.get(key)
    rows = list(state.selection.rows) if state is not None else []
    if rows:
        set_focus(idxs[rows[0]])


if t_hits.open:
    with t_hits:
        if not query.strip():
            st.caption("Type a query above: **Semantic** embeds it with the corpus's model and finds the nearest "
                       "documents; **Keyword** uses full-text search (matches shown in « »).")
        elif not hits:
            st.caption("No hits.")
        else:
            if mode == "Keyword":
                best = keyword_search(db, corpus.id, query, 1)
                if best:
                    st.markdown(f"Best match, #{best[0]['idx']}: {marked_to_markdown(best[0]['snippet'])}")
            key = f"atlas-hits-{mode}-{abs(hash(query))}"
            idxs = [h["idx"] for h in hits]
            st.dataframe(pd.DataFrame(hits), key=key, on_select=lambda: pick_row(key, idxs),
                         selection_mode="single-row", hide_index=True, width="stretch",
                         column_config={"idx": st.column_config.NumberColumn("doc", format="%d", width="small"),
                                        "score": st.column_config.NumberColumn(
                                            "cosine" if mode == "Semantic" else "bm25", format="%.3f",
                                            width="small"),
                                        "text": st.column_config.TextColumn("text", width="large")})
            st.button(f"Select these {len(hits)} hits on the map", key="atlas_hits_select",
                      on_click=lambda: set_selection(idxs))

if t_sel.open:
    with t_sel:
        if not selected:
            st.caption("Nothing selected: use the box or lasso tool of the map (top right of the map), "
                       "or select a cluster or the search hits.")
        else:
            selection_table(selected, db=db, db_path=db_path(), session_id=session_id, corpus_id=corpus.id,
                            corpus_name=corpus.name, on_focus=set_focus)

if t_clusters.open:
    with t_clusters:
        c1, c2, c3 = st.columns([2, 2, 2], vertical_alignment="bottom")
        c1.segmented_control("Method", ["hdbscan", "kmeans"], key="atlas_cl_method", required=True,
                             help="HDBSCAN finds the islands of the map (noise allowed); k-means partitions the "
                                  "embedding space into k groups.")
        if st.session_state["atlas_cl_method"] == "hdbscan" and n > 20_000:
            st.caption(f"HDBSCAN on {n:,} points can take minutes (once: the result is cached).")
        if st.session_state["atlas_cl_method"] == "kmeans":
            c2.slider("k", 2, 50, key="atlas_cl_k")
        else:
            c2.number_input("Smallest cluster", 2, max(2, n), key="atlas_cl_min")
        c3.button("Colour the map by cluster", key="atlas_cl_colour",
                  on_click=lambda: st.session_state.update(atlas_colour="cluster"))
        cluster_cfg.update(method=st.session_state["atlas_cl_method"], k=int(st.session_state["atlas_cl_k"]),
                           min=int(st.session_state["atlas_cl_min"]))
        ids, kw = current_clusters()
        table = cluster_table(ids, kw)
        noise = sum(r["size"] for r in table if r["cluster"] == -1)
        st.caption(f"{sum(r['cluster'] >= 0 for r in table)} clusters"
                   + (f", {noise:,} document{'s' if noise != 1 else ''} as noise" if noise else "")
                   + ". Click a cluster to select its documents on the map.")
        key = f"atlas-cl-table-{cluster_cfg['method']}-{cluster_cfg['k']}-{cluster_cfg['min']}"
        cl_ids = [r["cluster"] for r in table]

        def pick_cluster() -> None:
            state = st.session_state.get(key)
            rows = list(state.selection.rows) if state is not None else []
            if rows:
                set_selection(np.flatnonzero(ids == cl_ids[rows[0]]))

        st.dataframe(pd.DataFrame(table), key=key, on_select=pick_cluster, selection_mode="single-row",
                     hide_index=True, width="stretch", height=min(420, 38 + 35 * len(table)),
                     column_config={"size": st.column_config.ProgressColumn(
                         "size", min_value=0, max_value=max([r["size"] for r in table] or [1]), format="%d")})

if t_bookmarks.open:
    with t_bookmarks:
        bookmarks_panel(db=db, session_id=session_id, corpus_id=corpus.id, texts=view.texts, labels=view.labels,
                        on_focus=set_focus)

if t_quality.open:
    with t_quality:
        if coords is None:
            st.caption("Compute the map first.")
        else:
            trust, overlap, sample = map_quality(db_path(), emb_meta.id, proj_meta.id)
            q1, q2, q3 = st.columns([1, 1, 3])
            q1.metric("Trustworthiness", f"{trust:.3f}", help="1 means the map invents no neighbours "
                                                             "(scikit-learn, k=10, cosine in the original space)")
            q2.metric("kNN overlap@10", f"{overlap:.0%}", help="Share of each document's 10 nearest neighbours "
                                                               "(original space) that are among its 10 nearest on "
                                                               "the map")
            q3.info(quality_verdict(trust, overlap))
            st.caption(f"Measured on a random sample of {sample:,} documents · map: {describe_map(proj_meta.params)}")

if t_compare.open:
    with t_compare:
        others = [m for m in models if m != model]
        stored_maps = [m for m in list_matrices(db, corpus.content_hash, kind="projection")
                       if m.model == model and (proj_meta is None or m.id != proj_meta.id)]
        options = [f"model: {m}" for m in others] + [f"map: {describe_map(m.params)} #{m.id}" for m in stored_maps]
        not_embedded = [m for m in available_models() if m not in models]
        if not options:
            st.caption("Compare needs a second embedding of this corpus (or a second stored map).")
        else:
            keep_valid("atlas_cmp_with", options)
            with_what = st.selectbox("Compare with", options, key="atlas_cmp_with")
        if not_embedded:
            e1, e2 = st.columns([3, 1], vertical_alignment="bottom")
            e1.caption(f"Embed this corpus with {', '.join(not_embedded)} to compare models.")
            for m in not_embedded:
                params = {"corpus_id": corpus.id, "model": m}
                if not find_active_job(db, "embed", params) and e2.button(f"Embed with {m}", key=f"atlas-embed-{m}"):
                    submit_job(db_path(), "embed", params, session_id=session_id)
                    st.rerun()
        if options and coords is None:
            st.caption("Compute the map first.")
        if options and coords is not None:
            overlap_doc = None
            if with_what.startswith("model: "):
                other = with_what.removeprefix("model: ")
                emb_b = find_embedding(db, corpus.content_hash, other)
                proj_b = find_projection(db, corpus.id, other, **pkw)
                cka, mean_ov, sample = space_agreement(db_path(), emb_meta.id, emb_b.id)
                m1, m2, m3 = st.columns([1, 1, 3])
                m1.metric("Linear CKA", f"{cka:.3f}", help="Similarity of the two spaces (Kornblith et al. 2019), "
                                                           "1 = the same up to rotation and scale")
                m2.metric("Neighbour overlap@10", f"{mean_ov:.0%}",
                          help="Share of a document's 10 nearest neighbours that both models agree on")
                m3.caption("Estimated on a sample of 2,000 documents." if sample else "Over all documents.")
                if n <= 20_000 or st.session_state.get("atlas_cmp_full") == (emb_meta.id, emb_b.id):
                    overlap_doc = per_document_overlap(db_path(), emb_meta.id, emb_b.id)
                elif st.button(f"Compute the per-document overlap for all {n:,} documents (minutes)",
                               key="atlas_cmp_full_btn"):
                    st.session_state["atlas_cmp_full"] = (emb_meta.id, emb_b.id)
                    st.rerun()
                coords_b = shared_matrix(proj_b.id) if proj_b is not None else None
                title_b = f"{other} · {describe_map(pkw)}"
            else:
                other_id = int(with_what.rsplit("#", 1)[1])
                coords_b = shared_matrix(other_id)
                proj_b = next(m for m in stored_maps if m.id == other_id)
                title_b = f"{model} · {describe_map(proj_b.params)}"
                other = model
            cmp_colour = colour
            if overlap_doc is not None:
                cmp_colour = numeric_colour("neighbour overlap@10", overlap_doc)
            cmp_hover = hover_for(db_path(), corpus.id, corpus.content_hash, True) if with_hover else None
            a, b = st.columns(2)
            with a:
                st.markdown(f"**{model}** · {describe_map(proj_meta.params)}")
                fig_a = build_map_figure(coords, cmp_colour, hover=cmp_hover, labels=view.labels,
                                         selected=selected, highlights=highlights([]), height=460,
                                         uirevision=f"cmp-a-{proj_meta.id}")
                atlas_map(fig_a, key="atlas_cmp_a", n_points=n, on_select=set_selection, on_click=set_focus,
                          hover_snippets=with_hover)
            with b:
                st.markdown(f"**{title_b}**")
                if coords_b is None:
                    params = {"corpus_id": corpus.id, "model": other, **pkw}
                    if find_active_job(db, "project", params):
                        st.caption("Computing this map…")
                    elif st.button(f"Compute the map of {other}", key="atlas_cmp_compute"):
                        submit_job(db_path(), "project", params, session_id=session_id)
                        st.rerun()
                else:
                    fig_b = build_map_figure(coords_b, cmp_colour, hover=cmp_hover, labels=view.labels,
                                             selected=selected, highlights=highlights([]), height=460,
                                             uirevision=f"cmp-b-{proj_b.id}")
                    atlas_map(fig_b, key="atlas_cmp_b", n_points=n, on_select=set_selection,
                              on_click=set_focus, hover_snippets=with_hover)
            st.caption("Selections are linked: select in either map and the same documents stay coloured in both.")
            if overlap_doc is not None:
                order = np.argsort(overlap_doc, kind="stable")[:30]
                low = [{"idx": int(i), "overlap@10": float(overlap_doc[i]),
                        "label": None if view.labels is None else view.labels[i],
                        "text": short_text(view.texts[i], 200)} for i in order]
                st.markdown("**Where the models disagree most** (lowest neighbour overlap; click to focus)")
                key = f"atlas-cmp-low-{emb_meta.id}-{with_what}"
                low_idx = [r["idx"] for r in low]
                st.dataframe(pd.DataFrame(low), key=key, on_select=lambda: pick_row(key, low_idx),
                             selection_mode="single-row", hide_index=True, width="stretch",
                             column_config={"idx": st.column_config.NumberColumn("doc", format="%d"),
                                            "overlap@10": st.column_config.ProgressColumn(
                                                "overlap@10", min_value=0.0, max_value=1.0, format="%.1f")})
