"""Atlas: the map of a corpus (UMAP, PCA or t-SNE), search, selection, neighbours, clusters, bookmarks,
the map's quality, and two embeddings side by side."""
from __future__ import annotations

from components.page_setup import ensure_app_shell

ensure_app_shell()  # first: a deep link shows the real navigation before the page's imports run

import numpy as np
import pandas as pd
import streamlit as st

from components.atlas_context import ATLAS_TAB_KEY, ATLAS_TABS, AtlasContext
from components.atlas_map import atlas_map, figure_digest, shown_digest
from components.compression_view import compression_view
from components.diagnostics_view import diagnostics_view, k_occurrence_of
from components.failure_regions_view import failure_regions_view
from components.ood_explain_view import ood_colour_layers, ood_colour_values, ood_explain_view
from components.retrieval_map_view import retrieval_map_view
from components.job_progress import active_jobs_panel
from components.neighbour_panel import FOCUS_KEY, neighbour_panel
from components.selection_table import bookmark_form, bookmarks_panel, selection_table
from components.state import db_path, get_db, require_session, shared_embedder, shared_matrix
from embedlab.clusters import cluster_table, default_min_cluster_size
from embedlab.embedding.cache import find_embedding
from embedlab.embedding.embedders import DEFAULT_MODEL, available_models
from embedlab.errors import UserError
from embedlab.jobs import find_active_job, list_jobs, submit_job
from embedlab.map_colours import (
    NOISE,
    categorical_colour,
    colour_spec,
    document_lengths,
    label_colour,
    label_palette,
    metadata_columns,
    natural_key,
    numeric_colour,
)
from embedlab.map_figure import HOVER_TEXT_MAX_POINTS, Highlight, build_map_figure, focus_window, map_revision
from embedlab.map_quality import quality_verdict
from embedlab.nearest_documents import semantic_hits
from embedlab.tasks import find_projection, map_params
from embedlab.text_display import (display_text, hover_texts, marked_to_markdown, marked_to_plain, short_text,
                                   snippet)
from storage.corpora import keyword_search, list_corpora, load_documents
from storage.label_names import get_label_names, parse_label_names, set_label_names
from storage.matrices import list_matrices

SELECTION_KEY = "atlas_selection"
SCOPE_KEY = "atlas_scope"
# Widgets that live in tabs (rendered only while their tab is open) keep their values across tabs.
PERSISTENT = ("atlas_cl_method", "atlas_cl_k", "atlas_cl_min", "atlas_cl_assign", "atlas_cmp_with",
              "atlas_cmp_colour")
# The Map settings popover's widgets. Their values are rebuilt from what is stored (see `settle_map_settings`),
# never taken from a browser tab that may hold only the widgets' defaults (a reload during a job).
MAP_KEYS = ("atlas_method", "atlas_dims", "atlas_nn", "atlas_md", "atlas_seed")
METHODS = ["umap", "pca", "tsne"]
DIMS = ["2-D", "3-D"]
NN_RANGE, MD_RANGE, SEED_RANGE = (2, 100), (0.0, 0.99), (0, 2**31 - 1)
CLUSTER_SCOPE_KEY = "atlas_cl_scope"
# The selection last made with the main map's box or lasso (None once it came from anywhere else).
MAP_SELECTION_KEY = "atlas_map_selection"
SELECTION_EPOCH_KEY = "atlas_selection_epoch"  # counts selections made elsewhere: each one redraws the main map
N_HITS = 25
HUBNESS = "hubness (N_10: in how many top-10 lists)"
EVALUATION_VIEWS = (retrieval_map_view, failure_regions_view, compression_view, ood_explain_view, diagnostics_view)


# --- cached data ----------------------------------------------------------------------------------


class CorpusView:
    """Texts, labels and metadata of a corpus, loaded once per server (read-only)."""

    def __init__(self, docs: list[dict]) -> None:
        self.texts = [d["text"] for d in docs]
        self.doc_ids = [str(d["doc_id"]) for d in docs]
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
def shown_labels_for(path: str, corpus_id: int, content_hash: str,
                     names: tuple[tuple[str, str], ...]) -> list | None:
    """The corpus's labels as the user named them (None stays None); None for a corpus without labels."""
    view = corpus_view(path, corpus_id, content_hash)
    if view.labels is None:
        return None
    named = dict(names)
    return [None if v is None else named.get(str(v)) or v for v in view.labels]


