"""The Atlas's "🎯 Retrieval" and "🗺️ Failure regions" tabs through AppTest, on a small stored session: the runs
offered, the query and its marks on the view's map, stepping through queries, the worst-clusters table and the
map's colours, each checked against embedlab.map_retrieval."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from embedlab.scatter_payload import normalised
from embedlab.map_retrieval import (cluster_scores, cluster_values, method_marks, place_query, query_clusters,
                                   query_order, relevant_rows, worst_clusters)
from tests.builders import open_page, stored_corpus, use_copy_of
from tests.map_support import GREY, assert_numeric, click, drawn_at, legend, maps, ringed, rings

PAGE = "pages/atlas.py"
RETRIEVAL, FAILURE = "🎯 Retrieval", "🗺️ Failure regions"
N_DOCS = 90
TOPICS = {"sport": "match team goal player season coach league score",
          "money": "bank market stock price trade profit loan bond",
          "space": "rocket orbit nasa launch planet moon comet probe"}
BEIR_QUERIES = {"q1": "rocket launch to the moon", "q2": "stock market profit", "q3": "team wins the league"}


def corpus_texts() -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for i in range(N_DOCS):
        label = list(TOPICS)[i % 3]
        w, other = TOPICS[label].split(), TOPICS[list(TOPICS)[(i + 1) % 3]].split()
        texts.append(f"{w[i % 8]} {w[(i + 3) % 8]} {w[(i * 7 + 2) % 8]} {other[i % 8]} note {i} on {label}")
        labels.append(label)
    return texts, labels


def beir_details() -> dict:
    """A BEIR-style run over the corpus's own document ids (as if the collection had been ingested with them)."""
    rankings = {"bm25": {"q1": [[f"d{i}", 9.0 - k] for k, i in enumerate([2, 5, 8, 0, 11])],
                         "q2": [[f"d{i}", 9.0 - k] for k, i in enumerate([1, 4, 7, 3])],
                         "q3": [[f"d{i}", 9.0 - k] for k, i in enumerate([0, 3, 1])]},
                "dense": {"q1": [[f"d{i}", 0.9 - k / 10] for k, i in enumerate([5, 14, 2])],
                          "q2": [[f"d{i}", 0.9 - k / 10] for k, i in enumerate([0, 2, 4])],
                          "q3": [[f"d{i}", 0.9 - k / 10] for k, i in enumerate([3, 6, 9, 12])]}}
    qrels = {"q1": {"d2": 1, "d5": 1, "d14": 2}, "q2": {"d1": 1, "d4": 1}, "q3": {"d0": 1, "d3": 1, "d6": 1}}
    per_query = {"bm25": {"q1": 0.61, "q2": 1.0, "q3": 0.55}, "dense": {"q1": 0.97, "q2": 0.39, "q3": 0.47}}
    return {"dataset": "toy-beir", "n_docs": N_DOCS, "n_queries": 3, "n_queries_shown": 3, "baseline": "bm25",
            "per_query": per_query, "rankings": rankings, "qrels": qrels,
            "n_relevant": {q: len(r) for q, r in qrels.items()}, "queries": dict(BEIR_QUERIES), "docs": {},
            "significance": {}, "warnings": []}


