"""OOD: compare out-of-distribution detectors on the session's corpora, then read any stored run: metrics,
ROC curves, score histograms, a threshold with its confusion counts, the map and the documents to look at."""
from __future__ import annotations

from components.page_setup import ensure_app_shell

ensure_app_shell()  # first: a deep link shows the real navigation before the page's imports run

import numpy as np
import streamlit as st

from components.data import corpus_view, label_counts_of, run_test_documents, shared_matrix
from components.job_progress import active_jobs_panel
from components.map_links import ood_on_atlas, open_on_atlas_button
from components.map_view import draw_map
from components.ood_plots import (
    document_table,
    histogram_grid,
    results_table,
    roc_figure,
    score_colour_range,
    score_histogram,
    threshold_control,
)
from components.param_form import changed_params
from components.run_history import run_history
from components.share_link import shown_run_id
from components.state import get_workspace, require_session
from embedlab.embedding.embedders import DEFAULT_MODEL, available_models
from embedlab.errors import UserError
from embedlab.map_colours import numeric_colour
from embedlab.ood import describe_methods, disabled_methods
from embedlab.ood.run_reading import document_rows, review_lists, setup_row
from embedlab.ood.split import DEFAULT_FRACTION, split_corpus
from embedlab.ood.suggestions import nothing_ood_guidance, ood_label_guess, starting_corpus
from embedlab.runs import OODRun
from embedlab.text_display import display_text, html_text

NONE = "(none)"
ID_TEST_SOURCES = {"holdout": "a held-out share of it", "corpus": "another corpus"}
LIST_LIMIT = 50

st.title("OOD")
st.caption("Which documents does a model see as unlike the in-distribution set? Fit detectors on a corpus (or "
           "part of it), score in-distribution test documents (held out of it, or another corpus) and "
           "out-of-distribution ones, compare.")
ws = get_workspace()
session_id, _ = require_session()
corpora = ws.corpora(session_id)
runs = ws.runs(session_id, "ood")