@st.cache_resource(max_entries=8, show_spinner=False)
def hover_for(path: str, corpus_id: int, content_hash: str, with_labels: bool,
              names: tuple[tuple[str, str], ...] = ()) -> list[str]:
    view = corpus_view(path, corpus_id, content_hash)
    return hover_texts(view.texts, shown_labels_for(path, corpus_id, content_hash, names) if with_labels else None)


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
                 n_clusters: int, min_cluster_size: int, assign: bool = False) -> tuple[np.ndarray, dict[int, str]]:
    from embedlab.clusters import assign_noise, cluster, keyword_labels

    coords = shared_matrix(proj_id) if proj_id is not None and method == "hdbscan" else None
    ids = cluster(shared_matrix(emb_id), method=method, n_clusters=n_clusters,
                  min_cluster_size=min_cluster_size, coords=coords)
    if assign and method == "hdbscan" and coords is not None:
        ids = assign_noise(coords, ids)
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


@st.cache_data(max_entries=8, show_spinner="Per-document neighbour overlap and rank displacement…")
def per_document_disagreement(path: str, emb_a: int, emb_b: int) -> dict[str, np.ndarray]:
    from embedlab.compare import neighbour_disagreement

    return neighbour_disagreement(shared_matrix(emb_a), shared_matrix(emb_b), k=10, depth=50)


@st.cache_resource(max_entries=8, show_spinner=False)
def label_colour_for(path: str, corpus_id: int, content_hash: str, names: tuple[tuple[str, str], ...]):
    """Colour by label: the corpus's palette, the user's names."""
    view = corpus_view(path, corpus_id, content_hash)
    return label_colour(view.labels, names=dict(names), palette=corpus_label_palette(path, corpus_id, content_hash))


@st.cache_resource(max_entries=8, show_spinner=False)
def corpus_label_palette(path: str, corpus_id: int, content_hash: str) -> dict[str, str]:
    """One colour per label value of the corpus (every map of it agrees)."""
    view = corpus_view(path, corpus_id, content_hash)
    return label_palette(view.labels) if view.labels is not None else {}


def embedded_models(db, content_hash: str, corpus_id: int) -> list[str]:
    """Models with a finished embedding of this corpus: the offered ones, then any other stored."""
    names = list(available_models())
    names += sorted({m.model for m in list_matrices(db, content_hash, kind="embedding", corpus_id=corpus_id)}
                    - set(names))
    done = []
    for name in names:
        try:
            if find_embedding(db, content_hash, name, corpus_id) is not None:
                done.append(name)
        except UserError:
            continue
    return done


# --- state helpers --------------------------------------------------------------------------------


def set_focus(idx: int | None) -> None:
    st.session_state[FOCUS_KEY] = None if idx is None else int(idx)


def set_selection(indices) -> None:
    """Select documents (from a table, a cluster, the hits, the compare maps, or clear): the main map is redrawn."""
    st.session_state[SELECTION_KEY] = [int(i) for i in indices]
    st.session_state[MAP_SELECTION_KEY] = None
    st.session_state[SELECTION_EPOCH_KEY] = st.session_state.get(SELECTION_EPOCH_KEY, 0) + 1


def select_on_map(indices) -> None:
    """A box or lasso selection on the main map: the chart already shows it (Plotly greys the rest itself)."""
    st.session_state[SELECTION_KEY] = [int(i) for i in indices]
    st.session_state[MAP_SELECTION_KEY] = list(st.session_state[SELECTION_KEY])


def projection_kwargs() -> dict:
    ss = st.session_state
    return {"method": ss["atlas_method"], "n_components": int(ss["atlas_dims"][0]),
            "n_neighbors": int(ss["atlas_nn"]), "min_dist": float(ss["atlas_md"]), "seed": int(ss["atlas_seed"])}


def _clamp(value, lo, hi, cast):
    try:
        return min(max(cast(value), lo), hi)
    except (TypeError, ValueError):
        return None


def map_settings_of(params: dict) -> dict:
    """The Map settings widgets' values for a map's (or a projection job's) parameters; defaults fill gaps."""
    method = params.get("method") if params.get("method") in METHODS else "umap"
    dims = params.get("n_components", 2)
    seed = params.get("seed")
    return {"atlas_method": method, "atlas_dims": f"{dims}-D" if f"{dims}-D" in DIMS else "2-D",
            "atlas_nn": _clamp(params.get("n_neighbors", 15), *NN_RANGE, int) or 15,
            "atlas_md": round(_clamp(params.get("min_dist", 0.1), *MD_RANGE, float) or 0.0, 2),
            "atlas_seed": 42 if seed is None else (_clamp(seed, *SEED_RANGE, int) or 0)}


def valid_map_setting(key: str, value) -> bool:
    if key == "atlas_method":
        return value in METHODS
    if key == "atlas_dims":
        return value in DIMS
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    lo, hi = {"atlas_nn": NN_RANGE, "atlas_md": MD_RANGE, "atlas_seed": SEED_RANGE}[key]
    return lo <= value <= hi


