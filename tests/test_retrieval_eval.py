"""Metrics against hand-computed cases, significance, timing and relevance filtering."""
from __future__ import annotations

import math

import numpy as np
import pytest

from embedlab.retrieval import TextSet, create_method
from embedlab.retrieval.evaluate import compare_to_baseline, drop_rows, evaluate_method, evaluate_run, to_run
from embedlab.retrieval.filtering import filter_report, relevance_filter


def dcg(gains):
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def test_ndcg_recall_mrr_map_binary_qrels_by_hand():
    qrels = {"q1": {"a": 1, "c": 1, "z": 1}, "q2": {"b": 1}}
    run = {"q1": {"a": 0.9, "b": 0.8, "c": 0.7, "d": 0.6}, "q2": {"a": 0.9, "c": 0.8, "b": 0.1}}
    r = evaluate_run(qrels, run)
    q1_ndcg = dcg([1, 0, 1]) / dcg([1, 1, 1])
    q2_ndcg = dcg([0, 0, 1]) / dcg([1])
    assert r.per_query["ndcg@10"]["q1"] == pytest.approx(q1_ndcg)
    assert r.per_query["ndcg@10"]["q2"] == pytest.approx(q2_ndcg)
    assert r.mean["ndcg@10"] == pytest.approx((q1_ndcg + q2_ndcg) / 2)
    assert r.per_query["recall@10"]["q1"] == pytest.approx(2 / 3)          # z was never retrieved
    assert r.mean["recall@100"] == pytest.approx((2 / 3 + 1) / 2)
    assert r.mean["mrr@10"] == pytest.approx((1 + 1 / 3) / 2)
    assert r.per_query["map@100"]["q1"] == pytest.approx((1 + 2 / 3) / 3)  # AP divides by all 3 relevant
    assert r.per_query["map@100"]["q2"] == pytest.approx(1 / 3)


def test_ndcg_graded_qrels_trec_eval_definition():
    # trec_eval: gain = relevance grade (not 2^rel - 1), discount log2(rank + 1), ideal from all judged documents.
    qrels = {"q": {"a": 2, "b": 1, "c": 0, "d": 3}}
    run = {"q": {"c": 4.0, "b": 3.0, "a": 2.0, "e": 1.0}}
    r = evaluate_run(qrels, run)
    assert r.mean["ndcg@10"] == pytest.approx(dcg([0, 1, 2, 0]) / dcg([3, 2, 1]))
    assert r.mean["recall@10"] == pytest.approx(2 / 3)        # relevance 0 is not relevant
    assert r.mean["mrr@10"] == pytest.approx(1 / 2)


def test_cutoffs_and_missing_queries():
    qrels = {"q1": {f"d{i}": 1 for i in (10, 150)}, "q2": {"x": 1}}
    run = {"q1": {f"d{i}": 1000.0 - i for i in range(200)}}                 # q2 has no results at all
    r = evaluate_run(qrels, run)
    assert r.per_query["recall@10"]["q1"] == 0.0
    assert r.per_query["recall@100"]["q1"] == 0.5
    assert r.per_query["mrr@10"]["q1"] == 0.0
    assert r.per_query["ndcg@10"]["q2"] == 0.0 and r.mean["recall@100"] == 0.25


def test_to_run_keeps_order_on_ties_and_skips_padding():
    run = to_run(np.array([[2, 0, -1]]), np.array([[1.0, 1.0, 0.0]]), ["q"], ["a", "b", "c"])
    assert list(run["q"]) == ["c", "a"] and run["q"]["c"] > run["q"]["a"]