def comparison_setup() -> None:
    """The form of a new comparison: in-distribution set, test set, detectors; Run submits an "ood" job."""
    by_name = {c.name: c for c in corpora}
    names = list(by_name)
    left, right = st.columns(2)
    with left:
        st.markdown("**In-distribution**")
        corpus = by_name[st.selectbox("Corpus", names, index=starting_corpus(corpora, label_counts_of),
                                      key="ood_id_corpus",
                                      help="Detectors are fitted on it (on part of it when the ID test set is "
                                           "held out of it).")]
        models = available_models() + ws.imported_models(corpus)
        model = st.selectbox("Model", models, index=models.index(DEFAULT_MODEL) if DEFAULT_MODEL in models else 0,
                             key="ood_model", help="Embeddings are cached: a corpus already embedded is not "
                                                   "embedded again.")
        labels = ws.labels(corpus.id)
        counts = label_counts_of(corpus)
        options = sorted(counts)
        if options:
            id_labels = st.multiselect(
                "Only these labels are in-distribution", options, key=f"ood_id_labels_{corpus.id}",
                placeholder="every label not marked OOD",
                help="Documents of other labels are left out, unless marked OOD or held out as near-OOD.")
        else:
            id_labels = []
            st.caption("This corpus has no labels: detectors that need labels are off.")
    others = [c.name for c in corpora if c.id != corpus.id]
    with right:
        st.markdown("**Test set**")
        id_from = st.radio("In-distribution test documents from", list(ID_TEST_SOURCES),
                           format_func=ID_TEST_SOURCES.get, horizontal=True, key="ood_id_test_from",
                           disabled=not others,
                           help="A held-out share: the rest of the corpus trains. Another corpus: every document "
                                "of the in-distribution corpus trains and every document of the other corpus is "
                                "the ID test set (e.g. the same intents written by other people).")
        id_test_corpus = None
        fraction, seed = 0.0, 0
        if id_from == "corpus" and others:
            picked_ood = st.session_state.get("ood_test_corpus")        # keep an OOD corpus already picked
            first = next((i for i, n in enumerate(others) if n != picked_ood), 0)
            id_test_corpus = by_name[st.selectbox("ID test corpus (every document)", others, index=first,
                                                  key="ood_id_test_corpus")]
            st.caption(f"Nothing is held out: every in-distribution document of “{display_text(corpus.name)}” "
                       "trains.")
        else:
            fraction = st.slider("Held-out share of the in-distribution documents (ID test)", 0.1, 0.5,
                                 DEFAULT_FRACTION, 0.05, key="ood_fraction")
            seed = int(st.number_input("Seed of the hold-out", 0, 2**31 - 1, 0, step=1, key="ood_seed"))
        guess = ood_label_guess(counts)
        ood_labels = st.multiselect("Labels marked as OOD", options, default=guess, key=f"ood_labels_{corpus.id}",
                                    disabled=not options, help="Documents with these labels are never trained on; "
                                                               "they are the OOD test set (e.g. CLINC's “oos”).")
        near = st.multiselect("Labels held out as near-OOD", options, key=f"ood_near_{corpus.id}",
                              disabled=not options,
                              help="Real classes the detectors never see in training: harder than far OOD.")
        ood_others = [n for n in others if id_test_corpus is None or n != id_test_corpus.name]
        test_name = st.selectbox("Another corpus as OOD (every document)", [NONE, *ood_others],
                                 key="ood_test_corpus")
    test_corpus = by_name.get(test_name) if test_name in ood_others else None

    problem = guidance = None
    try:
        split = split_corpus(labels, id_labels=id_labels, ood_labels=[*ood_labels, *near], fraction=fraction,
                             seed=seed)
    except UserError as exc:
        split, problem = None, str(exc)
    if split is not None:
        n_ood = len(split.ood) + (test_corpus.n_docs if test_corpus else 0)
        n_id = id_test_corpus.n_docs if id_test_corpus is not None else len(split.id_test)
        st.caption(f"Training: {len(split.train):,} documents · ID test: {n_id:,}"
                   + (f" (every document of “{display_text(id_test_corpus.name)}”)" if id_test_corpus is not None
                      else "")
                   + f" · OOD test: {n_ood:,}" + (f" · left out: {split.dropped:,}" if split.dropped else ""))
        if n_ood == 0:
            guidance = nothing_ood_guidance(corpus, corpora, label_counts_of, has_labels=bool(options),
                                            other_corpus_can_be_ood=bool(ood_others))
    no_query = ws.query_problem(corpus, model)    # imported vectors without a query encoder: no new texts
    for other in (id_test_corpus, test_corpus):
        if no_query and other is not None and not problem and model not in ws.imported_models(other):
            problem = f"“{other.name}” has no vectors named {model}, so its texts must be encoded: {no_query}"
    if problem:
        st.error(display_text(problem))
    elif guidance:
        st.info(guidance, icon=":material/lightbulb:")

    st.markdown("**Detectors**")
    train_labels = None if split is None or split.labels is None else [split.labels[i] for i in split.train]
    records = describe_methods()
    reasons = disabled_methods([r["name"] for r in records], train_labels, has_embedder=not no_query)
    chosen: list[str] = []
    chosen_params: dict[str, dict] = {}
    columns = st.columns(2)
    for i, record in enumerate(records):
        name, reason = record["name"], reasons.get(record["name"])
        with columns[i % 2].container(border=True):
            on = st.checkbox(name, value=reason is None, disabled=reason is not None,
                             key=f"ood_use_{name}_{reason is None}")
            st.caption(record["description"] if reason is None else f"⛔ Unavailable: {reason}")
            values = {}
            if record["params"]:
                with st.expander("Parameters"):
                    values = changed_params(record["params"], key_prefix=f"ood_p_{name}_",
                                            disabled=reason is not None)
            if on and reason is None:
                chosen.append(name)
                if values:
                    chosen_params[name] = values

    test = "corpora" if id_test_corpus is not None else ("corpus" if test_corpus else "holdout")
    params = {"session_id": session_id, "model": model, "id_corpus_id": corpus.id,
              "id_labels": list(id_labels), "ood_labels": list(ood_labels), "near_ood_labels": list(near),
              "test": test, "fraction": float(fraction), "seed": seed, "methods": chosen, "params": chosen_params}
    if id_test_corpus is not None:
        params["id_test_corpus_id"] = id_test_corpus.id
    if test_corpus:
        params["test_corpus_id"] = test_corpus.id
    if st.button("Run comparison", type="primary", key="ood_run",
                 disabled=bool(problem or guidance) or not chosen):
        ws.submit("ood", params, session_id=session_id)
        st.rerun()