def reference_map_settings(db, corpus_id: int, content_hash: str, model: str, session_id: int) -> dict:
    """What the Map settings show when they must be rebuilt: the map being computed for this corpus and model
    (this session's latest running projection job), else the latest stored map, else UMAP 2-D defaults."""
    running = [j for j in list_jobs(db, session_id=session_id, kind="project", limit=20)
               if j.active and j.params.get("corpus_id") == corpus_id and j.params.get("model") == model]
    if running:
        return map_settings_of(max(running, key=lambda j: j.id).params)
    stored = [m for m in list_matrices(db, content_hash, kind="projection", corpus_id=corpus_id) if m.model == model]
    return map_settings_of(stored[-1].params if stored else {})


def settle_map_settings(db, corpus_id: int, content_hash: str, model: str, session_id: int) -> None:
    """Rebuild the Map settings for a new corpus or model, or wherever a value is missing or invalid (a browser
    tab reloaded while a map was computing can send the widgets' defaults: no method, None dimensions); then
    set every value again, so that each run tells the browser the values (a fresh tab shows them, not the
    widgets' defaults, when the popover opens)."""
    ss = st.session_state
    scope = (corpus_id, model)
    new_scope = ss.get(SCOPE_KEY) != scope
    bad = [k for k in MAP_KEYS if new_scope or not valid_map_setting(k, ss.get(k))]
    if bad:
        ref = reference_map_settings(db, corpus_id, content_hash, model, session_id)
        for k in bad:
            ss[k] = ref[k]
    ss[SCOPE_KEY] = scope
    for k in MAP_KEYS:
        ss[k] = ss[k]


def describe_map(params: dict) -> str:
    text = f"{params.get('method', '?')} {params.get('n_components', 2)}-D"
    if params.get("method") == "umap":
        text += f" · n_neighbors {params.get('n_neighbors')} · min_dist {params.get('min_dist')}"
    if params.get("seed") is not None and params.get("method") != "pca":
        text += f" · seed {params.get('seed')}"
    return text


# --- page -----------------------------------------------------------------------------------------

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

controls = st.columns([3, 3, 3, 2, 2], vertical_alignment="bottom")
names = [c.name for c in corpora]
keep_valid("atlas_corpus", names)
corpus_name = controls[0].selectbox("Corpus", names, key="atlas_corpus")
corpus = next(c for c in corpora if c.name == corpus_name)
if st.session_state.get(SCOPE_KEY, (None,))[0] != corpus.id:
    st.session_state[FOCUS_KEY] = None
    st.session_state[SELECTION_KEY] = []
    st.session_state[SCOPE_KEY] = (corpus.id, None)

models = embedded_models(db, corpus.content_hash, corpus.id)
if not models:
    st.info(f"“{display_text(corpus.name)}” has no embedding yet: embed it to draw its map.")
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
    active_jobs_panel(session_id, kinds=("embed", "tokens", "project"), key="atlas-jobs")
    st.stop()

keep_valid("atlas_model", models)
model = controls[1].selectbox("Model", models, key="atlas_model",
                              help="Models with a finished embedding of this corpus.")
settle_map_settings(db, corpus.id, corpus.content_hash, model, session_id)
emb_meta = find_embedding(db, corpus.content_hash, model, corpus.id)
view = corpus_view(db_path(), corpus.id, corpus.content_hash)
n = view.n
X = shared_matrix(emb_meta.id)
label_names = get_label_names(db, corpus.id) if view.labels is not None else {}
names_key = tuple(sorted(label_names.items()))
shown_labels = shown_labels_for(db_path(), corpus.id, corpus.content_hash, names_key)
palette = corpus_label_palette(db_path(), corpus.id, corpus.content_hash)


def shown_label(value):
    return None if value is None else label_names.get(str(value)) or value


