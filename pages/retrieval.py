"""Retrieval lab: compare retrieval methods on BEIR queries (shared folder or ZIP upload), on queries drawn from a
corpus's labels, on the user's own judgments ("My judgments", with the condensed-list variant), or on one typed
query; every comparison is a stored run with its table, trade-off plots and a per-query drill-down of two methods
side by side, whose results are judged in place."""
from __future__ import annotations

from components.page_setup import ensure_app_shell

ensure_app_shell()  # first: a deep link shows the real navigation before the page's imports run

from pathlib import Path

import pandas as pd
import streamlit as st

from components.data import beir_summary_of
from components.job_progress import active_jobs_panel
from components.judge_lab import condensed_table, judgments_source, run_judging, worst_query_button
from components.map_links import open_on_atlas_button, retrieval_on_atlas
from components.metric_table import metric_table, tradeoff_figure
from components.param_form import changed_params, param_widget
from components.router_panel import router_panel
from components.run_history import run_history
from components.share_link import shown_run_id
from components.state import get_workspace, require_session
from embedlab.datasets import list_datasets
from embedlab.embedding.embedders import DEFAULT_MODEL, available_models
from embedlab.errors import UserError
from embedlab.retrieval import list_methods, method_info
from embedlab.retrieval.beir import beir_splits, dataset_label, store_beir_upload
from embedlab.retrieval.params import validate_params
from embedlab.retrieval.run_details import disagreements, labels_note, ranked_list_rows
from embedlab.retrieval.typed_query import rank_typed_query
from embedlab.run_tables import build_time_note
from embedlab.runs import RetrievalRun
from embedlab.text_display import display_text
from embedlab.workspace import embed_params

SOURCES = {"beir": "BEIR dataset", "zip": "BEIR ZIP upload", "labels": "Labels of a corpus",
           "judgments": "My judgments", "typed": "A typed query"}
MATRYOSHKA = "matryoshka-N"
DEFAULT_PICK = ["bm25", "dense"]
TEXT_COLUMN = st.column_config.TextColumn("text", width="large")


def method_picker() -> tuple[list[str], dict[str, dict]]:
    """Chosen concrete method names and the parameters changed from the registry's defaults."""
    infos = {m.name: m for m in list_methods()}
    picked = st.multiselect("Methods", list(infos), default=[n for n in DEFAULT_PICK if n in infos],
                            key="retr_methods", help="Every method of the registry; pick two or more to compare.")
    names, params = [], {}
    for family in picked:
        info = infos[family]
        with st.expander(f"**{family}** — {info.description}"):
            hidden = set()
            name = family
            if family == MATRYOSHKA:
                dims = param_widget(info.param("dims"), key="retr_p_matryoshka_N", label="N (dimensions kept)")
                name, hidden = f"matryoshka-{int(dims)}", {"dims"}
            changed = changed_params(info.params, key_prefix=f"retr_p_{family}_", skip=hidden)
        names.append(name)
        if changed:
            params[name] = changed
    return names, params


def show_ranked_lists(results: dict[str, list], docs: dict[int, dict]) -> None:
    names = list(results)
    for start in range(0, len(names), 3):
        cols = st.columns(min(3, len(names) - start))
        for col, name in zip(cols, names[start:start + 3]):
            rows = [{"rank": r, "doc_id": doc_id, "score": round(score, 4), "label": docs.get(idx, {}).get("label"),
                     "text": (docs.get(idx, {}).get("text") or "")[:300]}
                    for r, (idx, doc_id, score) in enumerate(results[name], start=1)]
            col.markdown(f"**{display_text(name)}**")
            col.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                          column_config={"text": TEXT_COLUMN})


