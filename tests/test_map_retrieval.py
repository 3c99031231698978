"""Retrieval runs on the map (embedlab.map_retrieval): which runs fit a corpus and the row of each of their ids,
query placement, hits and misses, query orders, and nDCG@10 aggregated by cluster, against hand-computed and
brute-force values."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from embedlab.map_retrieval import (best_methods, cluster_scores, cluster_values, corpus_keys, fit_run, has_details,
                                    method_marks, nearest_rows, place_query, query_clusters, query_order,
                                    ranked_rows, relevant_rows, run_doc_ids, run_title, worst_clusters)
from embedlab.runs import RetrievalRun, migrate

# A tiny corpus: 9 documents d0…d8; clusters 0 (d0-d2), 1 (d3-d5), noise (d6), 2 (d7), 3 (d8: no query).
DOC_IDS = [f"d{i}" for i in range(9)]
CLUSTERS = np.array([0, 0, 0, 1, 1, 1, -1, 2, 3])
KEYWORDS = {0: "sport", 1: "money", 2: "space", 3: "art"}


def details_labels() -> dict:
    """A labels-style run: its queries are documents of the corpus."""
    return {
        "dataset": "news", "n_queries": 5, "n_queries_shown": 5, "baseline": "bm25",
        "queries": {"d0": "q zero", "d3": "q three", "d4": "q four", "d6": "q six", "d7": "q seven"},
        "qrels": {"d0": {"d1": 1, "d2": 1, "d4": 1},           # clusters 0, 0, 1 -> 0
                  "d3": {"d4": 1, "d5": 1, "d0": 0},           # 1, 1 (d0 judged not relevant) -> 1
                  "d4": {"d1": 1, "d5": 1},                    # 0, 1: a tie -> the lower id, 0
                  "d6": {"d6": 1, "zz": 1},                    # noise and absent -> no cluster
                  "d7": {"d7": 1}},                            # 2
        "per_query": {"bm25": {"d0": 0.2, "d3": 0.5, "d4": 0.6, "d6": 0.1, "d7": 1.0},
                      "dense": {"d0": 0.8, "d3": 0.5, "d4": 0.2, "d6": 0.3, "d7": 0.9}},
        "rankings": {"bm25": {"d0": [["d1", 3.0], ["d5", 2.0], ["zz", 1.5], ["d2", 1.0]],
                              "d3": [["d4", 1.0]], "d4": [], "d6": [], "d7": [["d7", 1.0]]},
                     "dense": {"d0": [["d2", 0.9], ["d8", 0.5]], "d3": [], "d4": [], "d6": [], "d7": []}},
        "n_relevant": {"d0": 3, "d3": 2, "d4": 2, "d6": 2, "d7": 1},
        "docs": {},
    }


def run(details: dict | None, *, source: str = "labels", corpus_id: int = 7, dataset: str = "news",
        run_id: int = 1) -> RetrievalRun:
    params = {"source": source, "dataset": dataset, "methods": ["bm25", "dense"], "baseline": "bm25"}
    if source == "labels":
        params["corpus_id"] = corpus_id
    else:
        params["beir_dir"] = "../shared/data/beir-x"
    return RetrievalRun(id=run_id, session_id=1, kind="retrieval", created_at="then", params=params,
                        metrics={"bm25": {"ndcg@10": 0.48}, "dense": {"ndcg@10": 0.54}}, details=details or {})


ROWS = {d: i for i, d in enumerate(DOC_IDS)}


# --- which runs fit ---------------------------------------------------------------------------------------------


def test_a_labels_run_fits_its_corpus_and_maps_every_id_to_its_row():
    fit = fit_run(run(details_labels()), corpus_id=7, corpus_name="news", doc_ids=DOC_IDS)
    assert fit.fits and fit.source == "labels" and fit.title == "#1 · news · bm25, dense"
    # every id the run names but "zz" (documents and queries alike)
    assert fit.rows == {d: ROWS[d] for d in ["d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8"]}
    assert (fit.found, fit.total) == (9, 10) and fit.share == pytest.approx(0.9)


def test_a_labels_run_of_another_corpus_does_not_fit_but_a_copied_sessions_run_does():
    other = fit_run(run(details_labels(), corpus_id=3, dataset="other"), corpus_id=7, corpus_name="news",
                    doc_ids=DOC_IDS)
    assert not other.fits and "another corpus" in other.reason and other.rows == {}
    # a duplicated or imported session keeps the run's old corpus id, but the corpus's name and ids
    copied = fit_run(run(details_labels(), corpus_id=3), corpus_id=7, corpus_name="news", doc_ids=DOC_IDS)
    assert copied.fits


def test_labels_runs_name_documents_by_row_when_doc_ids_repeat():
    assert corpus_keys(["a", "b", "a"], source="labels") == {"0": 0, "1": 1, "2": 2}
    assert corpus_keys(["a", "b", "c"], source="labels") == {"a": 0, "b": 1, "c": 2}
    assert corpus_keys(["a", "b", "a"], source="beir") == {"a": 0, "b": 1}


def test_a_beir_run_fits_when_the_corpus_holds_90_percent_of_its_document_ids():
    ids = [str(1000 + 7 * i) for i in range(30)]            # a BEIR collection's own ids, shuffled into the corpus
    corpus = list(reversed(ids)) + ["extra"]
    judged = {"q1": {ids[i]: 1 for i in range(5)}, "q2": {ids[5]: 2, ids[6]: 0}}
    ranked = {"q1": [[ids[i], 1.0 - i / 10] for i in range(10, 20)], "q2": [[ids[i], 0.5] for i in range(20, 30)]}
    details = {"queries": {"q1": "a", "q2": "b"}, "qrels": judged, "rankings": {"dense": ranked},
               "per_query": {"dense": {"q1": 0.0, "q2": 0.1}}}
    fit = fit_run(run(details, source="beir", dataset="toy"), corpus_id=1, corpus_name="toy-corpus", doc_ids=corpus)
    assert fit.fits and fit.total == 27 and fit.found == 27       # 5 + 2 judged + 20 ranked; query ids never count
    assert all(corpus[row] == doc for doc, row in fit.rows.items())
    # drop 3 of the 27 from the corpus: 24/27 = 89 % < 90 %
    fewer = [d for d in corpus if d not in ids[27:30]]
    low = fit_run(run(details, source="beir"), corpus_id=1, corpus_name="c", doc_ids=fewer)
    assert not low.fits and low.found == 24 and "24 of its 27" in low.reason
    # 25/27 = 93 %
    assert fit_run(run(details, source="beir"), corpus_id=1, corpus_name="c",
                   doc_ids=[d for d in corpus if d not in ids[28:30]]).fits


def test_runs_without_per_query_details_never_fit_and_say_why():
    cli_json = {"dataset": "scifact", "methods": {"bm25": {"ndcg@10": 0.6}}}  # an older bench-retrieval --session
    for details in (None, {}, cli_json, {**details_labels(), "rankings": {}}):
        assert not has_details(details)
        fit = fit_run(run(details), corpus_id=7, corpus_name="news", doc_ids=DOC_IDS)
        assert not fit.fits and fit.reason == "no per-query details"
    assert has_details(details_labels())
    params, metrics, details, _ = migrate("retrieval", {}, {"bm25": {}}, cli_json)       # an old run, as read
    old = RetrievalRun(id=4, session_id=1, kind="retrieval", created_at="then", params=params, metrics=metrics,
                       details=details)
    assert run_title(old) == "#4 · scifact · bm25"


def test_run_doc_ids_lists_ranked_and_judged_ids_once():
    ids = run_doc_ids(details_labels())
    assert len(ids) == len(set(ids)) and set(ids) == {"d1", "d5", "zz", "d2", "d4", "d7", "d8", "d0", "d6"}
    assert set(run_doc_ids(details_labels(), with_queries=True)) == set(ids) | {"d3"}


# --- one query -------------------------------------------------------------------------------------------------


def test_hits_and_misses_follow_the_judgements_and_skip_absent_documents():
    d = details_labels()
    marks = method_marks(d, "bm25", "d0", ROWS)
    assert (marks.hits, marks.misses, marks.absent, marks.ndcg) == ([1, 2], [5], 1, 0.2)
    dense = method_marks(d, "dense", "d0", ROWS)
    assert (dense.hits, dense.misses, dense.absent) == ([2], [8], 0)
    assert method_marks(d, "bm25", "d3", ROWS).hits == [4]          # d0 is judged 0: never relevant
    assert relevant_rows(d, "d0", ROWS) == [1, 2, 4]
    assert relevant_rows(d, "d3", ROWS) == [4, 5]
    assert relevant_rows(d, "d6", ROWS) == [6]                       # "zz" is not in the corpus
    rows = ranked_rows(d, "bm25", "d0", ROWS)
    assert [(r["rank"], r["relevant"], r["doc_id"], r["row"]) for r in rows] == [
        (1, "✓", "d1", 1), (2, "", "d5", 5), (3, "", "zz", None), (4, "✓", "d2", 2)]


def test_query_orders():
    d = details_labels()
    # dense − bm25: d0 +0.6, d3 0, d4 −0.4, d6 +0.2, d7 −0.1
    disagree = query_order(d, ["bm25", "dense"], "methods disagree most")
    assert [q for q, _ in disagree] == ["d0", "d4", "d6", "d7", "d3"]
    assert dict(disagree)["d4"] == pytest.approx(-0.4)
    # means: d0 0.5, d3 0.5, d4 0.4, d6 0.2, d7 0.95; the tie d0/d3 keeps the run's order
    worst = query_order(d, ["bm25", "dense"], "worst first")
    assert [q for q, _ in worst] == ["d6", "d4", "d0", "d3", "d7"]
    assert [q for q, _ in query_order(d, ["bm25"], "worst first")] == ["d6", "d0", "d3", "d4", "d7"]
    in_run = query_order(d, ["bm25", "dense"], "run order")
    assert [q for q, _ in in_run] == ["d0", "d3", "d4", "d6", "d7"] and dict(in_run)["d7"] == pytest.approx(0.95)
    with pytest.raises(ValueError):
        query_order(d, ["bm25"], "methods disagree most")
    with pytest.raises(ValueError):
        query_order(d, ["bm25"], "alphabetical")


def test_the_default_methods_are_the_baseline_and_the_best_other():
    metrics = {"bm25": {"ndcg@10": 0.3}, "dense": {"ndcg@10": 0.5}, "hnsw": {"ndcg@10": 0.6},
               "binary": {"ndcg@10": None}}
    assert best_methods(metrics, "bm25", list(metrics)) == ["bm25", "hnsw"]
    assert best_methods(metrics, "missing", ["dense", "bm25"]) == ["dense", "bm25"]
    assert best_methods(metrics, "bm25", ["bm25"]) == ["bm25"]
    assert best_methods(metrics, "bm25", []) == []


def test_a_beir_query_is_placed_at_the_mean_position_of_its_nearest_documents():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 16)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    coords = rng.normal(size=(200, 2))
    q = rng.normal(size=16)
    brute = np.argsort(-(X @ (q / np.linalg.norm(q))), kind="stable")[:10]
    assert nearest_rows(q, X, 10).tolist() == brute.tolist()
    pos, near = place_query(q, X, coords, 10)
    assert near.tolist() == brute.tolist()
    assert pos == pytest.approx(coords[brute].mean(axis=0))
    pos3, _ = place_query(q, X, rng.normal(size=(200, 3)), 10)
    assert pos3.shape == (3,)
    assert nearest_rows(q, X[:4], 10).shape == (4,)            # fewer documents than k


# --- failure regions -------------------------------------------------------------------------------------------


def test_each_query_counts_in_the_cluster_of_most_of_its_relevant_documents():
    assert query_clusters(details_labels(), ROWS, CLUSTERS) == {"d0": 0, "d3": 1, "d4": 0, "d7": 2}


def test_cluster_means_worst_table_and_map_values_by_hand():
    d = details_labels()
    assignment = query_clusters(d, ROWS, CLUSTERS)
    one = cluster_scores(d, assignment, CLUSTERS, KEYWORDS, "bm25")
    assert one == [
        {"cluster": 0, "keywords": "sport", "size": 3, "queries": 2, "mean_ndcg": pytest.approx(0.4)},
        {"cluster": 1, "keywords": "money", "size": 3, "queries": 1, "mean_ndcg": pytest.approx(0.5)},
        {"cluster": 2, "keywords": "space", "size": 1, "queries": 1, "mean_ndcg": pytest.approx(1.0)},
        {"cluster": 3, "keywords": "art", "size": 1, "queries": 0, "mean_ndcg": None}]
    assert [r["cluster"] for r in worst_clusters(one)] == [0, 1, 2]
    assert [r["cluster"] for r in worst_clusters(one, min_queries=2)] == [0]
    values = cluster_values(CLUSTERS, one)
    assert np.allclose(values, [0.4, 0.4, 0.4, 0.5, 0.5, 0.5, np.nan, 1.0, np.nan], equal_nan=True)

    two = cluster_scores(d, assignment, CLUSTERS, KEYWORDS, "bm25", "dense")
    # dense: cluster 0 (0.8 + 0.2) / 2 = 0.5, cluster 1 0.5, cluster 2 0.9
    assert [r["mean_ndcg_b"] for r in two[:3]] == pytest.approx([0.5, 0.5, 0.9])
    assert [r["difference"] for r in two[:3]] == pytest.approx([0.1, 0.0, -0.1])
    assert two[3]["difference"] is None
    # worst: where dense (B) falls furthest below bm25 (A)
    assert [r["cluster"] for r in worst_clusters(two, difference=True)] == [2, 1, 0]
    diff = cluster_values(CLUSTERS, two, difference=True)
    assert np.allclose(diff, [0.1] * 3 + [0.0] * 3 + [np.nan, -0.1, np.nan], equal_nan=True)


def test_cluster_aggregation_matches_a_brute_force_count_on_random_data():
    rng = np.random.default_rng(11)
    n, n_q = 300, 80
    ids = [f"doc{i}" for i in range(n)]
    clusters = rng.integers(-1, 7, size=n)
    queries = {f"q{i}": "t" for i in range(n_q)}
    qrels = {q: {ids[j]: int(rng.integers(0, 3)) for j in rng.choice(n, size=rng.integers(1, 8), replace=False)}
             for q in queries}
    per_query = {m: {q: float(rng.random()) for q in queries} for m in ("a", "b")}
    details = {"queries": queries, "qrels": qrels, "per_query": per_query, "rankings": {"a": {}, "b": {}}}
    rows = {d: i for i, d in enumerate(ids)}
    assignment = query_clusters(details, rows, clusters)

    expected = {}
    for q, judged in qrels.items():
        counts = Counter(int(clusters[rows[d]]) for d, rel in judged.items() if rel > 0 and clusters[rows[d]] >= 0)
        if counts:
            top = max(counts.values())
            expected[q] = min(c for c, k in counts.items() if k == top)
    assert assignment == expected

    table = cluster_scores(details, assignment, clusters, {}, "a", "b")
    for row in table:
        members = [q for q, c in expected.items() if c == row["cluster"]]
        assert row["size"] == int((clusters == row["cluster"]).sum())
        assert row["queries"] == len(members)
        if members:
            assert row["mean_ndcg"] == pytest.approx(np.mean([per_query["a"][q] for q in members]))
            assert row["difference"] == pytest.approx(np.mean([per_query["b"][q] - per_query["a"][q]
                                                               for q in members]))
    worst = worst_clusters(table)
    assert [r["mean_ndcg"] for r in worst] == sorted(r["mean_ndcg"] for r in table if r["queries"])
    values = cluster_values(clusters, table)
    by_cluster = {r["cluster"]: r["mean_ndcg"] for r in table if r["queries"]}
    for i in range(n):
        want = by_cluster.get(int(clusters[i]))
        assert (np.isnan(values[i]) if want is None else values[i] == pytest.approx(want))
