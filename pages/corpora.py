"""Corpora: upload or pick a sample, preview, choose columns, ingest; embed with live progress."""
from __future__ import annotations

from components.page_setup import ensure_app_shell

ensure_app_shell()  # first: a deep link shows the real navigation before the page's imports run

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from components.atlas_state import AtlasView, open_atlas
from components.job_progress import active_jobs_panel
from components.state import get_workspace, require_session
from components.vectors_form import ingest_with_vectors, vectors_download, vectors_inputs
from embedlab.datasets import SAMPLES
from embedlab.embedding.embedders import DEFAULT_MODEL, available_models
from embedlab.errors import UserError
from embedlab.ingest import MAX_META_COLS, ColumnGuess, guess_columns, load_corpus_bytes, read_table
from embedlab.text_display import display_text, html_text
from embedlab.workspace import Workspace

st.title("Corpora")
ws = get_workspace()
session_id, session_name = require_session()

add_tab, sample_tab = st.tabs(["Upload a file", "Bundled samples"])

with add_tab:
    upload = st.file_uploader("CSV, TSV, JSONL, JSON, Parquet, TXT (one document a line) or ZIP of .txt files",
                              type=["csv", "tsv", "jsonl", "json", "parquet", "txt", "zip", "gz"],
                              key="corpora_upload")   # a stable identity: an upload never lands on a stale widget
    if upload is None:
        st.empty()   # takes the slot of the removed file's error or preview now, not when this run ends
    else:
        data = upload.getvalue()
        encoding = st.text_input("Encoding", key="corpora_encoding", placeholder="detected",
                                 help="Leave empty to detect it (UTF-8, UTF-16/32 with a BOM). Name a legacy "
                                      "encoding that detection will not guess: cp1252, latin-1, shift_jis…"
                                 ).strip() or None
        table = guess = None
        try:
            table = read_table(data, upload.name, encoding=encoding)
            guess = guess_columns(table, file=upload.name)   # the CLI's ingest guesses the same columns
        except UserError as exc:
            if table is None or table.empty:
                st.error(display_text(exc))
            else:      # no usable text column was found: say why, and let the user pick one
                st.warning(display_text(exc))
                guess = ColumnGuess(text=table.columns[0], label=None, id=None)
        if guess is not None:
            st.caption(f"{len(table):,} rows · {len(table.columns)} columns · first rows:")
            st.dataframe(table.head(20), width="stretch", hide_index=True)
            columns = list(table.columns)
            none = "(none)"
            c1, c2, c3 = st.columns(3)
            text_col = c1.selectbox("Text column", columns, index=columns.index(guess.text))
            label_guess = guess.label or none
            label_col = c2.selectbox("Label column", [none, *columns], index=([none, *columns]).index(label_guess))
            id_guess = guess.id or none
            id_col = c3.selectbox("Id column", [none, *columns], index=([none, *columns]).index(id_guess))
            vectors = vectors_inputs(table)
            rest = [c for c in columns if c not in (text_col, label_col, id_col, vectors and vectors.column)]
            meta_cols = st.multiselect("Metadata columns", rest, default=rest[:MAX_META_COLS],
                                       max_selections=MAX_META_COLS,
                                       help=f"At most {MAX_META_COLS}; the first {MAX_META_COLS} are picked when "
                                            "the file has more.")
            name = st.text_input("Corpus name", value=upload.name.rsplit(".", 1)[0])
            map_model = vectors.model if vectors else DEFAULT_MODEL
            then_map = st.checkbox(f"Map right after ingesting (with {display_text(map_model)})" if vectors else
                                   f"Embed with {DEFAULT_MODEL} and map right after ingesting", value=True,
                                   key="ingest_then_map", help="One job: embedding (unless given), then the UMAP "
                                   "map. Untick to pick another model below.")
            # One ingestion per upload and choice of columns: a double click reruns the page twice, and the second
            # run finds the first one's corpus instead of making "papers (2)".
            request = Workspace.ingest_request_key(data, (name, text_col, label_col, id_col, meta_cols, encoding,
                                                          vectors and vectors.request_key()))
            ingested = st.session_state.setdefault("corpora_ingested", {})
            clicked = st.button("Ingest and map" if then_map else "Ingest", type="primary")
            if clicked and ingested.get(request) in {c.name for c in ws.corpora(session_id)}:
                st.info(f"Already ingested as {display_text(repr(ingested[request]))}: to ingest the file again, "
                        "give another corpus name.")
            elif clicked:
                picked = dict(name=name, text_col=text_col, label_col=None if label_col == none else label_col,
                              id_col=None if id_col == none else id_col, meta_cols=meta_cols, encoding=encoding)
                loaded = None
                try:
                    if vectors:
                        info, loaded = ingest_with_vectors(ws, session_id, data, upload.name, vectors, **picked)
                        corpus = loaded.corpus
                    else:
                        corpus = load_corpus_bytes(data, upload.name, **picked)
                        info = ws.save_corpus(session_id, corpus)
                    ingested[request] = info.name      # before any other st call: a second click's rerun sees it
                except UserError as exc:
                    st.error(display_text(exc))
                else:
                    st.session_state["corpora_chosen"] = info.name
                    if then_map:
                        ws.embed_and_map(info.id, map_model, session_id=session_id)
                    st.success(f"Ingested {info.n_docs:,} documents as {display_text(repr(info.name))}"
                               + (f" with {loaded.dim}-dimensional vectors as {display_text(map_model)}" if loaded
                                  else "") + "."
                               + (" Embedding and mapping it now (progress below)." if then_map else ""))
                    if loaded is not None and loaded.zero_rows:
                        st.warning(display_text(loaded.zero_note()))
                    if corpus.skipped:
                        reasons = pd.DataFrame([{"row": s.row, "reason": s.reason} for s in corpus.skipped])
                        st.warning(f"Skipped {len(corpus.skipped)} documents:")
                        st.dataframe(reasons.head(200), hide_index=True)

