"""The approximate neighbour index of large corpora (embedlab.ann): recall against exact search on a clustered set,
a persisted round trip under the embedding's key, exact search below the threshold, the neighbour panel's rows."""
from __future__ import annotations

import numpy as np
import pytest

from embedlab import ann
from embedlab.ann import (ANN_MIN_ROWS, ann_cache_key, build_index, index_params, load_index, recall_at_k,
                          save_index, stored_or_built, use_index)
from embedlab.nearest_documents import neighbour_rows
from embedlab.neighbours import l2_normalise, top_k
from storage import connect
from storage.matrices import delete_orphan_matrices, list_matrices, save_matrix


def clustered(n: int = 6000, dim: int = 48, centres: int = 40, seed: int = 0) -> np.ndarray:
    """Unit vectors around `centres` centres with a low-dimensional spread inside each (as embeddings are)."""
    rng = np.random.default_rng(seed)
    C = rng.standard_normal((centres, dim)).astype(np.float32)
    basis = rng.standard_normal((centres, 6, dim)).astype(np.float32) * 0.3
    which = rng.integers(0, centres, size=n)
    X = C[which] + np.einsum("nk,nkd->nd", rng.standard_normal((n, 6)).astype(np.float32), basis[which])
    X += 0.05 * rng.standard_normal((n, dim)).astype(np.float32)
    return l2_normalise(X)


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    return clustered()


@pytest.fixture(scope="module")
def index(X) -> ann.IvfIndex:
    return build_index(X, nlist=64, nprobe=8)


def test_every_row_is_in_exactly_one_list(X, index):
    assert sorted(index.order.tolist()) == list(range(len(X)))
    assert index.offsets[0] == 0 and index.offsets[-1] == len(X) and np.all(np.diff(index.offsets) >= 0)
    assert index.centroids.shape == (64, X.shape[1])
    np.testing.assert_allclose(np.linalg.norm(index.centroids, axis=1), 1.0, atol=1e-5)


def test_recall_at_10_against_brute_force(X, index):
    queries = np.random.default_rng(1).integers(0, len(X), size=200)
    assert recall_at_k(X, index, queries, k=10) >= 0.95
    idx, scores = index.search(X, int(queries[0]), k=10)
    assert int(queries[0]) not in idx.tolist()
    assert np.all(np.diff(scores) <= 0)                         # best first
    np.testing.assert_allclose(scores, X[idx] @ X[int(queries[0])], rtol=1e-5)


def test_probing_every_list_is_exact(X, index):
    for q in (0, 17, 4321):
        exact_idx, exact_scores = top_k(X, q, k=10)
        idx, scores = index.search(X, q, k=10, nprobe=64)
        np.testing.assert_allclose(scores, exact_scores, rtol=1e-5)
        assert set(idx.tolist()) == set(exact_idx.tolist())


def test_a_vector_query(X, index):
    idx, _ = index.search(X, X[5] * 3.0, k=5, exclude_self=False)
    assert idx[0] == 5


def test_persisted_round_trip_under_the_embeddings_key(tmp_path, X, index):
    db = connect(tmp_path / "ann.sqlite")
    save_matrix(db, X, cache_key="emb-key", kind="embedding", content_hash="h1")
    assert load_index(db, embedding_key="emb-key", n=len(X), params=index.params) is None
    save_index(db, index, embedding_key="emb-key", content_hash="h1")
    back = load_index(db, embedding_key="emb-key", n=len(X), params=index.params)
    assert back is not None and back.params == index.params
    np.testing.assert_array_equal(back.order, index.order)
    np.testing.assert_array_equal(back.offsets, index.offsets)
    np.testing.assert_array_equal(back.centroids, index.centroids)
    assert load_index(db, embedding_key="other-key", n=len(X), params=index.params) is None
    assert load_index(db, embedding_key="emb-key", n=len(X) + 1, params=index.params) is None
    # never listed as a matrix of the corpus (so never exported), dropped with the corpus's matrices
    assert [m.cache_key for m in list_matrices(db, "h1")] == ["emb-key"]
    delete_orphan_matrices(db, {"h1"})
    assert db.execute("SELECT COUNT(*) FROM matrices").fetchone()[0] == 0


def test_stored_or_built_builds_once(tmp_path, X, monkeypatch):
    db = connect(tmp_path / "ann.sqlite")
    save_matrix(db, X, cache_key="emb", kind="embedding", content_hash="h")
    monkeypatch.setattr(ann, "TRAIN_ROWS", 2000)
    first = stored_or_built(db, X, embedding_key="emb")
    built = []
    monkeypatch.setattr(ann, "build_index", lambda *a, **k: built.append(1))
    again = stored_or_built(db, X, embedding_key="emb")
    assert not built
    np.testing.assert_array_equal(first.order, again.order)


def test_keys_depend_on_embedding_and_params():
    p = index_params(1_000_000)
    assert p["nlist"] == 1000 and p["nprobe"] == ann.NPROBE
    assert ann_cache_key("a", p) != ann_cache_key("b", p)
    assert ann_cache_key("a", p) != ann_cache_key("a", index_params(1_000_000, nprobe=4))
    assert ann_cache_key("a", p) == ann_cache_key("a", dict(reversed(list(p.items()))))


def test_exact_below_the_threshold_approximate_above():
    assert not use_index(ANN_MIN_ROWS - 1) and use_index(ANN_MIN_ROWS)


def test_neighbour_rows_use_the_index_when_given(X, index):
    exact = neighbour_rows(X, None, 3, k=10)
    approx = neighbour_rows(X, None, 3, k=10, index=index)
    assert [r["rank"] for r in approx] == list(range(1, 11))
    assert len({r["idx"] for r in exact} & {r["idx"] for r in approx}) >= 8
    assert all(r["idx"] != 3 for r in approx)