def test_compare_to_baseline_gives_paired_p_values():
    rng = np.random.default_rng(0)
    qrels = {f"q{i}": {f"d{i}": 1} for i in range(40)}
    good = {f"q{i}": {f"d{i}": 2.0, "other": 1.0} for i in range(40)}
    bad = {f"q{i}": {"other": 2.0, f"d{i}": 1.0} if rng.random() < 0.8 else {f"d{i}": 2.0} for i in range(40)}
    out = compare_to_baseline(qrels, {"good": good, "bad": bad, "same": dict(good)}, "good")
    assert set(out) == {"bad", "same"}
    assert out["bad"]["ndcg@10"]["delta"] < 0 and out["bad"]["ndcg@10"]["significant"]
    assert out["same"]["ndcg@10"]["delta"] == 0 and not out["same"]["ndcg@10"]["significant"]


def test_evaluate_method_times_each_query_and_reports_everything():
    rng = np.random.default_rng(1)
    docs = rng.normal(size=(50, 8)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    corpus = TextSet.from_arrays(embeddings=docs, ids=[f"d{i}" for i in range(50)])
    queries = TextSet.from_arrays(embeddings=docs[:6] + 0.01, ids=[f"q{i}" for i in range(6)])
    qrels = {f"q{i}": {f"d{i}": 1} for i in range(6)}
    res = evaluate_method(create_method("dense"), corpus, queries, qrels, k=10)
    assert res.metrics["ndcg@10"] == pytest.approx(1.0) and res.metrics["recall@100"] == 1.0
    assert res.ms_per_query > 0 and res.build_s >= 0 and res.index_bytes == docs.nbytes
    assert res.ids.shape == (6, 10) and set(res.per_query["ndcg@10"]) == set(qrels)
    entry = res.summary()
    assert list(entry)[:5] == ["ndcg@10", "recall@100", "mrr@10", "ms_per_query", "index_bytes"]
    # Leaving the query document out (queries sampled from the corpus).
    res2 = evaluate_method(create_method("dense"), corpus, TextSet.from_arrays(embeddings=docs[:3],
                           ids=["a", "b", "c"]), {"a": {"d1": 1}}, k=5, exclude=np.array([0, 1, 2]))
    assert all(res2.ids[i, 0] != i for i in range(3)) and res2.ids.shape == (3, 5)


def test_drop_rows():
    ids, scores = drop_rows(np.array([[3, 1, 2], [0, 1, 2]]), np.array([[3., 2., 1.], [3., 2., 1.]]),
                            np.array([1, 7]), 2)
    assert ids.tolist() == [[3, 2], [0, 1]] and scores.tolist() == [[3., 1.], [3., 2.]]


def test_relevance_filter_threshold_and_relative_cut():
    ids = np.array([[0, 1, 2, 3], [4, 5, 6, -1]])
    scores = np.array([[0.9, 0.8, 0.4, 0.1], [0.5, 0.45, 0.2, 0.0]])
    keep = relevance_filter(ids, scores, min_score=0.42)
    assert keep.tolist() == [[True, True, False, False], [True, True, False, False]]
    keep = relevance_filter(ids, scores, min_fraction_of_top=0.85)
    assert keep.tolist() == [[True, True, False, False], [True, True, False, False]]
    keep = relevance_filter(ids, scores, min_fraction_of_top=0.3)
    assert keep.tolist() == [[True, True, True, False], [True, True, True, False]]
    assert relevance_filter(ids, scores).sum() == 7
    neg = relevance_filter(np.array([[0, 1]]), np.array([[-0.5, -0.6]]), min_fraction_of_top=0.9)
    assert neg.tolist() == [[True, False]]            # -0.6 < -0.5 / 0.9
    qrels = {"q0": {"d0": 1, "d2": 1, "d9": 1}, "q1": {"d9": 1}}
    rep = filter_report(ids, relevance_filter(ids, scores, min_score=0.42), ["q0", "q1"],
                        [f"d{i}" for i in range(10)], qrels)
    assert rep.precision == pytest.approx((1 / 2 + 0 / 2) / 2)
    assert rep.recall == pytest.approx((1 / 3 + 0) / 2)
    assert rep.micro_precision == pytest.approx(1 / 4) and rep.micro_recall == pytest.approx(1 / 4)
    assert rep.mean_kept == 2 and rep.n_empty == 0