def show_run(run: RetrievalRun, job_id: int | None) -> None:
    """Table, trade-off plots and the per-query drill-down of one stored run (`job_id`: the job that stored it)."""
    metrics, details, params, baseline, rid = run.metrics, run.details, run.params, run.baseline, run.id
    st.markdown(f"#### Run #{rid} · {display_text(run.dataset or '?')} · {display_text(run.model or '?')}")
    st.caption(display_text(f"{details.get('n_docs', '?')} documents · {details.get('n_queries', '?')} queries · "
                            f"queries from {run.source} · baseline {baseline} · {run.created_at}"
                            + (f" · stored by job #{job_id}" if job_id is not None else "")))
    for w in details.get("warnings", [])[:5]:
        st.warning(display_text(w))
    worst_query_button(run)
    metric_table(metrics, significance=run.significance, baseline=baseline, key=f"retr-table-{rid}")
    condensed_table(run)
    if any("build_s" in v for v in metrics.values()):
        st.caption(display_text(build_time_note(run.embed_s)))
    note = labels_note(params, details)
    if note:
        st.info(note, icon=":material/info:")
    left, right = st.columns(2)
    left.plotly_chart(tradeoff_figure(metrics, x="ms_per_query", x_title="ms / query (log)", y_title="nDCG@10",
                                      baseline=baseline), width="stretch", key=f"retr-lat-{rid}")
    right.plotly_chart(tradeoff_figure(metrics, x="index_bytes", x_title="index size, bytes (log)",
                                       y_title="nDCG@10", baseline=baseline),
                       width="stretch", key=f"retr-size-{rid}")
    st.caption("Hover a point for its method and values; a thin line joins a name to its point where points "
               "crowd, and methods on the same spot share one name.")
    router_panel(metrics, params, key=f"retr-router-{rid}")

    st.markdown("##### Per-query drill-down")
    methods = list(metrics)
    if not run.has_drilldown:
        st.caption("This run has no stored rankings.")
        return
    others = [m for m in methods if m != baseline] or methods
    best_other = max(others, key=lambda m: metrics[m].get("ndcg@10") or 0.0)
    c1, c2, c3 = st.columns([1, 1, 2])
    a = c1.selectbox("Method A", methods, index=methods.index(baseline) if baseline in methods else 0,
                     key=f"retr-a-{rid}")
    b = c2.selectbox("Method B", methods, index=methods.index(best_other), key=f"retr-b-{rid}")
    order = c3.radio("Queries", ["where A and B disagree most", "in dataset order"], horizontal=True,
                     key=f"retr-order-{rid}")
    deltas = disagreements(details, a, b)
    if order == "in dataset order":
        position = {q: i for i, q in enumerate(details["queries"])}
        deltas = sorted(deltas, key=lambda qd: position[qd[0]])
    texts = details["queries"]
    labels = {q: f"{q} · Δ nDCG@10 (B−A) {d:+.3f} · {texts.get(q, '')[:80]}" for q, d in deltas}
    qid = st.selectbox("Query", [q for q, _ in deltas], format_func=labels.get, key=f"retr-q-{rid}")
    if details.get("n_queries_shown", 0) < details.get("n_queries", 0):
        st.caption(f"The run keeps the first {details['n_queries_shown']:,} of {details['n_queries']:,} queries "
                   "for the drill-down; the metrics cover all of them.")
    if qid is None:
        return
    view = retrieval_on_atlas(run, methods=[a, b], query=qid)
    if view is not None:
        open_on_atlas_button(
            "🗺️ Show this query on the Atlas", view, key=f"retr-atlas-{rid}",
            help=f"The query placed on the map of “{display_text(view.corpus)}”, its relevant documents ringed, "
                 "each method's hits and misses; the Failure regions tab aggregates the run by cluster.")
    st.text(texts.get(qid, ""))
    per_query = details.get("per_query", {})
    st.caption(f"{display_text(details.get('n_relevant', {}).get(qid, '?'))} relevant document(s) · ✓ marks a "
               "relevant one")
    left, right = st.columns(2)
    for col, m in ((left, a), (right, b)):
        col.markdown(f"**{display_text(m)}** — nDCG@10 {per_query.get(m, {}).get(qid, 0.0):.3f}")
        col.dataframe(pd.DataFrame(ranked_list_rows(details, m, qid)), hide_index=True, width="stretch",
                      column_config={"text": TEXT_COLUMN})
    run_judging(run, qid, [a, b], key="retr-judge")


# --- page -----------------------------------------------------------------------------------------------------------

st.title("Retrieval")
ws = get_workspace()
session_id, session_name = require_session()