@pytest.fixture(scope="module")
def views_db(tmp_path_factory) -> Path:
    """Session "s": corpus "news" (90 documents of 3 topics, ids d0…d89), tfidf-svd with 3-D and 2-D PCA maps, a labels
    run (bm25, dense), a BEIR-style run over the corpus's ids, a run saved without details, a BEIR run of ids the
    corpus lacks and a labels run of another corpus. Session "t": a copy of the corpus with only the run saved
    without details."""
    import embedlab.tasks  # noqa: F401 - registers the job kinds
    from embedlab.embedding.cache import compute_embedding
    from embedlab.jobs import run_job
    from embedlab.runs import load_run
    from storage import connect
    from storage.sessions import save_run

    path = tmp_path_factory.mktemp("atlas-retrieval") / "template.sqlite"
    db = connect(path)
    texts, labels = corpus_texts()
    sid, info = stored_corpus(db, texts, labels, name="news", doc_ids=[f"d{i}" for i in range(N_DOCS)])
    compute_embedding(db, texts, "tfidf-svd", content_hash=info.content_hash, corpus_id=info.id)
    for dims in (3, 2):   # the latest map (2-D) is the one the Atlas opens with
        run_job(db, "project", {"corpus_id": info.id, "model": "tfidf-svd", "method": "pca", "n_components": dims},
                session_id=sid)
    ref = run_job(db, "retrieval", {"session_id": sid, "source": "labels", "corpus_id": info.id, "n_queries": 24,
                                    "seed": 0, "max_relevant": 10, "model": "tfidf-svd",
                                    "methods": ["bm25", "dense"]}, session_id=sid)
    labels_run = load_run(db, int(ref.split(":")[1]))
    beir_params = {"source": "beir", "beir_dir": "../shared/data/toy-beir", "model": "tfidf-svd",
                   "methods": ["bm25", "dense"], "baseline": "bm25", "dataset": "toy-beir"}
    metrics = {"bm25": {"ndcg@10": 0.72}, "dense": {"ndcg@10": 0.61}}
    save_run(db, sid, "retrieval", beir_params, metrics, beir_details())
    old_cli = {**beir_params, "dataset": "old-cli"}
    save_run(db, sid, "retrieval", old_cli, metrics, {"dataset": "old-cli", "methods": metrics})
    foreign = json.loads(json.dumps(beir_details()).replace('"d', '"x'))
    save_run(db, sid, "retrieval", {**beir_params, "dataset": "elsewhere"}, metrics, foreign)
    save_run(db, sid, "retrieval", {**labels_run.params, "corpus_id": 999, "dataset": "other"},
             labels_run.metrics, labels_run.details)
    other_sid, _ = stored_corpus(db, texts, labels, session="t", name="copy", doc_ids=[f"d{i}" for i in range(N_DOCS)])
    save_run(db, other_sid, "retrieval", old_cli, metrics, {})
    db.close()
    return path


@pytest.fixture
def views_env(views_db, tmp_path, monkeypatch) -> Path:
    return use_copy_of(views_db, tmp_path, monkeypatch)


def open_tab(tab: str, state: dict | None = None, session: str = "s"):
    at = open_page(PAGE, session=session, state={"atlas_tab": tab, **(state or {})}, timeout=120)
    assert not at.exception, at.exception
    return at


def stored(env: Path):
    """(db, corpus info, the labels run, the BEIR-style run, embedding X, map coords) as stored."""
    from embedlab.embedding.cache import find_embedding
    from embedlab.runs import list_runs, load_run
    from embedlab.tasks import find_projection
    from storage import connect
    from storage.corpora import list_corpora
    from storage.matrices import load_matrix
    from storage.sessions import get_session_id

    db = connect(env)
    sid = get_session_id(db, "s")
    info = next(c for c in list_corpora(db, sid) if c.name == "news")
    runs = {r.dataset: load_run(db, r.id) for r in list_runs(db, sid, "retrieval")}
    X = load_matrix(db, find_embedding(db, info.content_hash, "tfidf-svd").id)
    proj = find_projection(db, info.id, "tfidf-svd", method="pca", n_components=2, n_neighbors=15, min_dist=0.1,
                           seed=42)
    return db, info, runs["news"], runs["toy-beir"], X, load_matrix(db, proj.id)


def ticks(m) -> list[str]:
    """The numeric legend's five ticks (lowest first)."""
    return [name for name, _ in m.layer["legend"][:5]]


def pick_run(at, dataset: str):
    box = at.selectbox(key="atlas_rmap_run")
    title = next(o for o in box.options if f"· {dataset} ·" in o)
    box.select(title).run()
    assert not at.exception, at.exception
    return at


# --- 🎯 Retrieval ------------------------------------------------------------------------------------------------


