"""How compression moves neighbours: the engine against brute-force recomputations on small data."""
from __future__ import annotations

import numpy as np
import pytest

from embedlab.compression_neighbours import (
    EXACT,
    build_method,
    corpus_exact,
    corpus_overlaps,
    default_dims,
    exact_neighbours,
    focus_neighbours,
    layer_methods,
    method_neighbours,
    overlap_at_k,
    sample_rows,
    worst_documents,
)
from tests.builders import planted_blobs

K = 10


def unit(X: np.ndarray) -> np.ndarray:
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    return unit(np.random.default_rng(1).standard_normal((300, 64)))


@pytest.fixture(scope="module")
def blobs() -> np.ndarray:
    X, _ = planted_blobs(60, n_blobs=5, dim=64, spread=0.8, seed=3)
    return unit(X)


def brute_exact(X: np.ndarray, row: int, k: int = K) -> list[int]:
    s = X @ X[row]
    s[row] = -np.inf
    return sorted(range(len(X)), key=lambda j: (-s[j], j))[:k]


def brute_binary(X: np.ndarray, row: int, k: int = K, multiplier: int = 4) -> list[int]:
    """binary-rescore as the method does it, recomputed with plain numpy: sign bits, Hamming distance to every
    document, the (k + 1) * multiplier nearest (ties to the lower row) rescored by the float query against int8
    documents (sentence-transformers' bucket starts), best k + 1, the document itself dropped."""
    bits = X > 0
    hamming = (bits != bits[row]).sum(axis=1)
    n_cand = min(len(X), (k + 1) * multiplier)
    cand = sorted(range(len(X)), key=lambda j: (hamming[j], j))[:n_cand]
    lo, hi = X.min(axis=0), X.max(axis=0)
    steps = np.where((hi - lo) / 255 == 0, 1, (hi - lo) / 255)
    codes = np.clip(np.floor((X - lo) / steps), 0, 255)          # uint8 codes; int8 = codes - 128
    dequant = codes * steps + lo
    scores = {j: float(dequant[j] @ X[row]) for j in cand}
    ranked = sorted(cand, key=lambda j: (-scores[j], j))[:k + 1]
    return [j for j in ranked if j != row][:k]


def brute_matryoshka(X: np.ndarray, row: int, dims: int, k: int = K) -> list[int]:
    T = X[:, :dims] / np.linalg.norm(X[:, :dims], axis=1, keepdims=True)
    return brute_exact(T, row, k)


def test_exact_dense_overlaps_itself_fully(noise):
    rows = np.arange(len(noise))
    ids, _ = method_neighbours(build_method("dense", noise), noise, rows)
    assert np.array_equal(ids, exact_neighbours(noise, rows)[0])
    assert np.all(overlap_at_k(ids, exact_neighbours(noise, rows)[0]) == 1.0)
    assert focus_neighbours(noise, 7, {"dense": build_method("dense", noise)})["dense"]["overlap"] == 1.0


def test_exact_neighbours_match_brute_force_and_leave_the_document_out(noise):
    ids = corpus_exact(noise)
    for row in (0, 5, 123, 299):
        assert ids[row].tolist() == brute_exact(noise, row)
    assert not (ids == np.arange(len(noise))[:, None]).any()


def test_binary_rescore_matches_a_brute_force_recomputation(noise):
    method = build_method("binary-rescore", noise)
    rows = np.array([0, 3, 42, 150, 299])
    ids, _ = method_neighbours(method, noise, rows)
    for r, got in zip(rows, ids):
        assert got.tolist() == brute_binary(noise, int(r))


def test_matryoshka_matches_a_brute_force_recomputation(noise):
    method = build_method("matryoshka-16", noise)
    rows = np.array([1, 77, 200])
    ids, _ = method_neighbours(method, noise, rows)
    for r, got in zip(rows, ids):
        assert got.tolist() == brute_matryoshka(noise, int(r), 16)
    ex = exact_neighbours(noise, rows)[0]
    expected = [len(set(brute_matryoshka(noise, int(r), 16)) & set(e.tolist())) / K for r, e in zip(rows, ex)]
    assert np.allclose(overlap_at_k(ids, ex), expected)