source = st.radio("Queries from", list(SOURCES), format_func=SOURCES.get, horizontal=True, key="retr_source")
setup: dict = {}
corpora = ws.corpora(session_id)
ready = True

if source == "beir":
    beir = [d for d in list_datasets() if d.kind == "beir"]
    if not beir:
        st.info("No shared BEIR folder was found beside the repository: upload a BEIR ZIP instead.")
        ready = False
    else:
        c1, c2 = st.columns([2, 1])
        name = c1.selectbox("Dataset", [d.name for d in beir], key="retr_beir")
        info = next(d for d in beir if d.name == name)
        if info.licence:
            c1.caption(f"Licence: {display_text(info.licence)}")
        splits = beir_splits(info.path) or ["test"]
        split = c2.selectbox("Split", splits, index=splits.index("test") if "test" in splits else 0,
                             key="retr_split")
        setup = {"source": "beir", "beir_dir": str(info.path), "split": split, "dataset": dataset_label(info.name)}

elif source == "zip":
    upload = st.file_uploader("A ZIP of a BEIR folder: corpus.jsonl(.gz), queries.jsonl, qrels/<split>.tsv",
                              type=["zip"], key="retr_zip")
    ready = False
    if upload is not None:
        path = store_beir_upload(upload.getvalue(), upload.name, uploads_dir=Path(ws.path).parent / "uploads")
        splits = beir_splits(path)
        if not splits:
            summary = beir_summary_of(path, "test")
            st.error(display_text(f"{upload.name}: {summary.get('error') or 'no qrels/<split>.tsv in the ZIP'}"))
        else:
            split = st.selectbox("Split", splits, index=splits.index("test") if "test" in splits else 0,
                                 key="retr_zip_split")
            summary = beir_summary_of(path, split)
            if "error" in summary:
                st.error(display_text(f"{upload.name}: {summary['error']}"))
            else:
                st.caption(f"{summary['n_docs']:,} documents · {summary['n_queries']:,} judged queries")
                for w in summary["warnings"][:5]:
                    st.warning(display_text(w))
                setup = {"source": "beir", "beir_dir": str(path), "split": split,
                         "dataset": dataset_label(upload.name)}
                ready = True

elif source == "labels":
    labelled = [c for c in corpora if c.label_col]
    if not labelled:
        st.info("No corpus with labels in this session: load a bundled sample or upload a labelled file on the "
                "Corpora page.")
        ready = False
    else:
        c1, c2, c3, c4 = st.columns([2, 1, 1, 1])
        chosen = c1.selectbox("Corpus", [c.name for c in labelled], key="retr_label_corpus")
        corpus = next(c for c in labelled if c.name == chosen)
        n_queries = c2.number_input("Queries", min_value=1, max_value=10_000, value=200, step=50,
                                    key="retr_nq", help="Documents sampled as queries; relevant = the other "
                                    "documents of the same label")
        max_relevant = c3.number_input(
            "Relevant per query (0 = all)", min_value=0, max_value=100_000, value=0, step=5, key="retr_max_rel",
            help="0: every other document of the query's label is relevant (hundreds in a large class, so "
                 "recall@10 stays tiny; nDCG@10 reads as how much of the top 10 shares the label). N: a seeded "
                 "sample of at most N of them is relevant and the rest of the label is left out of the query's "
                 "ranking (unjudged), so recall@10 is the share of those N found before the 10th document of "
                 "another label.")
        seed = c4.number_input("Seed", min_value=0, value=0, step=1, key="retr_seed")
        setup = {"source": "labels", "corpus_id": corpus.id, "n_queries": int(n_queries), "seed": int(seed),
                 "max_relevant": int(max_relevant) or None, "dataset": corpus.name}

elif source == "judgments":
    setup, ready = judgments_source(session_id, corpora)

else:
    if not corpora:
        st.info("No corpus in this session yet: add one on the Corpora page.")
        ready = False
    else:
        chosen = st.selectbox("Corpus", [c.name for c in corpora], key="retr_typed_corpus")
        corpus = next(c for c in corpora if c.name == chosen)

