"""OOD: compare out-of-distribution detectors on the session's corpora, then read any stored run: metrics,
ROC curves, score histograms, a threshold with its confusion counts, the map and the documents to look at."""
from __future__ import annotations

from components.page_setup import ensure_app_shell

ensure_app_shell()  # first: a deep link shows the real navigation before the page's imports run

from collections import Counter

import numpy as np
import streamlit as st

from components.job_progress import active_jobs_panel
from components.ood_plots import (
    document_table,
    histogram_grid,
    hover_text,
    results_table,
    roc_figure,
    score_histogram,
    score_map_figure,
    threshold_control,
)
from components.map_links import corpus_with_most_ood, open_on_atlas_button
from components.param_form import changed_params
from components.run_history import run_history
from components.share_link import shown_run_id
from components.state import db_path, get_db, require_session, shared_matrix
from embedlab.embedding.embedders import DEFAULT_MODEL, available_models
from embedlab.errors import UserError
from embedlab.jobs import list_jobs, submit_job
from embedlab.ood import describe_methods
from embedlab.ood.label_rules import disabled_methods
from embedlab.ood.run_reading import resolve_run_corpora, review_lists
from embedlab.ood.split import DEFAULT_FRACTION, split_corpus
from embedlab.tasks import find_projection
from embedlab.text_display import display_text, html_text
from storage.corpora import list_corpora, load_documents, load_labels
from storage.sessions import list_runs, load_run

OOD_LABEL_GUESSES = ("oos", "ood", "out_of_scope", "out-of-scope")
NONE = "(none)"
ID_TEST_SOURCES = {"holdout": "a held-out share of it", "corpus": "another corpus"}
LIST_LIMIT = 50

st.title("OOD")
st.caption("Which documents does a model see as unlike the in-distribution set? Fit detectors on a corpus (or "
           "part of it), score in-distribution test documents (held out of it, or another corpus) and "
           "out-of-distribution ones, compare.")
db = get_db()
session_id, _ = require_session()
corpora = list_corpora(db, session_id)
runs = list_runs(db, session_id, "ood")


@st.cache_data(max_entries=16, show_spinner=False, ttl=300)
def test_documents(path: str, run_id: int) -> dict[tuple[int, int], dict]:
    """The stored documents of a run's test set, by (corpus id as in the run, idx); documents of a corpus that is
    no longer stored are absent."""
    from storage import connect

    conn = connect(path)
    try:
        run = load_run(conn, run_id)
        stored = resolve_run_corpora(conn, run)
        wanted: dict[int, list[int]] = {}
        for cid, idx in run["details"].get("test_idx") or []:
            wanted.setdefault(int(cid), []).append(int(idx))
        return {(cid, d["idx"]): d for cid, idxs in wanted.items() if stored.get(cid) is not None
                for d in load_documents(conn, stored[cid].id, idxs)}
    finally:
        conn.close()


@st.cache_data(max_entries=64, show_spinner=False)
def label_counts(path: str, corpus_id: int, content_hash: str) -> dict[str, int]:
    """How many documents carry each label in a stored corpus (keyed by content too, so an edit is seen)."""
    from storage import connect

    conn = connect(path)
    try:
        return dict(Counter(str(v) for v in load_labels(conn, corpus_id) if v not in (None, "")))
    finally:
        conn.close()


def ood_guess(counts: dict[str, int]) -> list[str]:
    """The label that names out-of-scope documents, when a corpus has one (CLINC's “oos”)."""
    return [v for v in OOD_LABEL_GUESSES if v in counts][:1]


def default_corpus_index(names: list[str]) -> int:
    """The corpus a new comparison starts from: one that can be tested as it opens (a label such as “oos” marks
    its OOD documents), else one with labels (labels can be marked OOD or held out), else the first."""
    infos = [next(c for c in corpora if c.name == n) for n in names]
    labelled = [i for i, c in enumerate(infos) if c.label_col]
    for i in labelled:
        if ood_guess(label_counts(str(db_path()), infos[i].id, infos[i].content_hash)):
            return i
    return labelled[0] if labelled else 0


def nothing_ood_guidance(corpus, options: list[str], ood_others: list[str]) -> str:
    """What to pick when nothing is OOD yet (a state, not a mistake: shown as guidance, not as an error)."""
    if options:
        text = ("Nothing is marked OOD yet. Pick what the detectors should flag: mark labels as OOD (e.g. CLINC's "
                "“oos”), hold out labels as near-OOD (classes never trained on)"
                + (", or pick another corpus as OOD under **Test set**." if ood_others else "."))
    elif ood_others:
        text = (f"“{display_text(corpus.name)}” has no labels, so all its documents are in-distribution: pick "
                "another corpus as "
                "OOD under **Test set**.")
    else:
        text = (f"“{display_text(corpus.name)}” has no labels, so all its documents are in-distribution, and no "
                "other corpus is "
                "left to test as OOD: add one on the Corpora page (or a labelled one, e.g. the bundled CLINC "
                "sample, whose “oos” label is OOD).")
    testable = [c.name for c in corpora if c.id != corpus.id and c.label_col
                and ood_guess(label_counts(str(db_path()), c.id, c.content_hash))]
    if testable:
        text += (f" Or pick “{display_text(testable[0])}” as the in-distribution corpus: its “oos”-like label is "
                 "OOD at once.")
    return text


