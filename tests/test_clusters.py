"""Clustering recovers planted blobs; c-TF-IDF labels name what a cluster is about."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from embedlab.clusters import cluster, cluster_table, default_min_cluster_size, keyword_labels
from embedlab.errors import InputError
from tests.builders import planted_blobs


def test_kmeans_recovers_blobs():
    X, truth = planted_blobs(60, 5, 384, 0.6)
    ids = cluster(X, method="kmeans", n_clusters=5, seed=0)
    assert ids.shape == truth.shape and ids.dtype == np.int64
    # k-means seeds 0-9 and data seeds 1-9 here: 1.000; two blobs merged into one: 0.78; random labels: -0.004-0.004
    assert adjusted_rand_score(truth, ids) > 0.9
    np.testing.assert_array_equal(ids, cluster(X, method="kmeans", n_clusters=5, seed=0))


def test_kmeans_with_more_clusters_than_documents():
    X, _ = planted_blobs(1, 3, 16, 0.1)
    assert sorted(cluster(X, method="kmeans", n_clusters=10).tolist()) == [0, 1, 2]


def test_hdbscan_on_map_coordinates_finds_the_islands():
    rng = np.random.default_rng(1)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=float)
    truth = np.repeat(np.arange(4), 50)
    coords = centres[truth] + rng.normal(scale=0.5, size=(200, 2))
    X = rng.standard_normal((200, 8))  # ignored when coordinates are given
    ids = cluster(X, method="hdbscan", coords=coords, min_cluster_size=10)
    kept = ids >= 0
    assert kept.mean() > 0.9  # data seeds 1-10 here: 1.000 kept, 4 clusters, ARI 1.000; random labels: ARI 0.00
    assert len(set(ids[kept])) == 4
    assert adjusted_rand_score(truth[kept], ids[kept]) > 0.95


def test_hdbscan_on_embeddings_without_coordinates():
    X, truth = planted_blobs(80, 4, 384, 0.5)
    ids = cluster(X, method="hdbscan")
    kept = ids >= 0
    # data seeds 0-9 here: 1.000 kept, ARI 1.000; on pure noise of the same shape: 0.17 kept (2 clusters)
    assert kept.mean() > 0.8
    assert adjusted_rand_score(truth[kept], ids[kept]) > 0.9


def test_tiny_inputs_do_not_crash():
    assert cluster(np.zeros((0, 4)), method="hdbscan").shape == (0,)
    assert cluster(np.ones((2, 4)), method="hdbscan").shape == (2,)
    assert cluster(np.ones((1, 4)), method="kmeans").tolist() == [0]
    assert default_min_cluster_size(100) == 10 and default_min_cluster_size(100_000) == 1500
    with pytest.raises(InputError, match="unknown clustering method 'dbscan'"):
        cluster(np.ones((5, 4)), method="dbscan")


CORPUS = [
    "the cat sat on the mat", "cats and kittens chase mice", "a cat purrs", "my cat naps all day",
    "stock market crash", "the stock market rallies", "bank raises interest rates", "stocks and bonds",
    "lorem", "ipsum",
]
IDS = np.array([0, 0, 0, 0, 1, 1, 1, 1, -1, -1])


def test_keyword_labels_name_each_cluster():
    labels = keyword_labels(CORPUS, IDS, top_n=2)
    assert labels[-1] == "noise"
    assert labels[0] == "cat, cats"  # "cat" 3 times; then ties at one count, in alphabetical order
    assert labels[1].split(", ")[0] == "market"
    assert set(labels) == {-1, 0, 1}


def test_keyword_labels_follow_the_ctfidf_formula():
    # class 0: apple x2, pear x1; class 1: apple x1, plum x3. A = 3.5 words per class.
    labels = keyword_labels(["apple apple pear", "apple plum plum plum"], np.array([0, 1]), top_n=3)
    # weights: class 0 apple 2/3*log(1+3.5/3)=0.515, pear 1/3*log(1+3.5)=0.501 -> apple first
    assert labels == {0: "apple, pear", 1: "plum, apple"}


def test_keyword_labels_of_stop_words_only_are_empty():
    assert keyword_labels(["the", "and a"], np.array([0, 1])) == {0: "", 1: ""}


def test_cluster_table_is_sorted_by_size():
    labels = keyword_labels(CORPUS, IDS)
    table = cluster_table(np.array([2, 0, 0, 2, 2, -1]), {0: "a", 2: "b", -1: "noise"})
    assert table == [{"cluster": 2, "size": 3, "keywords": "b"}, {"cluster": 0, "size": 2, "keywords": "a"},
                     {"cluster": -1, "size": 1, "keywords": "noise"}]
    assert [row["size"] for row in cluster_table(IDS, labels)] == [4, 4, 2]


def test_hdbscan_on_a_knn_graph_agrees_with_the_exact_one(monkeypatch):
    from sklearn.cluster import HDBSCAN

    from embedlab import clusters

    rng = np.random.default_rng(2)
    centres = rng.uniform(-20, 20, size=(12, 2))
    truth = rng.integers(0, 12, size=1500)
    coords = centres[truth] + rng.normal(size=(1500, 2)) * rng.uniform(0.3, 1.5, 12)[truth, None]
    coords[:5] = coords[5]  # duplicate points: zero distances
    exact = HDBSCAN(min_cluster_size=20, min_samples=10, copy=True).fit_predict(coords)
    monkeypatch.setattr(clusters, "EXACT_HDBSCAN_ROWS", 100)
    approx = cluster(np.zeros((1500, 1)), coords=coords, min_cluster_size=20)
    assert approx.max() == exact.max()  # equal for data seeds 2-11 here
    # data seeds 2-11 here: 0.997-1.000; random labels: 0.00 (a graph with min_samples one too high: 0.989-0.999)
    assert adjusted_rand_score(exact, approx) > 0.97


def test_knn_graph_joins_separate_islands():
    from scipy.sparse.csgraph import connected_components

    from embedlab.clusters import _knn_distance_graph

    rng = np.random.default_rng(3)
    islands = np.concatenate([rng.normal(size=(40, 2)) + offset for offset in ([0, 0], [100, 0], [0, 100], [300, 300])])
    graph = _knn_distance_graph(islands, k=5)
    assert connected_components(graph, directed=False)[0] == 1
    assert (graph != graph.T).nnz == 0


# --- readable defaults (issue 12) ------------------------------------------------------------------------------


def _islands(n: int, n_blobs: int, seed: int, spread: float) -> tuple[np.ndarray, np.ndarray]:
    """`n` map points in `n_blobs` Gaussian islands of varied size on a 2-D plane (a UMAP-like map)."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-30, 30, size=(n_blobs, 2))
    weights = rng.uniform(0.5, 2.0, n_blobs)
    truth = rng.choice(n_blobs, size=n, p=weights / weights.sum())
    return centres[truth] + rng.normal(scale=spread, size=(n, 2)), truth