def label_names_editor() -> None:
    """Name the corpus's label values (stored per corpus; colours stay with the values)."""
    values, counts = np.unique(np.array([str(v) for v in view.labels if v is not None], dtype=object),
                               return_counts=True)
    order = sorted(range(len(values)), key=lambda i: natural_key(values[i]))
    if len(order) > 300:  # a label column of near-unique values: name the most frequent
        order = sorted(sorted(order, key=lambda i: -counts[i])[:300], key=lambda i: natural_key(values[i]))
        st.caption(f"{len(values):,} label values: showing the 300 most frequent.")
    frame = pd.DataFrame({"label": [values[i] for i in order], "documents": [int(counts[i]) for i in order],
                          "name": [label_names.get(values[i], "") for i in order]})
    edited = st.data_editor(frame, key=f"atlas-label-names-{corpus.id}-{hash(names_key)}", hide_index=True,
                            disabled=["label", "documents"], width="stretch",
                            height=min(360, 38 + 35 * len(frame)),
                            column_config={"name": st.column_config.TextColumn("name", max_chars=100)})
    if st.button("Save names", key="atlas_label_names_save", type="primary"):
        try:
            kept = {k: v for k, v in label_names.items() if k not in set(frame["label"])}
            set_label_names(db, corpus.id, {**kept, **dict(zip(edited["label"], edited["name"].fillna("")))})
        except UserError as exc:
            st.error(display_text(exc))
        else:
            st.rerun()
    upload = st.file_uploader("Or load names from a file", type=["txt", "csv", "tsv"],
                              key=f"atlas-label-file-{corpus.id}",
                              help="`label,name` rows, or one name per line in label order (as AG News' "
                                   "classes.txt: World, Sports, Business, Sci/Tech for labels 1-4).")
    if upload is not None and st.button("Use the names in this file", key="atlas_label_file_use"):
        try:
            parsed = parse_label_names(upload.getvalue().decode("utf-8", errors="replace"), values.tolist())
            set_label_names(db, corpus.id, {**label_names, **parsed})
        except UserError as exc:
            st.error(display_text(exc))
        else:
            st.rerun()


if view.labels is not None:
    with controls[4].popover("🏷️ Label names", width="stretch",
                             help="Name the label values (AG News: 1 → World…); every map, table and legend "
                                  "shows the names. A label keeps its colour whatever its name."):
        label_names_editor()

with controls[3].popover("⚙️ Map settings", width="stretch"):
    st.segmented_control("Method", METHODS, key="atlas_method", required=True)
    st.segmented_control("Dimensions", DIMS, key="atlas_dims", required=True)
    umap_on = st.session_state["atlas_method"] == "umap"
    st.slider("n_neighbors", *NN_RANGE, key="atlas_nn", disabled=not umap_on,
              help="UMAP: larger values favour the global structure, smaller ones local detail.")
    st.slider("min_dist", *MD_RANGE, step=0.01, key="atlas_md", disabled=not umap_on,
              help="UMAP: how tightly points may pack together.")
    st.number_input("Seed", *SEED_RANGE, step=1, key="atlas_seed",
                    disabled=st.session_state["atlas_method"] == "pca",
                    help="The same seed gives the same map (UMAP then runs single-threaded).")
pkw = projection_kwargs()
proj_meta = find_projection(db, corpus.id, model, **pkw)
coords = shared_matrix(proj_meta.id) if proj_meta is not None else None

# Colour choices: label, cluster, length, metadata columns.
colour_options = (["label"] if view.labels is not None else []) + ["cluster", "length (characters)"]
meta_cols = metadata_columns(view.metas[:2000])
colour_options += [f"meta: {c}" for c in meta_cols]
ood_layers = ood_colour_layers(db, db_path(), session_id, corpus.id, corpus.content_hash)
colour_options += [*ood_layers, HUBNESS]
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
            hits = [{"idx": i, "score": round(s, 4), "label": None if shown_labels is None else shown_labels[i],
                     "text": short_text(view.texts[i], 200)} for i, s in zip(idx, scores)]
        else:
            hits = [{"idx": h["idx"], "score": round(h["score"], 3), "label": shown_label(h["label"]),
                     "text": marked_to_plain(h["snippet"])} for h in keyword_search(db, corpus.id, query, 50)]
    except UserError as exc:
        st.error(display_text(exc))

active_jobs_panel(session_id, kinds=("embed", "tokens", "project"), key="atlas-jobs")

# Colour values.
# HDBSCAN (sklearn) takes minutes on 100k points of a dense map; k-means seconds.
# Cluster settings start from the defaults of this corpus's size (a smaller corpus seen first left a smallest
# cluster of 5 documents: 289 clusters on AG News).
if st.session_state.get(CLUSTER_SCOPE_KEY) != corpus.id:
    st.session_state.update(atlas_cl_method="hdbscan" if n <= 20_000 else "kmeans", atlas_cl_k=10,
                            atlas_cl_min=default_min_cluster_size(n), atlas_cl_assign=True)
    st.session_state[CLUSTER_SCOPE_KEY] = corpus.id
cluster_cfg = {"method": st.session_state["atlas_cl_method"], "k": int(st.session_state["atlas_cl_k"]),
               "min": int(st.session_state["atlas_cl_min"]), "assign": bool(st.session_state["atlas_cl_assign"])}