def test_only_runs_that_fit_the_corpus_are_offered_and_a_run_without_details_is_named(views_env):
    at = open_tab(RETRIEVAL)
    options = at.selectbox(key="atlas_rmap_run").options
    assert sorted(o.split(" · ", 1)[1] for o in options) == ["news · bm25, dense", "toy-beir · bm25, dense"]
    assert any("saved without per-query details" in c.value for c in at.caption)


def test_a_labels_query_is_drawn_at_its_own_place_with_its_relevant_documents_and_each_methods_marks(views_env):
    db, info, run, _, _, _ = stored(views_env)
    at = pick_run(open_tab(RETRIEVAL), "news")
    details = run.details
    rows = {f"d{i}": i for i in range(N_DOCS)}
    order = query_order(details, ["bm25", "dense"], "methods disagree most")
    qid = order[0][0]
    assert at.selectbox(key=f"atlas_rmap_query_{run.id}").value == qid
    shown = {m.label: m.value for m in at.metric}
    for m in ("bm25", "dense"):
        assert shown[f"nDCG@10 · {m}"] == f"{details['per_query'][m][qid]:.3f}"
    view = maps(at)["atlas_rmap_map"]
    assert view.layer["focus"] == rows[qid] and "★ query" in legend(view)     # the query document: the star
    ring = ringed(view)
    assert sorted(ring["relevant"]) == sorted(relevant_rows(details, qid, rows))
    for m, shape in (("bm25", "diamond"), ("dense", "square")):   # each method its own colour and shape
        marks = method_marks(details, m, qid, rows)
        assert ring.get(f"{m}: hit") == (marks.hits or None) and ring.get(f"{m}: miss") == (marks.misses or None)
        hits, misses = (rings(view).get(f"{m}: {kind}", []) for kind in ("hit", "miss"))
        assert {mk["shape"] for mk in hits + misses} == {shape}
        assert {mk["width"] for mk in hits} == {2.5} and {mk["width"] for mk in misses} == {1.5}  # hit: thick
    lists = [d.value for d in at.dataframe if "✓" in d.value.columns]
    assert len(lists) == 2
    for frame, m in zip(lists, ("bm25", "dense")):
        assert list(frame["doc_id"]) == [d for d, _ in details["rankings"][m][qid]]
        assert (frame["✓"] == "✓").sum() == len(method_marks(details, m, qid, rows).hits)
    assert any("its own place on the map" in c.value for c in at.caption)
    click(at, "atlas_rmap_map", 17)                  # a click on the view's map focuses the document
    assert not at.exception, at.exception
    assert at.session_state["atlas_focus"] == 17


def test_previous_and_next_step_through_the_chosen_order(views_env):
    _, _, run, _, _, _ = stored(views_env)
    at = pick_run(open_tab(RETRIEVAL), "news")
    q_key = f"atlas_rmap_query_{run.id}"
    disagree = [q for q, _ in query_order(run.details, ["bm25", "dense"], "methods disagree most")]
    assert at.button(key="atlas_rmap_prev").disabled
    at.button(key="atlas_rmap_next").click().run()
    assert at.selectbox(key=q_key).value == disagree[1]
    at.button(key="atlas_rmap_next").click().run()
    at.button(key="atlas_rmap_prev").click().run()
    assert at.selectbox(key=q_key).value == disagree[1]
    at.selectbox(key="atlas_rmap_order").select("worst first").run()
    assert not at.exception
    worst = query_order(run.details, ["bm25", "dense"], "worst first")
    assert at.selectbox(key=q_key).value == worst[0][0]
    shown = {m.label: m.value for m in at.metric}
    assert shown["nDCG@10 · dense"] == f"{run.details['per_query']['dense'][worst[0][0]]:.3f}"
    # one method: its own top 10, queries worst first
    at.multiselect(key=f"atlas_rmap_methods_{run.id}").unselect("dense").run()
    assert not at.exception
    assert [m.label for m in at.metric if m.label.startswith("nDCG@10")] == ["nDCG@10 · bm25"]