def run_summary(run: OODRun, job_id: int | None) -> None:
    d = run.details
    parts = [f"run #{run.id}", display_text(run.created_at[:19].replace("T", " ")),
             f"model {display_text(run.model or '?')}",
             f"{d.get('n_train', 0):,} trained on", f"{d.get('n_id', 0):,} ID / {d.get('n_ood', 0):,} OOD tested"]
    if d.get("id_accuracy") is not None:
        parts.append(f"ID accuracy of the logistic head {d['id_accuracy']:.1%}")
    if job_id is not None:
        parts.append(f"stored by job #{job_id}")
    st.caption(" · ".join(parts))
    st.dataframe([setup_row(run)], hide_index=True, width="stretch", key=f"ood_setup_{run.id}")
    for name, why in run.disabled.items():
        st.caption(f"⛔ {display_text(name)} did not run: {display_text(why)}")


def score_map(run: OODRun, method: str, scores: np.ndarray, is_ood: np.ndarray, texts: dict, stored: dict) -> None:
    """The map of a test corpus coloured by the chosen detector's score, when the Atlas has computed it."""
    pairs = run.test_idx
    names = {cid: info.name for cid, info in stored.items() if info is not None}
    if not names:
        st.caption("The corpora of this run are no longer stored.")
        return
    cid = next(iter(names))
    if len(names) > 1:
        picked = st.radio("Map of", list(names.values()), horizontal=True, key=f"ood_map_corpus_{run.id}",
                          format_func=display_text)
        cid = next(c for c, n in names.items() if n == picked)
    model = run.model or DEFAULT_MODEL
    try:
        meta = ws.projection(stored[cid].id, model, method="umap")
    except UserError as exc:
        st.caption(f"No map: {display_text(exc)}")
        return
    if meta is None:
        st.info(f"No UMAP map of this corpus with {display_text(model)} yet: compute the map on the Atlas page.")
        return
    coords = shared_matrix(meta.id)
    on_map = np.flatnonzero([int(p[0]) == cid for p in pairs])
    rows = np.array([int(pairs[i][1]) for i in on_map], dtype=np.int64)
    values = np.full(len(coords), np.nan)
    values[rows] = scores[on_map]
    kind = np.zeros(len(coords), dtype=np.uint16)                           # 0 not tested, 1 ID test, 2 OOD test
    kind[rows] = np.where(is_ood[on_map].astype(bool), 2, 1)
    draw_map(coords, numeric_colour(f"{method} score", values), key=f"ood_map_{run.id}_{cid}",
             revision=f"ood-page-{meta.id}", texts=corpus_view(stored[cid]).texts,
             tags=(kind, ["not tested", "ID test", "OOD test"]),
             numeric={"value_range": score_colour_range(scores), "missing_name": "not tested"}, height=520)


