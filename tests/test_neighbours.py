"""Exact cosine top-k against a brute-force argsort, and the map's far-neighbour flags."""
from __future__ import annotations

import numpy as np
import pytest

from embedlab.neighbours import far_on_map, l2_normalise, top_k


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    return l2_normalise(np.random.default_rng(0).standard_normal((500, 32)))


def brute(X, q, k, exclude=None):
    scores = X @ q
    if exclude is not None:
        scores[exclude] = -np.inf
    order = np.lexsort((np.arange(len(scores)), -scores))[:k]
    return order, scores[order]


@pytest.mark.parametrize("block", [7, 64, 499, 500, 65536])
def test_document_query_matches_brute_force_and_excludes_itself(X, block):
    idx, scores = top_k(X, 42, k=10, block=block)
    want_idx, want_scores = brute(X, X[42], 10, exclude=42)
    assert idx.shape == (10,) and scores.shape == (10,)
    assert 42 not in idx
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-6)
    assert np.all(np.diff(scores) <= 0)


def test_document_query_can_keep_itself(X):
    idx, scores = top_k(X, 42, k=3, exclude_self=False)
    assert idx[0] == 42 and scores[0] == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("block", [13, 65536])
def test_several_queries_vectors_and_indices(X, block):
    queries = np.array([0, 7, 499, 250])
    idx, scores = top_k(X, queries, k=5, block=block)
    assert idx.shape == (4, 5) and scores.shape == (4, 5)
    for row, q in enumerate(queries):
        want, _ = brute(X, X[q], 5, exclude=q)
        np.testing.assert_array_equal(idx[row], want)
    vidx, _ = top_k(X, X[queries], k=5, block=block)  # vectors: nothing to exclude
    assert (vidx[:, 0] == queries).all()
    one_idx, _ = top_k(X, X[3], k=5)
    assert one_idx.shape == (5,) and one_idx[0] == 3


def test_k_larger_than_corpus_is_capped():
    Xs = l2_normalise(np.random.default_rng(1).standard_normal((4, 8)))
    idx, scores = top_k(Xs, 0, k=10)
    assert sorted(idx.tolist()) == [1, 2, 3]
    idx, _ = top_k(Xs, Xs[0], k=10)
    assert len(idx) == 4


def test_bad_queries_raise(X):
    with pytest.raises(IndexError):
        top_k(X, 500)
    with pytest.raises(ValueError):
        top_k(X, np.zeros(31, dtype=np.float32))


def test_far_on_map_flags_neighbours_beyond_the_quantile():
    coords = np.stack([np.arange(100.0), np.zeros(100)], axis=1)  # points on a line, focus at one end
    flags = far_on_map(coords, 0, np.array([1, 50, 95, 99]), quantile=0.9)
    # distances from 0 are 1..99; their 0.9 quantile is 89.2: only 95 and 99 lie beyond it.
    assert flags.tolist() == [False, False, True, True]
    assert far_on_map(coords, 0, np.array([1, 50, 95]), quantile=0.4).tolist() == [False, True, True]
    assert far_on_map(coords[:2], 0, np.array([1])).tolist() == [False]