def test_a_beir_query_is_placed_at_the_mean_of_its_nearest_documents(views_env):
    from embedlab.embedding.space import EmbeddingSpace

    db, info, _, run, X, coords = stored(views_env)
    at = pick_run(open_tab(RETRIEVAL), "toy-beir")
    details = run.details
    qid = query_order(details, ["bm25", "dense"], "methods disagree most")[0][0]
    assert qid == "q2"                                # |0.39 − 1.0| is the largest difference
    vector = EmbeddingSpace.for_corpus(db, info.id, "tfidf-svd").encode([BEIR_QUERIES[qid]])[0]
    pos, _ = place_query(vector, X, coords)
    view = maps(at)["atlas_rmap_map"]
    assert drawn_at(view, coords)
    (placed,) = rings(view)["query q2 (placed)"]      # a mark at a position, not a document
    assert placed["index"] == -1 and placed["at"] == pytest.approx(normalised(coords, pos)[0].tolist(), abs=1e-4)
    assert view.layer["focus"] is None               # no document is the query
    # (the Plotly star carried its nearest document, near[0], as customdata; the WebGL mark is not clickable)
    assert ringed(view) == {"relevant": [1, 4], "bm25: miss": [7, 3], "bm25: hit": [1, 4], "dense: miss": [0, 2],
                            "dense: hit": [4]}
    assert {m.label: m.value for m in at.metric}["nDCG@10 · dense"] == "0.390"
    assert any("mean map position of the query's 10 nearest documents" in c.value for c in at.caption)


# --- 🗺️ Failure regions -------------------------------------------------------------------------------------------

KMEANS = {"atlas_cl_method": "kmeans", "atlas_cl_k": 4}


def expected_scores(X, texts, details, method, method_b=None):
    from embedlab.clusters import cluster, keyword_labels

    ids = cluster(X, method="kmeans", n_clusters=4)
    rows = {f"d{i}": i for i in range(N_DOCS)}
    assignment = query_clusters(details, rows, ids)
    return ids, assignment, cluster_scores(details, assignment, ids, keyword_labels(texts, ids), method, method_b)


def fail_table(at):
    return next(d.value for d in at.dataframe if "keywords" in d.value.columns and "queries" in d.value.columns)


def test_failure_regions_show_each_clusters_mean_ndcg_on_the_map_and_the_worst_clusters(views_env):
    _, _, run, _, X, _ = stored(views_env)
    at = open_tab(FAILURE, KMEANS)
    box = at.selectbox(key="atlas_fail_run")
    box.select(next(o for o in box.options if "· news ·" in o)).run()
    assert not at.exception
    ids, assignment, scores = expected_scores(X, corpus_texts()[0], run.details, "bm25")
    min_q = at.number_input(key="atlas_fail_min_queries").value
    want = worst_clusters(scores, min_queries=min_q)
    table = fail_table(at)
    assert table["cluster"].tolist() == [r["cluster"] for r in want]
    assert table["queries"].tolist() == [r["queries"] for r in want]
    assert table["size"].tolist() == [r["size"] for r in want]
    assert table["nDCG@10 bm25"].tolist() == pytest.approx([r["mean_ndcg"] for r in want])
    shown = {m.label: m.value for m in at.metric}
    assert shown["Queries counted"] == str(len(assignment))
    per_query = run.details["per_query"]["bm25"]
    assert shown["mean nDCG@10 · bm25"] == f"{np.mean([per_query[q] for q in assignment]):.3f}"
    view = maps(at)["atlas_fail_map"]
    values = cluster_values(ids, scores)
    assert np.isfinite(values).any()
    # each document in the colour of its cluster's mean nDCG@10 on one 0-to-1 scale; no query or noise: grey
    assert_numeric(view, "mean nDCG@10 · bm25", values, 0.0, 1.0)
    assert ticks(view) == ["0", "0.25", "0.5", "0.75", "1"]
    without = int(np.isnan(values).sum())
    assert legend(view).get(f"no query / noise ({without:,})") == (GREY if without else None)
    assert any("holds most of its relevant documents" in c.value for c in at.caption)
    # a smaller threshold lists every cluster with a query
    at.number_input(key="atlas_fail_min_queries").set_value(1).run()
    assert fail_table(at)["cluster"].tolist() == [r["cluster"] for r in worst_clusters(scores)]