@pytest.mark.parametrize("n", [1_000, 20_000])
def test_default_hdbscan_gives_a_readable_number_of_clusters(n):
    coords, truth = _islands(n, 12, seed=3, spread=1.0)
    ids = cluster(np.zeros((n, 1)), method="hdbscan", coords=coords)
    found = len(set(ids[ids >= 0].tolist()))
    # 12 planted islands (some touching): data seeds 0-4 here, 1k and 20k points: 10-12 clusters, 98.5-100 % kept,
    # ARI 0.83-1.00. Clear islands are easy (a smallest cluster of 5 found 9-11); AG News' real map is not (289).
    assert 5 <= found <= 40
    kept = ids >= 0
    assert kept.mean() > 0.8 and adjusted_rand_score(truth[kept], ids[kept]) > 0.8


def test_a_map_that_is_one_continent_is_still_cut_into_readable_clusters():
    # 30 touching blobs of one continent, as a UMAP map of news is: "eom" alone keeps one giant cluster
    rng = np.random.default_rng(5)
    centres = np.stack(np.meshgrid(np.arange(6), np.arange(5)), axis=-1).reshape(-1, 2) * 3.0
    truth = rng.integers(0, 30, 6_000)
    coords = centres[truth] + rng.normal(scale=1.0, size=(6_000, 2))
    ids = cluster(np.zeros((6_000, 1)), method="hdbscan", coords=coords)
    found = len(set(ids[ids >= 0].tolist()))
    sizes = np.bincount(ids[ids >= 0])
    assert 5 <= found <= 40
    assert sizes.max() <= 0.25 * len(ids) + 1  # no cluster swallows the map


def test_noise_joins_the_nearest_cluster_unless_far_away():
    from embedlab.clusters import assign_noise

    points = np.array([[0, 0], [0, 1], [1, 0], [10, 10], [10, 11], [11, 10], [0.5, 0.5], [10.4, 10.4], [100, 100]],
                      dtype=float)
    ids = np.array([0, 0, 0, 1, 1, 1, -1, -1, -1])
    assert assign_noise(points, ids).tolist() == [0, 0, 0, 1, 1, 1, 0, 1, -1]


def test_a_token_in_every_document_never_names_a_cluster():
    rng = np.random.default_rng(0)
    topics = {0: "rocket orbit nasa launch", 1: "goal match coach league", 2: "stock bank profit market"}
    texts, ids = [], []
    for i in range(120):
        c = i % 3
        words = rng.choice(topics[c].split(), size=3).tolist()
        # "reuters" in every document, "wire" in 40 % of them evenly: boilerplate, as "said" and "ap" on AG News
        texts.append(" ".join(["reuters", *words, "wire" if i % 5 < 2 else "", "reuters"]))
        ids.append(c)
    labels = keyword_labels(texts, np.array(ids), top_n=3)
    assert all("reuters" not in label.split(", ") and "wire" not in label.split(", ") for label in labels.values())
    assert labels[0].split(", ")[0] in topics[0].split() and labels[2].split(", ")[0] in topics[2].split()
    # with the rules switched off, "reuters" 4 times a document outweighs the topic words
    heavy = [t.replace("reuters", "reuters reuters") for t in texts]
    assert "reuters" in keyword_labels(heavy, np.array(ids), max_doc_share=None, min_lift=None)[0]
    assert "reuters" not in keyword_labels(heavy, np.array(ids))[0]


def test_keyword_labels_from_documents_match_the_joined_class_formula():
    # counting per document then summing per class gives BERTopic's counts on the joined class text
    texts = ["apple apple pear", "apple plum plum plum", "pear fig"]
    # class 0 "apple apple pear pear fig", A = 4.5: pear 0.4*log(1+4.5/2)=0.471, apple 0.4*log(2.5)=0.367, fig 0.341
    assert keyword_labels(texts, np.array([0, 1, 0]), top_n=2) == {0: "pear, apple", 1: "plum, apple"}