models = available_models() + (ws.imported_models(corpus) if source in ("labels", "typed") and ready else [])
c1, c2 = st.columns(2)
model = c1.selectbox("Model", models, index=models.index(DEFAULT_MODEL), key="retr_model",
                     help="all-MiniLM-L6-v2 is bundled (offline); tfidf-svd needs no weights.")
custom = c2.text_input("…or any sentence-transformers name or local path", "", key="retr_custom_model")
model = custom.strip() or model
names, method_params = method_picker()

if source == "typed":
    if ready:
        needs_embeddings = any("embeddings" in method_info(n).needs for n in names)
        if needs_embeddings and model in models and ws.embedding(corpus, model) is None:
            if ws.active_job("embed", embed_params(corpus.id, model)):
                st.info(f"Embedding {display_text(repr(corpus.name))} with {display_text(model)} (see the progress "
                        "below).")
            else:
                st.info(f"{display_text(repr(corpus.name))} is not embedded with {display_text(model)} yet: dense "
                        "methods embed it on the first "
                        "search, which takes a while for large corpora.")
                if st.button("Embed in the background", key="retr_embed"):
                    ws.embed(corpus.id, model, session_id=session_id)
                    st.rerun()
        no_query = ws.query_problem(corpus, model) if needs_embeddings else None   # imported, no query encoder
        with st.form("retr_typed_form", border=False):
            query = st.text_input("Query", key="retr_query", max_chars=2000)
            searched = st.form_submit_button("Search", type="primary", disabled=bool(no_query))
        if no_query:
            st.caption(f"Search is off for dense methods: {display_text(no_query)}")
        if (searched or st.session_state.get("retr_typed_on")) and query.strip() and names:
            st.session_state["retr_typed_on"] = True
            try:
                with st.spinner("Building the indexes (kept for the next queries)…"):
                    results = rank_typed_query(ws.db, corpus.id, model, query, names, k=10, params=method_params)
            except UserError as exc:
                st.error(display_text(exc))
            else:
                idxs = sorted({idx for hits in results.values() for idx, _, _ in hits})
                docs = {d["idx"]: d for d in ws.documents(corpus.id, idxs)}
                show_ranked_lists(results, docs)
else:
    c1, c2, c3 = st.columns([2, 1, 1])
    default_base = "bm25" if "bm25" in names else (names[0] if names else None)
    baseline = c1.selectbox("Baseline (significance is tested against it)", names,
                            index=names.index(default_base) if default_base else 0, key="retr_baseline")
    if setup.get("source") == "beir":
        max_docs = c2.number_input("Max docs (0 = all)", min_value=0, value=0, step=500, key="retr_max_docs",
                                   help="For a quick run: the judged documents first, then the first others.")
        max_queries = c3.number_input("Max queries (0 = all)", min_value=0, value=0, step=50, key="retr_max_q")
        setup.update(max_docs=int(max_docs) or None, max_queries=int(max_queries) or None)
    if st.button("Run comparison", type="primary", disabled=not (ready and names), key="retr_run"):
        try:
            job_params = validate_params({**setup, "session_id": session_id, "model": model, "methods": names,
                                          "params": method_params, "baseline": baseline})
        except UserError as exc:
            st.error(display_text(exc))
        else:
            ws.submit("retrieval", job_params, session_id=session_id)
            st.rerun()

st.divider()
st.subheader(f"Runs of session “{display_text(session_name)}”")
active_jobs_panel(session_id, kinds=("retrieval", "embed"), key="retrieval-jobs")
last_job = next(iter(ws.jobs(session_id, kinds=("retrieval",))), None)
if last_job is not None and last_job.status in ("failed", "cancelled"):
    st.error(f"Retrieval job #{last_job.id} {last_job.status} (no run stored): {display_text(last_job.message)}")
picked = run_history(session_id, kind="retrieval", key="retrieval-runs")
if picked is None:
    runs = ws.runs(session_id, "retrieval")
    if not runs:
        st.stop()
    picked = ws.run(shown_run_id("retrieval", runs))
    st.caption("Showing the latest run; pick another in the table above.")
show_run(picked, ws.job_of_run(picked))