def test_failure_regions_by_the_difference_of_two_methods(views_env):
    _, _, _, run, X, _ = stored(views_env)
    at = open_tab(FAILURE, KMEANS)
    box = at.selectbox(key="atlas_fail_run")
    box.select(next(o for o in box.options if "· toy-beir ·" in o)).run()
    at.segmented_control(key="atlas_fail_mode").set_value("difference B − A").run()
    assert not at.exception, at.exception
    assert at.selectbox(key=f"atlas_fail_a_{run.id}").value == "bm25"
    assert at.selectbox(key=f"atlas_fail_b_{run.id}").value == "dense"
    at.number_input(key="atlas_fail_min_queries").set_value(1).run()
    ids, assignment, scores = expected_scores(X, corpus_texts()[0], run.details, "bm25", "dense")
    want = worst_clusters(scores, difference=True)
    table = fail_table(at)
    assert table["cluster"].tolist() == [r["cluster"] for r in want]
    assert table["difference"].tolist() == pytest.approx([r["difference"] for r in want])
    assert table["nDCG@10 dense"].tolist() == pytest.approx([r["mean_ndcg_b"] for r in want])
    view = maps(at)["atlas_fail_map"]
    values = cluster_values(ids, scores, difference=True)
    span = max(0.05, float(np.nanmax(np.abs(values))))
    assert_numeric(view, "nDCG@10 dense − bm25", values, -span, span)     # centred on 0
    low, _, mid, _, high = ticks(view)
    assert mid == "0" and low == f"-{high}"
    assert (view.layer["palette"][0], view.layer["palette"][63]) == ("#b2182b", "#2166ac")   # red below, blue above


# --- without a map, without a run --------------------------------------------------------------------------------


@pytest.mark.parametrize("tab", [RETRIEVAL, FAILURE])
def test_without_a_map_the_views_ask_for_it_and_still_show_the_numbers(views_env, tab):
    at = open_tab(tab, {"atlas_method": "umap", **KMEANS})       # no UMAP map is stored
    assert any("Compute the map first" in i.value for i in at.info)
    assert any(m.label.startswith(("nDCG@10", "mean nDCG@10")) for m in at.metric)


@pytest.mark.parametrize("tab", [RETRIEVAL, FAILURE])
def test_a_session_without_a_fitting_run_says_how_to_get_one(views_env, tab):
    at = open_tab(tab, session="t")
    captions = [c.value for c in at.caption]
    assert any("No retrieval run of this session fits this corpus" in c for c in captions)
    assert any("saved without per-query details" in c for c in captions)


def test_a_picked_cluster_is_selected_on_the_map_until_show_all_clusters(views_env):
    from components.failure_regions_view import cluster_digest

    _, _, run, _, X, _ = stored(views_env)
    ids, _, scores = expected_scores(X, corpus_texts()[0], run.details, "bm25")
    worst = worst_clusters(scores)[0]["cluster"]
    members = np.flatnonzero(ids == worst).tolist()
    # what the table's row click stores (a Streamlit dataframe selection cannot be clicked in AppTest)
    at = open_tab(FAILURE, {**KMEANS, "atlas_fail_run": run.id, "atlas_fail_picked": (cluster_digest(ids), worst),
                            "atlas_selection": members})
    view = maps(at)["atlas_fail_map"]
    assert view.selected == members and np.flatnonzero(view.emphasis).tolist() == members   # the rest faded
    at.button(key="atlas_fail_unpick").click().run()
    assert not at.exception
    assert "atlas_fail_picked" not in at.session_state and at.session_state["atlas_selection"] == []
    assert not [b for b in at.button if b.key == "atlas_fail_unpick"]
    view = maps(at)["atlas_fail_map"]
    assert view.selected == [] and view.emphasis is None