def comparison_setup() -> None:
    """The form of a new comparison: in-distribution set, test set, detectors; Run submits an "ood" job."""
    by_name = {c.name: c for c in corpora}
    names = list(by_name)
    left, right = st.columns(2)
    with left:
        st.markdown("**In-distribution**")
        corpus = by_name[st.selectbox("Corpus", names, index=default_corpus_index(names), key="ood_id_corpus",
                                      help="Detectors are fitted on it (on part of it when the ID test set is "
                                           "held out of it).")]
        models = available_models()
        model = st.selectbox("Model", models, index=models.index(DEFAULT_MODEL) if DEFAULT_MODEL in models else 0,
                             key="ood_model", help="Embeddings are cached: a corpus already embedded is not "
                                                   "embedded again.")
        labels = load_labels(db, corpus.id)
        counts = Counter(v for v in labels if v not in (None, ""))
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
        guess = ood_guess(counts)
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
            guidance = nothing_ood_guidance(corpus, options, ood_others)
    if problem:
        st.error(display_text(problem))
    elif guidance:
        st.info(guidance, icon=":material/lightbulb:")

    st.markdown("**Detectors**")
    train_labels = None if split is None or split.labels is None else [split.labels[i] for i in split.train]
    records = describe_methods()
    reasons = disabled_methods([r["name"] for r in records], train_labels)
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
        submit_job(db_path(), "ood", params, session_id=session_id)
        st.rerun()


def run_summary(run: dict) -> None:
    params, d = run["params"], run["details"]
    parts = [f"run #{run['id']}", display_text(run["created_at"][:19].replace("T", " ")),
             f"model {display_text(params.get('model', '?'))}",
             f"{d.get('n_train', 0):,} trained on", f"{d.get('n_id', 0):,} ID / {d.get('n_ood', 0):,} OOD tested"]
    if d.get("id_accuracy") is not None:
        parts.append(f"ID accuracy of the logistic head {d['id_accuracy']:.1%}")
    st.caption(" · ".join(parts))
    setup = {"in-distribution": params.get("corpus", ""),
             "ID labels": ", ".join(params.get("id_labels") or []) or "all not marked OOD",
             "marked OOD": ", ".join(params.get("ood_labels") or []) or "—",
             "near-OOD": ", ".join(params.get("near_ood_labels") or []) or "—",
             "other corpus": params.get("test_corpus") or "—"}
    if params.get("test") == "corpora":
        setup["ID test"] = f"every document of {params.get('id_test_corpus') or '?'} (nothing held out)"
    else:
        setup["held out"] = f"{params.get('fraction', DEFAULT_FRACTION):.0%} (seed {params.get('seed', 0)})"
    st.dataframe([setup], hide_index=True, width="stretch", key=f"ood_setup_{run['id']}")
    for name, why in (d.get("disabled") or {}).items():
        st.caption(f"⛔ {display_text(name)} did not run: {display_text(why)}")


def score_map(run: dict, method: str, scores: np.ndarray, is_ood: np.ndarray, texts: dict, stored: dict) -> None:
    """The map of a test corpus coloured by the chosen detector's score, when the Atlas has computed it."""
    pairs = run["details"]["test_idx"]
    names = {cid: info.name for cid, info in stored.items() if info is not None}
    if not names:
        st.caption("The corpora of this run are no longer stored.")
        return
    cid = next(iter(names))
    if len(names) > 1:
        picked = st.radio("Map of", list(names.values()), horizontal=True, key=f"ood_map_corpus_{run['id']}",
                          format_func=display_text)
        cid = next(c for c, n in names.items() if n == picked)
    model = run["params"].get("model") or DEFAULT_MODEL
    try:
        meta = find_projection(db, stored[cid].id, model, method="umap")
    except UserError as exc:
        st.caption(f"No map: {display_text(exc)}")
        return
    if meta is None:
        st.info(f"No UMAP map of this corpus with {display_text(model)} yet: compute the map on the Atlas page.")
        return
    coords = shared_matrix(meta.id)
    on_map = np.flatnonzero([int(p[0]) == cid for p in pairs])
    rows = [int(pairs[i][1]) for i in on_map]
    hover = None
    if len(on_map) <= 20_000:
        labels = run["details"].get("test_labels") or [None] * len(pairs)
        hover = [hover_text((texts.get((cid, rows[j])) or {}).get("text"), labels[i], float(scores[i]),
                            bool(is_ood[i])) for j, i in enumerate(on_map)]
    fig = score_map_figure(coords, rows, scores[on_map], is_ood[on_map], hover)
    st.plotly_chart(fig, width="stretch", key=f"ood_map_{run['id']}_{method}_{cid}")


