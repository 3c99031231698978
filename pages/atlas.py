"""Atlas: the map of a corpus (UMAP, PCA or t-SNE), search, selection, neighbours, clusters, bookmarks,
the map's quality, two embeddings side by side, and the evaluation views on the map. Layout and wiring: the data
comes from `components.data`, the view's state from `components.atlas_state`, each tab from its component."""
from __future__ import annotations

from components.page_setup import ensure_app_shell

ensure_app_shell()  # first: a deep link shows the real navigation before the page's imports run

import streamlit as st

from components.atlas_clusters import CLUSTER_KEYS, clusters_on_screen, clusters_view, settle_cluster_settings
from components.atlas_colour import LABEL, colour_choices, colour_of
from components.atlas_context import AtlasContext
from components.atlas_label_names import label_names_popover
from components.atlas_main_map import focus_column, highlighter, main_map, no_map_yet, quality_view
from components.atlas_map_settings import map_settings_popover, settle_map_settings
from components.atlas_search import hits_view, search_row
from components.atlas_state import (ATLAS_TABS, COLOUR_KEY, CORPUS_KEY, FOCUS_KEY, MODEL_KEY, SELECTION_KEY,
                                    TAB_KEY, set_focus, set_selection, settle_colour, settle_corpus, settle_model)
from components.compare_view import COLOUR_KEY as CMP_COLOUR_KEY
from components.compare_view import WITH_KEY as CMP_WITH_KEY
from components.compare_view import compare_view
from components.compression_view import compression_view
from components.data import (corpus_view, embedding_space, hover_for, shared_matrix, shown_labels_for)
from components.diagnostics_view import diagnostics_view
from components.failure_regions_view import failure_regions_view
from components.job_progress import active_jobs_panel
from components.judge_view import judgments_view
from components.ood_explain_view import ood_explain_view
from components.retrieval_map_view import retrieval_map_view
from components.selection_table import bookmarks_view, selection_view
from components.state import get_workspace, require_session
from embedlab.embedding.embedders import DEFAULT_MODEL, available_models
from embedlab.map_figure import HOVER_TEXT_MAX_POINTS
from embedlab.tasks import map_params
from embedlab.text_display import display_text

# Widgets that live in tabs (rendered only while their tab is open) keep their values across tabs.
PERSISTENT = (*CLUSTER_KEYS, CMP_WITH_KEY, CMP_COLOUR_KEY)
JOB_KINDS = ("embed", "tokens", "project")

st.title("Atlas")
ws = get_workspace()
session_id, session_name = require_session()
for _k in PERSISTENT:
    if _k in st.session_state:
        st.session_state[_k] = st.session_state[_k]
st.session_state.setdefault(FOCUS_KEY, None)
st.session_state.setdefault(SELECTION_KEY, [])

corpora = ws.corpora(session_id)
if not corpora:
    st.info("No corpus in this session yet: add one on the Corpora page.")
    st.page_link("pages/corpora.py", label="Go to Corpora", icon="📚")
    st.stop()

# --- corpus, model, colour, map settings, label names ------------------------------------------------------------
controls = st.columns([3, 3, 3, 2, 2], vertical_alignment="bottom")
corpus = settle_corpus(corpora)
controls[0].selectbox("Corpus", [c.name for c in corpora], key=CORPUS_KEY)

models = ws.embedded_models(corpus)
if not models:
    st.info(f"“{display_text(corpus.name)}” has no embedding yet: embed it to draw its map.")
    offered = available_models()
    model_to_embed = st.selectbox("Model", offered, index=offered.index(DEFAULT_MODEL), key="atlas_embed_model",
                                  help=f"{DEFAULT_MODEL} is bundled (offline); tfidf-svd needs no weights.")
    params = map_params(corpus.id, model_to_embed)
    if ws.active_job("project", params) or ws.active_job("embed", {"corpus_id": corpus.id, "model": model_to_embed}):
        st.caption("Embedding in progress…")
    elif st.button("Embed and map", type="primary", key="atlas_embed"):
        ws.submit("project", params, session_id=session_id)
        st.rerun()
    active_jobs_panel(session_id, kinds=JOB_KINDS, key="atlas-jobs")
    st.stop()