with sample_tab:
    for name, info in SAMPLES.items():
        c1, c2 = st.columns([4, 1])
        c1.markdown(f"**{name}** — {info.description}  \n*Licence: {info.licence}*")
        if c2.button("Load", key=f"sample-{name}"):
            corpus = ws.load_sample(session_id, name)
            st.success(f"{display_text(repr(corpus.name))} is in the session ({corpus.n_docs:,} documents).")

st.divider()
st.subheader(f"Corpora of session “{display_text(session_name)}”")
active_jobs_panel(session_id, key="corpora-jobs")
corpora = ws.corpora(session_id)
if not corpora:
    st.info("No corpus yet: upload a file or load a bundled sample.")
    st.stop()

st.dataframe(pd.DataFrame(ws.corpora_table(session_id, available_models())), width="stretch", hide_index=True)

names = [c.name for c in corpora]
if st.session_state.get("corpora_chosen") not in names:
    st.session_state.pop("corpora_chosen", None)
chosen = st.selectbox("Corpus", names, key="corpora_chosen")
corpus = next(c for c in corpora if c.name == chosen)
left, right = st.columns(2)
with left:
    counts = ws.label_counts(corpus.id)   # most common first
    if counts:
        shown = dict(list(counts.items())[:30])
        fig = go.Figure(go.Bar(x=list(shown.values()), y=[html_text(v) for v in shown], orientation="h"))
        fig.update_layout(height=max(250, 18 * len(shown)), margin=dict(l=0, r=0, t=30, b=0),
                          title=f"{len(counts)} labels" + (" (top 30)" if len(counts) > 30 else ""),
                          yaxis=dict(autorange="reversed"))
        st.plotly_chart(fig, width="stretch")
    else:
        st.caption("This corpus has no labels.")
with right:
    models = available_models() + ws.imported_models(corpus)
    model = st.selectbox("Model", models, index=models.index(DEFAULT_MODEL),
                         help=f"{DEFAULT_MODEL} is bundled (offline); tfidf-svd needs no weights.")
    custom = st.text_input("…or any sentence-transformers name or local path", "")
    model = custom.strip() or model
    try:
        status = ws.model_status(corpus, model)
    except UserError as exc:
        st.error(display_text(exc))
        status = None
    if status is not None:
        if status.embedded:
            st.success(f"Embedded with {display_text(model)}"
                       + (f" (backend {display_text(status.backend)})." if status.backend else "."))
            vectors_download(ws, corpus, model)
        if status.mapped:
            if st.button("Open the map on the Atlas", type="primary", icon=":material/map:"):
                open_atlas(AtlasView(corpus=corpus.name))
        elif status.working:
            st.info("Working on it: see the progress above.")
        else:
            c1, c2 = st.columns(2)
            if c1.button("Map it" if status.embedded else "Embed and map", type="primary",
                         help="One job: embedding (unless stored), then the UMAP map."):
                ws.embed_and_map(corpus.id, model, session_id=session_id)
                st.rerun()
            if not status.embedded and c2.button("Embed only"):
                ws.embed(corpus.id, model, session_id=session_id)
                st.rerun()
    with st.expander("Delete this corpus"):
        confirm = st.text_input("Type the corpus name to confirm", key="delete-corpus-confirm")
        if st.button("Delete corpus", disabled=confirm != corpus.name):
            ws.delete_corpus(corpus.id)
            st.rerun()