def current_clusters():
    return clusters_for(db_path(), emb_meta.id, proj_meta.id if proj_meta is not None else None, corpus.id,
                        corpus.content_hash, cluster_cfg["method"], cluster_cfg["k"], cluster_cfg["min"],
                        cluster_cfg["assign"])


if colour_choice == "label":
    colour = label_colour_for(db_path(), corpus.id, corpus.content_hash, names_key)
elif colour_choice == "cluster":
    ids, kw = current_clusters()
    colour = categorical_colour("cluster", [f"{c}: {kw.get(int(c), '')}" if c >= 0 else NOISE for c in ids])
elif colour_choice == "length (characters)":
    colour = numeric_colour("length (characters)", document_lengths(view.texts))
elif colour_choice in ood_layers:   # untested documents have no score: grey
    run_id, detector = ood_layers[colour_choice]
    colour = numeric_colour(f"{detector} OOD score",
                            ood_colour_values(db_path(), run_id, detector, corpus.id, corpus.content_hash, n))
elif colour_choice == HUBNESS:
    colour = numeric_colour("N_10", k_occurrence_of(db_path(), emb_meta.id))
else:
    column = colour_choice.removeprefix("meta: ")
    colour = colour_spec(column, [m.get(column) for m in view.metas])

focus = st.session_state[FOCUS_KEY]
if focus is not None and not 0 <= focus < n:
    focus = st.session_state[FOCUS_KEY] = None
selected = [i for i in st.session_state[SELECTION_KEY] if 0 <= i < n]
with_hover = n <= HOVER_TEXT_MAX_POINTS
hover_labels = colour.kind == "categorical" and colour_choice != "label" and view.labels is not None
hover = hover_for(db_path(), corpus.id, corpus.content_hash, hover_labels, names_key) if with_hover else None


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
        doc = {**doc, "label": shown_label(doc.get("label"))}
        rows = neighbour_panel(X=X, coords=coords, focus=focus, doc=doc, texts=view.texts, labels=shown_labels,
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
            st.markdown(f"**No map yet** for {display_text(model)} with {display_text(describe_map(pkw))}.")
            if job is not None:
                st.caption("Computing the map… it appears here when done.")
            else:
                st.caption("A map of a few thousand documents takes seconds; of 100k, a few minutes (UMAP).")
                if st.button("Compute map", type="primary", key="atlas_compute"):
                    submit_job(db_path(), "project", params, session_id=session_id)
                    st.rerun()
            stored = [m for m in list_matrices(db, corpus.content_hash, kind="projection", corpus_id=corpus.id)
                      if m.model == model]
            if stored:
                st.caption("Other maps stored for this model (other settings, or an older engine version): "
                           + display_text("; ".join(describe_map(m.params) for m in stored)))
    else:
        window = None
        if focus is not None and st.session_state.get("atlas_zoom_focus", True):
            near = [r["idx"] for r in neighbour_rows_shown if not r["far on map"]]
            window = focus_window(coords, [focus, *near])
        map_kwargs = {"hover": hover, "labels": shown_labels, "highlights": highlights(neighbour_idx),
                      "height": 640, "uirevision": map_revision(corpus.id, model, proj_meta.id), "window": window}
        fig = None
        if selected and st.session_state.get(MAP_SELECTION_KEY) == selected:
            # Selected on this map: if nothing else changed, send the same figure as before, so that Streamlit
            # keeps the chart, with the user's zoom and Plotly's own display of the selection.
            bare = build_map_figure(coords, colour, selected=None, **map_kwargs)
            bare.update_layout(selectionrevision=st.session_state.get(SELECTION_EPOCH_KEY, 0))
            if figure_digest(bare)[0] == shown_digest("atlas_map"):
                fig = bare
        if fig is None:
            fig = build_map_figure(coords, colour, selected=selected, **map_kwargs)
            # a selection made elsewhere (or cleared) changes the figure, so the chart drops its own selection
            fig.update_layout(selectionrevision=st.session_state.get(SELECTION_EPOCH_KEY, 0))
        atlas_map(fig, key="atlas_map", n_points=n, on_select=select_on_map, on_click=set_focus,
                  hover_snippets=with_hover)
        c1, c2, c3 = st.columns([2, 4, 1.4], vertical_alignment="center")
        if coords.shape[1] == 2:
            c1.toggle("Zoom to focus", value=True, key="atlas_zoom_focus",
                      help="A click redraws the map; with this on, the view frames the focused document and its "
                           "neighbours, otherwise the whole map.")
        if selected:
            c2.caption(f"{len(selected):,} documents selected (see the Selection tab); the rest are greyed.")
            c3.button("Clear selection", key="atlas_clear_sel", on_click=lambda: set_selection([]))

tabs = st.tabs(ATLAS_TABS, key=ATLAS_TAB_KEY, on_change="rerun")
t_hits, t_sel, t_clusters, t_bookmarks, t_quality, t_compare, *evaluation_tabs = tabs


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
                            corpus_name=corpus.name, on_focus=set_focus, label_names=label_names)