def document_rows(positions: list[int], run: dict, scores: np.ndarray, is_ood: np.ndarray,
                  texts: dict, corpus_names: dict) -> list[dict]:
    pairs = run["details"]["test_idx"]
    labels = run["details"].get("test_labels") or [None] * len(pairs)
    out = []
    for i in positions:
        cid, idx = int(pairs[i][0]), int(pairs[i][1])
        doc = texts.get((cid, idx)) or {}
        out.append({"score": float(scores[i]), "truth": "OOD" if is_ood[i] else "ID", "label": labels[i],
                    "corpus": corpus_names.get(cid, f"#{cid}"), "doc id": doc.get("doc_id"),
                    "text": doc.get("text", "(no longer stored)")})
    return out


@st.fragment
def detector_view(run: dict) -> None:
    """Everything that depends on one detector and its threshold (reruns alone when they change)."""
    d, metrics = run["details"], run["metrics"]
    all_scores = {m: np.asarray(v, dtype=float) for m, v in (d.get("scores") or {}).items()}
    is_ood = np.asarray(d.get("is_ood") or [], dtype=bool)
    if not all_scores or not len(is_ood):
        st.caption("This run has no per-document scores.")
        return
    methods = sorted(all_scores, key=lambda m: -(metrics.get(m, {}).get("auroc") or 0))
    method = st.selectbox("Detector", methods, key=f"ood_detector_{run['id']}",
                          help="Ordered by AUROC; the histogram, threshold, map and lists below follow it.")
    scores = all_scores[method]
    atlas_corpus = corpus_with_most_ood(get_db(), run)
    if atlas_corpus is not None:
        open_on_atlas_button(
            "🗺️ Why is a document OOD? Open this run on the Atlas", corpus=atlas_corpus, tab="🚨 Why OOD",
            key=f"ood-atlas-{run['id']}",
            state={"atlas_oodx_run": run["id"], f"atlas_oodx_detector_{run['id']}": method},
            help=f"The {display_text(method)} score as a colour layer on the map of “{display_text(atlas_corpus)}”; "
                 "click a document to see its "
                 "nearest training documents, nearest class means and every detector's score.")
    threshold, counts = threshold_control(scores, is_ood, method, key=f"ood_threshold_{run['id']}_{method}")

    left, right = st.columns(2)
    with left:
        st.plotly_chart(roc_figure(d.get("roc") or {}, metrics, highlight=method,
                                   point=(counts["fpr"], counts["tpr"])),
                        width="stretch", key=f"ood_roc_{run['id']}")
    with right:
        st.plotly_chart(score_histogram(scores, is_ood, threshold=threshold, title=f"{html_text(method)} scores"),
                        width="stretch", key=f"ood_hist_{run['id']}")
    with st.expander("Score histograms of every detector"):
        st.plotly_chart(histogram_grid({m: all_scores[m] for m in methods}, is_ood), width="stretch",
                        key=f"ood_hist_grid_{run['id']}")

    texts = test_documents(db_path(), int(run["id"]))
    stored = resolve_run_corpora(db, run)
    corpus_names = {cid: info.name for cid, info in stored.items() if info is not None}

    st.markdown(f"**Map coloured by {display_text(method)} score**")
    score_map(run, method, scores, is_ood, texts, stored)

    lists = review_lists(scores, is_ood, threshold, limit=LIST_LIMIT)
    tabs = st.tabs(["Most OOD", f"False alarms ({counts['fp']:,})", f"Missed OOD ({counts['fn']:,})"])
    with tabs[0]:
        document_table(document_rows(lists["most_ood"], run, scores, is_ood, texts, corpus_names),
                       key=f"ood_most_{run['id']}")
    with tabs[1]:
        st.caption("In-distribution documents flagged at this threshold, highest score first.")
        document_table(document_rows(lists["false_alarms"], run, scores, is_ood, texts, corpus_names),
                       key=f"ood_fa_{run['id']}", empty="No in-distribution document is flagged at this threshold.")
    with tabs[2]:
        st.caption("OOD documents accepted at this threshold, lowest score first.")
        document_table(document_rows(lists["missed"], run, scores, is_ood, texts, corpus_names),
                       key=f"ood_missed_{run['id']}", empty="Every OOD document is caught at this threshold.")


with st.expander("New comparison", expanded=not runs):
    if corpora:
        comparison_setup()
    else:
        st.info("No corpus in this session yet: add one on the Corpora page.")
active_jobs_panel(session_id, kinds=("ood",), key="ood-jobs")
latest_job = next(iter(list_jobs(db, session_id=session_id, kind="ood", limit=1)), None)
if latest_job is not None and latest_job.status == "failed":
    st.error(f"OOD run #{latest_job.id} failed: {display_text(latest_job.message)}")

st.subheader("Results")
if not runs:
    st.info("No OOD run in this session yet: set one up above and press Run comparison.")
    st.stop()
with st.expander(f"Run history ({len(runs)})", expanded=False):
    st.caption("Pick a run to reopen it; without a pick the latest is shown.")
    picked = run_history(session_id, kind="ood", key="ood-runs")
run = picked or load_run(db, shown_run_id("ood", runs))
run_summary(run)
results_table(run["metrics"], key=f"ood_results_{run['id']}")
detector_view(run)