settle_model(corpus, models)
model = controls[1].selectbox("Model", models, key=MODEL_KEY, help="Models with a finished embedding of this corpus.")
settle_map_settings(ws, corpus, model, session_id)
emb_meta = ws.embedding(corpus, model)
view = corpus_view(corpus)
n = view.n
X = shared_matrix(emb_meta.id)
label_names = ws.label_names(corpus.id) if view.labels is not None else {}
names_key = tuple(sorted(label_names.items()))
shown_labels = shown_labels_for(corpus, names_key)
if view.labels is not None:
    label_names_popover(controls[4], ws, corpus.id, view.labels, label_names)
pkw = map_settings_popover(controls[3])
proj_meta = ws.projection(corpus.id, model, **pkw)
coords = shared_matrix(proj_meta.id) if proj_meta is not None else None

colour_options = colour_choices(session_id, corpus)
settle_colour(corpus, colour_options)
colour_choice = controls[2].selectbox("Colour by", colour_options, key=COLOUR_KEY)

search = search_row(ws, corpus, emb_meta.id, model, shown_labels, label_names, view.texts)
active_jobs_panel(session_id, kinds=JOB_KINDS, key="atlas-jobs")

settle_cluster_settings(corpus.id, n)


def current_clusters():
    return clusters_on_screen(corpus, emb_meta.id, proj_meta.id if proj_meta is not None else None)


colour = colour_of(colour_choice, session_id=session_id, corpus=corpus, emb_id=emb_meta.id, names=names_key,
                   clusters=current_clusters)
focus = st.session_state[FOCUS_KEY]
if focus is not None and not 0 <= focus < n:
    focus = st.session_state[FOCUS_KEY] = None
selected = [i for i in st.session_state[SELECTION_KEY] if 0 <= i < n]
with_hover = n <= HOVER_TEXT_MAX_POINTS
hover_labels = colour.kind == "categorical" and colour_choice != LABEL and view.labels is not None
ctx = AtlasContext(
    ws=ws, session_id=session_id, corpus=corpus, model=model, emb_id=emb_meta.id, X=X, coords=coords,
    proj_id=proj_meta.id if proj_meta is not None else None, proj_params=proj_meta.params if proj_meta else None,
    map_params=pkw, texts=view.texts, doc_ids=view.doc_ids, labels=view.labels, shown_labels=shown_labels,
    label_names=label_names, hover=hover_for(corpus, view.labels is not None, names_key) if with_hover else None,
    models=models, focus=focus, selected=selected, colour=colour, set_focus=set_focus, set_selection=set_selection,
    clusters=current_clusters, encode=lambda texts: embedding_space(corpus, model).encode(list(texts)),
    highlights=highlighter(view.texts, [h["idx"] for h in search.hits], focus))

# --- the map and the focused document ----------------------------------------------------------------------------
left, right = st.columns([2, 1], gap="medium")
with right:
    neighbour_rows = focus_column(ctx)
with left:
    if coords is None:
        no_map_yet(ctx)
    else:
        main_map(ctx, neighbour_rows, hover_for(corpus, hover_labels, names_key) if with_hover else None)


# --- the tabs: each draws from the same context ------------------------------------------------------------------
TAB_VIEWS = (lambda c: hits_view(c, search), selection_view, clusters_view, bookmarks_view, judgments_view,
             quality_view, compare_view, retrieval_map_view, failure_regions_view, compression_view, ood_explain_view,
             diagnostics_view)
for tab, draw in zip(st.tabs(ATLAS_TABS, key=TAB_KEY, on_change="rerun"), TAB_VIEWS):
    if tab.open:
        with tab:
            draw(ctx)