@st.fragment
def detector_view(run: OODRun) -> None:
    """Everything that depends on one detector and its threshold (reruns alone when they change)."""
    metrics, rid = run.metrics, run.id
    all_scores = {m: np.asarray(v, dtype=float) for m, v in run.scores.items()}
    is_ood = np.asarray(run.is_ood, dtype=bool)
    if not all_scores or not len(is_ood):
        st.caption("This run has no per-document scores.")
        return
    methods = sorted(all_scores, key=lambda m: -(metrics.get(m, {}).get("auroc") or 0))
    method = st.selectbox("Detector", methods, key=f"ood_detector_{rid}",
                          help="Ordered by AUROC; the histogram, threshold, map and lists below follow it.")
    scores = all_scores[method]
    view = ood_on_atlas(run, detector=method)
    if view is not None:
        open_on_atlas_button(
            "🗺️ Why is a document OOD? Open this run on the Atlas", view, key=f"ood-atlas-{rid}",
            help=f"The {display_text(method)} score as a colour layer on the map of “{display_text(view.corpus)}”; "
                 "click a document to see its nearest training documents, nearest class means and every "
                 "detector's score.")
    threshold, counts = threshold_control(scores, is_ood, method, key=f"ood_threshold_{rid}_{method}")

    left, right = st.columns(2)
    with left:
        st.plotly_chart(roc_figure(run.details.get("roc") or {}, metrics, highlight=method,
                                   point=(counts["fpr"], counts["tpr"])),
                        width="stretch", key=f"ood_roc_{rid}")
    with right:
        st.plotly_chart(score_histogram(scores, is_ood, threshold=threshold, title=f"{html_text(method)} scores"),
                        width="stretch", key=f"ood_hist_{rid}")
    with st.expander("Score histograms of every detector"):
        st.plotly_chart(histogram_grid({m: all_scores[m] for m in methods}, is_ood), width="stretch",
                        key=f"ood_hist_grid_{rid}")
    if not run.test_idx:
        st.caption("This run's test texts came from files (`bench-ood`) and are not stored: no map and no "
                   "document lists.")
        return

    texts = run_test_documents(run)
    stored = ws.run_corpora(run)
    corpus_names = {cid: info.name for cid, info in stored.items() if info is not None}

    st.markdown(f"**Map coloured by {display_text(method)} score**")
    score_map(run, method, scores, is_ood, texts, stored)

    lists = review_lists(scores, is_ood, threshold, limit=LIST_LIMIT)
    tabs = st.tabs(["Most OOD", f"False alarms ({counts['fp']:,})", f"Missed OOD ({counts['fn']:,})"])
    with tabs[0]:
        document_table(document_rows(run, lists["most_ood"], scores, texts, corpus_names), key=f"ood_most_{rid}")
    with tabs[1]:
        st.caption("In-distribution documents flagged at this threshold, highest score first.")
        document_table(document_rows(run, lists["false_alarms"], scores, texts, corpus_names),
                       key=f"ood_fa_{rid}", empty="No in-distribution document is flagged at this threshold.")
    with tabs[2]:
        st.caption("OOD documents accepted at this threshold, lowest score first.")
        document_table(document_rows(run, lists["missed"], scores, texts, corpus_names),
                       key=f"ood_missed_{rid}", empty="Every OOD document is caught at this threshold.")


with st.expander("New comparison", expanded=not runs):
    if corpora:
        comparison_setup()
    else:
        st.info("No corpus in this session yet: add one on the Corpora page.")
active_jobs_panel(session_id, kinds=("ood",), key="ood-jobs")
latest_job = next(iter(ws.jobs(session_id, kinds=("ood",))), None)
if latest_job is not None and latest_job.status == "failed":
    st.error(f"OOD job #{latest_job.id} failed (no run stored): {display_text(latest_job.message)}")

st.subheader("Results")
if not runs:
    st.info("No OOD run in this session yet: set one up above and press Run comparison.")
    st.stop()
with st.expander(f"Run history ({len(runs)})", expanded=False):
    st.caption("Pick a run to reopen it; without a pick the latest is shown.")
    picked = run_history(session_id, kind="ood", key="ood-runs")
run = picked or ws.run(shown_run_id("ood", runs))
run_summary(run, ws.job_of_run(run))
results_table(run.metrics, key=f"ood_results_{run.id}")
detector_view(run)