@pytest.mark.parametrize("run_name", ["news", "toy-beir"])
def test_both_views_draw_on_a_3d_map(views_env, run_name):
    _, _, labels_run, beir_run, _, _ = stored(views_env)
    rid = (labels_run if run_name == "news" else beir_run).id
    for tab in (RETRIEVAL, FAILURE):
        at = open_tab(tab, {"atlas_dims": "3-D", "atlas_rmap_run": rid, "atlas_fail_run": rid, **KMEANS})
        specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
        assert len(specs) == 2 and all({t["type"] for t in s["data"]} == {"scatter3d"} for s in specs)
        assert not maps(at)                      # 3-D maps stay on Plotly
        names = {t.get("name") for t in specs[1]["data"]}
        if tab == RETRIEVAL:
            assert ("query" if run_name == "news" else "query q2 (placed)") in names and "relevant" in names
        else:
            assert "mean nDCG@10 · bm25" in names     # coloured by the clusters' mean nDCG@10 ...
            axis = specs[1]["layout"]["coloraxis"]
            assert (axis["cmin"], axis["cmax"]) == (0.0, 1.0)      # ... on the 0-to-1 scale of the 2-D map


def test_the_retrieval_pages_drill_down_opens_its_query_on_the_atlas(views_env):
    """"Show this query on the Atlas": the Atlas opens on the run's corpus, in the Retrieval tab, with the run, the
    drill-down's two methods and its query picked; a run of another corpus offers no such button."""
    from embedlab.runs import list_runs

    db, info, run, _, _, _ = stored(views_env)
    other = next(r for r in list_runs(db, run.session_id, "retrieval") if r.dataset == "other")
    db.close()
    rid = run.id
    at = open_page("pages/retrieval.py", session="s", state={"share_linked_run": {"retrieval": other.id}})
    assert not at.exception and not [b for b in at.button if b.key == f"retr-atlas-{other.id}"]
    at = open_page("pages/retrieval.py", session="s", state={"share_linked_run": {"retrieval": rid}}, timeout=120)
    qid = at.selectbox(key=f"retr-q-{rid}").value
    pair = [at.selectbox(key=f"retr-a-{rid}").value, at.selectbox(key=f"retr-b-{rid}").value]
    at.button(key=f"retr-atlas-{rid}").click().run()
    assert not at.exception, at.exception
    assert at.session_state["atlas_tab"] == "🎯 Retrieval" and at.selectbox(key="atlas_corpus").value == "news"
    assert at.selectbox(key="atlas_rmap_run").value == rid
    assert at.selectbox(key=f"atlas_rmap_query_{rid}").value == qid
    assert at.multiselect(key=f"atlas_rmap_methods_{rid}").value == pair


def test_a_link_carries_the_tabs_run_and_a_run_the_corpus_cannot_show_falls_back_with_a_toast(views_env):
    """Issue 21: the URL owns the view, the tab's run included: a link's run is the one on screen; a run this
    corpus cannot show (a BEIR run over ids it lacks) gives way to the latest one it can, a toast says so, and the
    URL names the run shown from the first run on."""
    from streamlit.testing.v1 import AppTest

    from embedlab.runs import list_runs
    from tests.builders import APP

    db, info, labels_run, beir_run, _, _ = stored(views_env)
    elsewhere = next(r for r in list_runs(db, labels_run.session_id, "retrieval") if r.dataset == "elsewhere")
    db.close()
    for tab, asked, shown in (("Retrieval", labels_run.id, labels_run.id), ("failure regions", elsewhere.id,
                                                                            beir_run.id)):
        at = AppTest.from_file(str(APP), default_timeout=120)
        at.switch_page(PAGE)
        at.query_params.update(session="s", corpus="news", tab=tab, run=str(asked))
        at.run()
        assert not at.exception, at.exception
        key = "atlas_rmap_run" if tab == "Retrieval" else "atlas_fail_run"
        assert at.selectbox(key=key).value == shown
        assert at.query_params["run"] == str(shown) and f"run={shown}" in at.sidebar.code[0].value
        toasts = [t.value for t in at.toast if t.value.startswith("Run #")]
        assert toasts == ([] if asked == shown else [f"Run #{asked} has nothing to show on “news”: showing run "
                                                     f"#{shown}."])