if t_clusters.open:
    with t_clusters:
        c1, c2, c3, c4 = st.columns([2, 2, 2, 2], vertical_alignment="bottom")
        c1.segmented_control("Method", ["hdbscan", "kmeans"], key="atlas_cl_method", required=True,
                             help="HDBSCAN finds the islands of the map (noise allowed); k-means partitions the "
                                  "embedding space into k groups.")
        if st.session_state["atlas_cl_method"] == "hdbscan" and n > 20_000:
            st.caption(f"HDBSCAN on {n:,} points can take minutes (once: the result is cached).")
        if st.session_state["atlas_cl_method"] == "kmeans":
            c2.slider("k", 2, 50, key="atlas_cl_k")
        else:
            c2.number_input("Smallest cluster", 2, max(2, n), key="atlas_cl_min",
                            help=f"Default for {n:,} documents: {default_min_cluster_size(n):,} (1.5 %).")
            c3.toggle("Noise joins the nearest cluster", key="atlas_cl_assign",
                      help="HDBSCAN leaves the thin shores between dense areas of the map as noise; with this "
                           "on, a noise point close to a cluster (within 3 times the usual spacing of "
                           "clustered points) joins it.")
        c4.button("Colour the map by cluster", key="atlas_cl_colour",
                  on_click=lambda: st.session_state.update(atlas_colour="cluster"))
        cluster_cfg.update(method=st.session_state["atlas_cl_method"], k=int(st.session_state["atlas_cl_k"]),
                           min=int(st.session_state["atlas_cl_min"]),
                           assign=bool(st.session_state["atlas_cl_assign"]))
        ids, kw = current_clusters()
        table = cluster_table(ids, kw)
        noise = sum(r["size"] for r in table if r["cluster"] == -1)
        st.caption(f"{sum(r['cluster'] >= 0 for r in table)} clusters"
                   + (f", {noise:,} document{'s' if noise != 1 else ''} as noise" if noise else "")
                   + ". Click a cluster to select its documents on the map.")
        key = f"atlas-cl-table-{cluster_cfg['method']}-{cluster_cfg['k']}-{cluster_cfg['min']}-{cluster_cfg['assign']}"
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
        bookmarks_panel(db=db, session_id=session_id, corpus_id=corpus.id, texts=view.texts, labels=shown_labels,
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
            st.caption(f"Measured on a random sample of {sample:,} documents · map: "
                       f"{display_text(describe_map(proj_meta.params))}")

def side_by_side(doc: int, emb_b_id: int, name_a: str, name_b: str) -> None:
    """The 10 nearest neighbours of `doc` under both models, side by side (best first); ✓ marks one that the
    other model has among its 10 too."""
    from embedlab.compare import neighbour_lists

    rows = neighbour_lists(X, shared_matrix(emb_b_id), doc, k=10)
    st.markdown(f"**Document #{doc}**" + (f" · *{display_text(shown_labels[doc])}*"
                                          if shown_labels is not None and shown_labels[doc] is not None else "")
                + f": {display_text(short_text(view.texts[doc], 300))}")

    def one_side(prefix: str) -> pd.DataFrame:
        return pd.DataFrame({
            "rank": [r["rank"] for r in rows],
            "both": ["✓" if r[f"{prefix}_shared"] else "" for r in rows],
            "cosine": [r[f"{prefix}_cosine"] for r in rows],
            "label": [None if shown_labels is None else shown_labels[r[f"{prefix}_idx"]] for r in rows],
            "text": [short_text(view.texts[r[f"{prefix}_idx"]], 200) for r in rows],
            "doc": [r[f"{prefix}_idx"] for r in rows]})

    config = {"both": st.column_config.TextColumn("both", width="small",
                                                  help="✓: the other model has it among its 10 nearest too"),
              "cosine": st.column_config.NumberColumn("cosine", format="%.3f", width="small"),
              "text": st.column_config.TextColumn("text", width="large"),
              "doc": st.column_config.NumberColumn("doc", format="%d", width="small")}
    left_col, right_col = st.columns(2)
    for col, prefix, name in ((left_col, "a", name_a), (right_col, "b", name_b)):
        with col:
            st.markdown(f"Nearest under **{display_text(name)}**")
            st.dataframe(one_side(prefix), hide_index=True, width="stretch", column_config=config,
                         column_order=("both", "cosine", "label", "text", "doc"),
                         key=f"atlas-cmp-lists-{prefix}-{doc}-{emb_b_id}")


if t_compare.open:
    with t_compare:
        others = [m for m in models if m != model]
        stored_maps = [m for m in list_matrices(db, corpus.content_hash, kind="projection", corpus_id=corpus.id)
                       if m.model == model and (proj_meta is None or m.id != proj_meta.id)]
        options = [f"model: {m}" for m in others] + [f"map: {describe_map(m.params)} #{m.id}" for m in stored_maps]
        not_embedded = [m for m in available_models() if m not in models]
        if not options:
            st.caption("Compare needs a second embedding of this corpus (or a second stored map).")
        else:
            keep_valid("atlas_cmp_with", options)
            p1, p2 = st.columns([3, 2], vertical_alignment="bottom")
            with_what = p1.selectbox("Compare with", options, key="atlas_cmp_with")
            colour_modes = ["neighbour overlap", "rank displacement", "the map's colour"]
            if view.labels is not None:
                colour_modes.insert(0, "label")
            keep_valid("atlas_cmp_colour", colour_modes)
            cmp_mode = p2.selectbox("Colour both maps by", colour_modes, key="atlas_cmp_colour",
                                    help="label: one colour per label, as on every map; neighbour overlap and "
                                         "rank displacement: how much the two models agree on each document's "
                                         "neighbours (two models only)")
        if not_embedded:
            e1, e2 = st.columns([3, 1], vertical_alignment="bottom")
            e1.caption(f"Embed this corpus with {display_text(', '.join(not_embedded))} to compare models.")
            for m in not_embedded:
                params = {"corpus_id": corpus.id, "model": m}
                if not find_active_job(db, "embed", params) and e2.button(f"Embed with {display_text(m)}",
                                                                          key=f"atlas-embed-{m}"):
                    submit_job(db_path(), "embed", params, session_id=session_id)
                    st.rerun()
        if options and coords is None:
            st.caption("Compute the map first.")
        if options and coords is not None:
            agreement = None
            emb_b = None
            if with_what.startswith("model: "):
                other = with_what.removeprefix("model: ")
                emb_b = find_embedding(db, corpus.content_hash, other, corpus.id)
                proj_b = find_projection(db, corpus.id, other, **pkw)
                cka, mean_ov, sample = space_agreement(db_path(), emb_meta.id, emb_b.id)
                m1, m2, m3 = st.columns([1, 1, 3])
                m1.metric("Linear CKA", f"{cka:.3f}", help="Similarity of the two spaces (Kornblith et al. 2019), "
                                                           "1 = the same up to rotation and scale")
                m2.metric("Neighbour overlap@10", f"{mean_ov:.0%}",
                          help="Share of a document's 10 nearest neighbours that both models agree on")
                m3.caption("Estimated on a sample of 2,000 documents." if sample else "Over all documents.")
                if n <= 20_000 or st.session_state.get("atlas_cmp_full") == (emb_meta.id, emb_b.id):
                    agreement = per_document_disagreement(db_path(), emb_meta.id, emb_b.id)
                elif st.button(f"Compute the per-document agreement for all {n:,} documents (minutes)",
                               key="atlas_cmp_full_btn"):
                    st.session_state["atlas_cmp_full"] = (emb_meta.id, emb_b.id)
                    st.rerun()
                coords_b = shared_matrix(proj_b.id) if proj_b is not None else None
                title_b = f"{other} · {describe_map(pkw)}"
                rev_b = map_revision("cmp-b", corpus.id, other, proj_b.id if proj_b is not None else None)
            else:
                other_id = int(with_what.rsplit("#", 1)[1])
                coords_b = shared_matrix(other_id)
                proj_b = next(m for m in stored_maps if m.id == other_id)
                title_b = f"{model} · {describe_map(proj_b.params)}"
                other = model
                rev_b = map_revision("cmp-b", corpus.id, model, other_id)
            if cmp_mode == "label":
                cmp_colour = label_colour_for(db_path(), corpus.id, corpus.content_hash, names_key)
            elif cmp_mode == "neighbour overlap" and agreement is not None:
                cmp_colour = numeric_colour("neighbour overlap@10", agreement["overlap"])
            elif cmp_mode == "rank displacement" and agreement is not None:
                cmp_colour = numeric_colour("rank displacement", agreement["displacement"])
            else:
                cmp_colour = colour
                if cmp_mode != "the map's colour":
                    st.caption(f"“{cmp_mode}” compares two models' neighbours: the maps show the map's colour.")
            cmp_hover = hover_for(db_path(), corpus.id, corpus.content_hash,
                                  view.labels is not None and cmp_colour.kind == "categorical"
                                  and cmp_mode != "label", names_key) if with_hover else None
            a, b = st.columns(2)
            with a:
                st.markdown(f"**{display_text(model)}** · {display_text(describe_map(proj_meta.params))}")
                fig_a = build_map_figure(coords, cmp_colour, hover=cmp_hover, labels=shown_labels,
                                         selected=selected, highlights=highlights([]), height=460,
                                         uirevision=map_revision("cmp-a", corpus.id, model, proj_meta.id))
                atlas_map(fig_a, key="atlas_cmp_a", n_points=n, on_select=set_selection, on_click=set_focus,
                          hover_snippets=with_hover)
            with b:
                st.markdown(f"**{display_text(title_b)}**")
                if coords_b is None:
                    params = {"corpus_id": corpus.id, "model": other, **pkw}
                    if find_active_job(db, "project", params):
                        st.caption("Computing this map…")
                    elif st.button(f"Compute the map of {display_text(other)}", key="atlas_cmp_compute"):
                        submit_job(db_path(), "project", params, session_id=session_id)
                        st.rerun()
                else:
                    fig_b = build_map_figure(coords_b, cmp_colour, hover=cmp_hover, labels=shown_labels,
                                             selected=selected, highlights=highlights([]), height=460,
                                             uirevision=rev_b)
                    atlas_map(fig_b, key="atlas_cmp_b", n_points=n, on_select=set_selection,
                              on_click=set_focus, hover_snippets=with_hover)
            st.caption("Selections are linked: select in either map and the same documents stay coloured in both. "
                       "Each map frames the bulk of its points; a few far outliers stay reachable by zooming out "
                       "(double-click resets the view).")
            if agreement is not None:
                from embedlab.compare import disagreement_order

                order = disagreement_order(agreement["displacement"], agreement["overlap"], agreement["score"])[:30]
                low = [{"idx": int(i), "displacement": float(agreement["displacement"][i]),
                        "overlap@10": float(agreement["overlap"][i]),
                        "label": None if shown_labels is None else shown_labels[i],
                        "text": short_text(view.texts[i], 200)} for i in order]
                st.markdown("**Where the models disagree most**: ranked by how far each document's 10 nearest "
                            "neighbours move between the two models (mean rank displacement within the top 50; "
                            "1 = none of them is within the other model's top 50). Click a row to compare its "
                            "two neighbour lists.")
                key = f"atlas-cmp-low-{emb_meta.id}-{with_what}"
                low_idx = [r["idx"] for r in low]

                def pick_disagreement() -> None:
                    state = st.session_state.get(key)
                    picked = list(state.selection.rows) if state is not None else []
                    if picked:
                        st.session_state["atlas_cmp_doc"] = low_idx[picked[0]]
                        set_focus(low_idx[picked[0]])

                st.dataframe(pd.DataFrame(low), key=key, on_select=pick_disagreement,
                             selection_mode="single-row", hide_index=True, width="stretch", height=320,
                             column_config={"idx": st.column_config.NumberColumn("doc", format="%d", width="small"),
                                            "displacement": st.column_config.ProgressColumn(
                                                "rank displacement", min_value=0.0, max_value=1.0,
                                                format="%.2f"),
                                            "overlap@10": st.column_config.ProgressColumn(
                                                "overlap@10", min_value=0.0, max_value=1.0, format="%.1f"),
                                            "text": st.column_config.TextColumn("text", width="large")})
            if emb_b is not None:
                doc = focus if focus is not None else st.session_state.get("atlas_cmp_doc")
                if doc is None and agreement is not None and n > 1:
                    doc = low_idx[0]
                if doc is not None and 0 <= doc < n:
                    side_by_side(int(doc), emb_b.id, model, other)


# --- evaluation on the map: each view draws in its own tab, from the same context -------------------------------
ctx = AtlasContext(db=db, db_path=db_path(), session_id=session_id, corpus=corpus, model=model, emb_id=emb_meta.id,
                   X=X, coords=coords, proj_id=proj_meta.id if proj_meta is not None else None, texts=view.texts,
                   doc_ids=view.doc_ids, labels=view.labels, shown_labels=shown_labels,
                   hover=hover_for(db_path(), corpus.id, corpus.content_hash, view.labels is not None, names_key)
                   if with_hover else None, models=models, focus=focus, set_focus=set_focus,
                   set_selection=set_selection, clusters=current_clusters,
                   encode=lambda texts: embedding_space(db_path(), corpus.id, corpus.content_hash, model).encode(
                       list(texts)))
for tab, render in zip(evaluation_tabs, EVALUATION_VIEWS):
    if tab.open:
        with tab:
            render(ctx)