def test_the_document_itself_is_never_its_own_neighbour(noise, blobs):
    # every method ranks a document first for itself: without the exclusion each list would start with it
    for X in (noise, blobs):
        rows = np.arange(0, len(X), 7)
        for name in ("dense", *layer_methods(16)):
            ids, _ = method_neighbours(build_method(name, X), X, rows)
            assert ids.shape == (len(rows), K)
            assert not (ids == rows[:, None]).any(), name
    # and the exact reference agrees with the brute force that drops the document
    assert corpus_exact(noise, np.array([9]))[0].tolist() == brute_exact(noise, 9)


def test_int8_keeps_neighbours_on_structured_data_and_binary_loses_more(blobs):
    layers = corpus_overlaps(blobs, ["int8-rescore", "binary-rescore"])
    assert layers["int8-rescore"].mean() > 0.9
    assert layers["binary-rescore"].mean() < layers["int8-rescore"].mean()
    assert all(v.shape == (len(blobs),) and v.min() >= 0 and v.max() <= 1 for v in layers.values())


def test_corpus_layer_equals_the_focus_numbers(blobs):
    names = layer_methods(default_dims(blobs.shape[1]))
    assert names == ["int8-rescore", "binary-rescore", "matryoshka-32"]
    layers = corpus_overlaps(blobs, names)
    methods = {name: build_method(name, blobs) for name in names}
    for row in (0, 61, 299):
        focus = focus_neighbours(blobs, row, methods)
        assert focus[EXACT]["ids"].tolist() == brute_exact(blobs, row)
        for name in names:
            assert focus[name]["overlap"] == pytest.approx(float(layers[name][row]))


def test_sampled_layer_equals_the_full_layer_on_its_rows(blobs):
    rows = sample_rows(len(blobs), 50, seed=0)
    assert len(rows) == 50 and np.all(np.diff(rows) > 0)
    assert np.array_equal(sample_rows(len(blobs), 50, seed=0), rows)
    full = corpus_overlaps(blobs, ["binary-rescore"])["binary-rescore"]
    part = corpus_overlaps(blobs, ["binary-rescore"], rows)["binary-rescore"]
    assert np.array_equal(part, full[rows])


def test_maxsim_on_token_embeddings_leaves_the_document_out():
    rng = np.random.default_rng(5)
    lengths = rng.integers(2, 6, size=40)
    data = unit(rng.standard_normal((int(lengths.sum()), 16)))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    X = unit(np.stack([data[offsets[i]:offsets[i + 1]].mean(axis=0) for i in range(40)]))
    method = build_method("maxsim", X, tokens=(data, offsets))
    from embedlab.retrieval.base import TokenMatrix

    tokens = TokenMatrix(data, offsets)
    result = focus_neighbours(X, 3, {"maxsim": method}, tokens=tokens)
    got = result["maxsim"]["ids"].tolist()
    q = data[offsets[3]:offsets[4]]
    score = [float((q @ data[offsets[j]:offsets[j + 1]].T).max(axis=1).sum()) for j in range(40)]
    expected = [j for j in sorted(range(40), key=lambda j: (-score[j], j)) if j != 3][:K]
    assert got == expected


def test_worst_documents_lowest_first_ties_by_row():
    assert worst_documents(np.array([0.5, 0.1, 0.9, 0.1]), 3).tolist() == [1, 3, 0]


def test_small_corpus_caps_k():
    X = unit(np.random.default_rng(0).standard_normal((5, 8)))
    ids, _ = method_neighbours(build_method("int8-rescore", X), X, np.arange(5))
    assert ids.shape == (5, 4) and not (ids == np.arange(5)[:, None]).any()
    assert np.all(overlap_at_k(ids, exact_neighbours(X, np.arange(5))[0]) == 1.0)
