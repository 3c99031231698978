"""Maps of embeddings: shapes, reproducibility, edge cases, quality on planted clusters, the large-n plan.

Tests that run UMAP are marked slow: numba compiles umap-learn's kernels once per process (10-40 s).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from embedlab import projection
from embedlab.errors import InputError
from embedlab.projection import (knn_overlap, project, projection_params, projection_plan,
                                 trustworthiness_score)


def blobs(n_per: int, n_blobs: int = 5, dim: int = 384, spread: float = 0.8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_blobs, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    truth = np.repeat(np.arange(n_blobs), n_per)
    return (centres[truth] + spread * rng.standard_normal((len(truth), dim)) / np.sqrt(dim)).astype(np.float32)


def blobs_only(Y: np.ndarray, n_per: int = 60, seed: int = 0) -> np.ndarray:
    """Y with its points shuffled within each blob of `blobs(n_per)`: a map that keeps the blobs apart but none of
    the neighbours inside them (what a layout that only separates clusters would score)."""
    rng = np.random.default_rng(seed)
    order = np.concatenate([start + rng.permutation(n_per) for start in range(0, len(Y), n_per)])
    return Y[order]


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    return blobs(60)  # 300 x 384


@pytest.fixture(scope="module")
def umap_map(X) -> np.ndarray:
    return project(X, method="umap", seed=7)


@pytest.mark.parametrize("method", ["pca", "tsne"])
@pytest.mark.parametrize("n_components", [2, 3])
def test_shapes_pca_tsne(X, method, n_components):
    Y = project(X[:60], method=method, n_components=n_components)
    assert Y.shape == (60, n_components) and Y.dtype == np.float32 and np.isfinite(Y).all()


@pytest.mark.slow
def test_umap_2d_and_3d(X, umap_map):
    assert umap_map.shape == (300, 2) and umap_map.dtype == np.float32 and np.isfinite(umap_map).all()
    Y3 = project(X[:100], method="umap", n_components=3, n_epochs=50)
    assert Y3.shape == (100, 3) and np.isfinite(Y3).all()


@pytest.mark.slow
def test_same_seed_same_umap_layout(X, umap_map):
    np.testing.assert_array_equal(project(X, method="umap", seed=7), umap_map)
    assert not np.array_equal(project(X, method="umap", seed=8), umap_map)


def test_same_seed_same_tsne_and_pca(X):
    np.testing.assert_array_equal(project(X[:60], method="tsne", seed=3), project(X[:60], method="tsne", seed=3))
    np.testing.assert_array_equal(project(X, method="pca"), project(X, method="pca"))


@pytest.mark.parametrize("method", [pytest.param("umap", marks=pytest.mark.slow), "pca", "tsne"])
@pytest.mark.parametrize("n", [0, 1, 2, 3, 10])
def test_tiny_inputs(X, method, n):
    Y = project(X[:n], method=method, n_components=2)
    assert Y.shape == (n, 2) and np.isfinite(Y).all()
    if n == 2:
        assert not np.array_equal(Y[0], Y[1])  # a line, so both points stay visible


@pytest.mark.slow
def test_clustered_data_gives_a_faithful_umap(X, umap_map):
    """UMAP seeds, BLAS builds and CPUs lay the points out differently: the kNN overlap is compared with that of
    the same map shuffled within its blobs, which a layout that keeps only the clusters would score."""
    trust = trustworthiness_score(X, umap_map, n_neighbors=10)
    overlap = knn_overlap(X, umap_map, k=10)
    # seeds 0-9, input jittered by 1e-5 and data seeds 1-3 here: 0.943-0.948; blobs only: 0.925-0.928; random: 0.49-0.51
    assert trust > 0.9
    # seeds 0-9, jitter and data seeds (NUMBA/OMP threads 1 or 2 alike): 0.306-0.342, 1.78-2.0x the blobs-only
    # shuffle (0.159-0.182); random layout: 0.032-0.035 (chance k / (n - 1) = 0.033). Seed 7 scores 0.329 here.
    assert overlap > 1.3 * knn_overlap(X, blobs_only(umap_map), k=10)


def test_clustered_data_gives_a_faithful_tsne(X):
    Y = project(X, method="tsne")
    # t-SNE starts from PCA, so its seed changes nothing; data seeds 1-5 and input jittered by 1e-5 here: 0.960-0.962;
    # blobs only: 0.927; random: 0.49-0.51
    assert trustworthiness_score(X, Y, n_neighbors=10) > 0.9
    # same runs: 0.397-0.425, 2.2-2.6x the blobs-only shuffle (0.164-0.184); random layout: 0.032-0.035
    assert knn_overlap(X, Y, k=10) > 1.5 * knn_overlap(X, blobs_only(Y), k=10)
    noise = np.random.default_rng(0).standard_normal((300, 2))
    assert knn_overlap(X, noise, k=10) < 0.1  # noise seeds 0-4: 0.032-0.035
    assert trustworthiness_score(X, noise, n_neighbors=10) < 0.7  # noise seeds 0-4: 0.49-0.51


def test_quality_metrics_on_a_perfect_map():
    Y = np.random.default_rng(3).standard_normal((500, 2))
    Z = Y / np.linalg.norm(Y, axis=1, keepdims=True)  # on the circle, cosine order = euclidean order
    assert knn_overlap(Z, Z, k=5) == 1.0
    assert trustworthiness_score(Z, Z, n_neighbors=5, sample=200) == pytest.approx(1.0)
    assert np.isnan(trustworthiness_score(Z[:2], Z[:2]))


def test_large_inputs_are_reduced_by_pca_first(X, monkeypatch):
    plan = projection_plan(100_000, 384)
    assert plan["pca_dims"] == 100 and plan["metric"] == "euclidean" and plan["n_epochs"] == 100
    assert projection_plan(30_000, 384)["n_epochs"] == 200
    assert projection_plan(4000, 384)["pca_dims"] is None and projection_plan(4000, 384)["metric"] == "cosine"
    assert projection_plan(100_000, 32)["pca_dims"] is None
    assert projection_plan(8000, 384)["n_epochs"] == 500 and projection_plan(8000, 384, n_epochs=9)["n_epochs"] == 9

    calls = []
    real_pca = projection._pca
    monkeypatch.setattr(projection, "PCA_MIN_ROWS", 100)
    monkeypatch.setattr(projection, "_pca", lambda A, d: calls.append((A.shape, d)) or real_pca(A, d))
    info: dict = {}
    project(X, method="pca", info=info)
    assert calls == [((300, 384), 2)] and info["pca_dims"] is None
    calls.clear()
    Y = project(X[:120], method="tsne", info=info)
    assert calls == [((120, 384), 100)]
    assert info["pca_dims"] == 100 and info["metric"] == "euclidean" and "PCA" in info["seconds"]
    assert Y.shape == (120, 2)
    calls.clear()
    project(X[:60], method="tsne", info=info)
    assert calls == [] and info["pca_dims"] is None


@pytest.mark.slow
def test_umap_uses_the_pca_plan(X, monkeypatch):
    monkeypatch.setattr(projection, "PCA_MIN_ROWS", 100)
    info: dict = {}
    Y = project(X, method="umap", n_epochs=30, info=info)
    assert info["pca_dims"] == 100 and info["metric"] == "euclidean" and "PCA" in info["seconds"]
    assert trustworthiness_score(X, Y) > 0.9  # seeds 0-9 and 42 here: 0.931-0.937; random layout: 0.49-0.51


@pytest.mark.slow
def test_umap_progress_reports_stages_and_epochs_in_order(X):
    seen = []
    project(X[:200], method="umap", n_epochs=40, progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and seen[-1] == (1.0, "done")
    assert any(m.startswith("layout: epoch") for _, m in seen)


def test_tsne_progress_reports_stages_in_order(X):
    seen = []
    project(X[:50], method="tsne", progress=lambda f, m: seen.append((f, m)))
    assert [m for _, m in seen] == ["t-SNE layout", "done"] and seen[-1] == (1.0, "done")


@pytest.mark.slow
def test_a_raising_progress_callback_stops_the_projection(X):
    def cancel(fraction, message):
        if message.startswith("layout"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        project(X[:100], method="umap", n_epochs=20, progress=cancel)


@pytest.mark.slow
def test_umap_with_its_own_knn_graph_above_the_small_data_size(monkeypatch):
    """The NN-descent path (used above EXACT_KNN_ROWS rows) on a smaller matrix: numba compiles it (~30 s)."""
    monkeypatch.setattr(projection, "UMAP_SMALL_DATA", 200)
    monkeypatch.setattr(projection, "EXACT_KNN_ROWS", 200)
    X = blobs(80)
    info: dict = {}
    Y = project(X, n_epochs=60, info=info)
    assert "kNN graph" in info["seconds"]
    assert trustworthiness_score(X, Y) > 0.9  # seeds 0-9 and 42 here: 0.929-0.932; random layout: 0.50
    np.testing.assert_array_equal(project(X, n_epochs=60), Y)


def test_exact_knn_graph_matches_brute_force_and_feeds_umap(monkeypatch):
    from sklearn.neighbors import NearestNeighbors

    X = np.random.default_rng(3).normal(size=(700, 12)).astype(np.float32)
    idx, dist = projection.exact_euclidean_knn(X, 15)
    ref_dist, ref_idx = NearestNeighbors(n_neighbors=15).fit(X).kneighbors(X)
    assert (idx[:, 0] == np.arange(700)).all() and np.allclose(dist[:, 0], 0, atol=1e-3)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-4, atol=1e-3)
    assert (idx == ref_idx).mean() > 0.999                 # equal up to exact ties
    monkeypatch.setattr(projection, "UMAP_SMALL_DATA", 200)   # the exact-graph path, on a small matrix
    Xb = blobs(80)
    info: dict = {}
    Y = project(Xb, n_epochs=60, info=info)
    assert "kNN graph" in info["seconds"]
    assert trustworthiness_score(Xb, Y) > 0.9


def test_params_are_stable_and_depend_on_the_method():
    umap = projection_params()
    assert umap == projection_params(method="UMAP", seed=42, n_neighbors=15.0, min_dist=0.1)
    assert umap["version"] == projection.PROJECTION_VERSION
    assert set(umap) == {"version", "method", "n_components", "seed", "n_neighbors", "min_dist", "metric",
                         "pca_dims"}
    assert json.loads(json.dumps(umap)) == umap
    pca = projection_params(method="pca", seed=1, perplexity=5)
    assert pca == projection_params(method="pca", seed=2) and "seed" not in pca
    tsne = projection_params(method="tsne")
    assert "perplexity" in tsne and "n_neighbors" not in tsne
    assert len({json.dumps(p, sort_keys=True) for p in (umap, pca, tsne)}) == 3
    assert projection_params(n_components=3) != umap and projection_params(n_epochs=100) != umap


def test_bad_input_is_refused(X):
    bad = X[:20].copy()
    bad[3, 5] = np.nan
    with pytest.raises(InputError, match="1 rows"):
        project(bad)
    with pytest.raises(InputError, match="unknown projection method 'mds'"):
        project(X, method="mds")
    with pytest.raises(InputError, match="2 or 3 dimensions"):
        project(X, n_components=4)
    for bad_option, message in (({"seed": -1}, "seed"), ({"n_neighbors": 1}, "n_neighbors"),
                                ({"min_dist": float("nan")}, "min_dist"), ({"perplexity": "x"}, "perplexity")):
        with pytest.raises(InputError, match=message):
            projection_params(**bad_option)


@pytest.mark.slow
def test_a_stop_request_during_epochs_leaves_tqdm_usable():
    """tqdm releases its global lock without try/finally: a callback raising inside its write must not leak it."""
    import threading

    from tqdm import tqdm

    X = np.random.default_rng(0).normal(size=(300, 16)).astype(np.float32)

    def stop(fraction, message):
        if message.startswith("layout"):
            raise KeyboardInterrupt("stop")

    with pytest.raises(KeyboardInterrupt):
        project(X, method="umap", progress=stop)
    done = threading.Event()
    threading.Thread(target=lambda: (tqdm(range(3), disable=True).close(), done.set()), daemon=True).start()
    assert done.wait(10), "tqdm's lock was left held"
