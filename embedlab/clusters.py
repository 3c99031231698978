"""Clusters of documents (HDBSCAN or k-means) and their keyword labels (class-based TF-IDF)."""
from __future__ import annotations

import numpy as np

from embedlab.errors import InputError
from embedlab.neighbours import l2_normalise

CLUSTER_METHODS = ("hdbscan", "kmeans")
# k-means switches to MiniBatchKMeans above this many documents.
MINIBATCH_ROWS = 50_000
# k-means restarts: "auto" means one k-means++ start, which merged two of five clear blobs in 2 of 20 trials
# of the tests' data; three starts found all five every time, and cost little.
KMEANS_STARTS = 3
# Words of two or more characters with at least one letter: pure numbers ("2004", the "39" of "&#39;")
# made poor keywords on AG News.
KEYWORD_TOKEN = r"(?u)\b(?=\w*[^\W\d_])\w\w+\b"
# Above this many points HDBSCAN runs on a kNN graph of KNN_GRAPH_K neighbours (see _knn_distance_graph).
EXACT_HDBSCAN_ROWS = 5000
KNN_GRAPH_K = 30
# HDBSCAN without map coordinates runs on a PCA of the embeddings with this many dimensions at most.
HDBSCAN_DIMS = 10


def default_min_cluster_size(n: int) -> int:
    """HDBSCAN's smallest cluster: 0.5 % of the corpus, at least 5 (200 clusters at most in principle)."""
    return int(max(5, round(0.005 * n)))


def cluster(X: np.ndarray, *, method: str = "hdbscan", n_clusters: int = 10, min_cluster_size: int | None = None,
            seed: int = 0, coords: np.ndarray | None = None) -> np.ndarray:
    """A cluster id per document (int64); HDBSCAN marks noise with -1.

    HDBSCAN runs on the map coordinates when `coords` is given, as BERTopic and Latent Scope do on UMAP
    output: density is meaningful in a few dimensions and not in 384 (distances concentrate), and it is
    fast. The clusters are then the islands a user sees. Above EXACT_HDBSCAN_ROWS points it runs on a
    kNN graph (see `_knn_distance_graph`): 100k points in 13 s instead of 230 s on a busy 2-core machine,
    with the same clusters (ARI 0.998 against the exact result on 8,000 points). Without coordinates it
    runs on the first HDBSCAN_DIMS principal components of the L2-normalised embeddings, which finds far
    less (AG News: 2 clusters and 75 % noise, against 37 clusters and 25 % noise on the UMAP map).
    Fewer documents than the minimum cluster size are all noise.
    k-means always runs on the L2-normalised embeddings (KMEANS_STARTS starts; MiniBatchKMeans above
    MINIBATCH_ROWS documents), so its clusters are those of the embedding space, not of the map.
    """
    method = str(method).lower()
    if method not in CLUSTER_METHODS:
        raise InputError(f"unknown clustering method {method!r}; choose one of {', '.join(CLUSTER_METHODS)}")
    X = np.asarray(X, dtype=np.float32)
    n = X.shape[0] if coords is None or method == "kmeans" else np.asarray(coords).shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if method == "kmeans":
        return _kmeans(l2_normalise(X), n_clusters=n_clusters, seed=seed)
    if coords is not None:
        points = np.asarray(coords, dtype=np.float64)
    else:
        from embedlab.projection import _pca

        points = _pca(l2_normalise(X), min(HDBSCAN_DIMS, X.shape[1])).astype(np.float64)
    return _hdbscan(points, min_cluster_size=min_cluster_size)


def _kmeans(X: np.ndarray, *, n_clusters: int, seed: int) -> np.ndarray:
    n = X.shape[0]
    k = int(max(1, min(n_clusters, n)))
    if k == 1:
        return np.zeros(n, dtype=np.int64)
    if n > MINIBATCH_ROWS:
        from sklearn.cluster import MiniBatchKMeans

        model = MiniBatchKMeans(n_clusters=k, n_init=KMEANS_STARTS, random_state=seed, batch_size=4096)
    else:
        from sklearn.cluster import KMeans

        model = KMeans(n_clusters=k, n_init=KMEANS_STARTS, random_state=seed)
    return model.fit_predict(X).astype(np.int64)


def _hdbscan(points: np.ndarray, *, min_cluster_size: int | None) -> np.ndarray:
    from sklearn.cluster import HDBSCAN

    n = points.shape[0]
    size = default_min_cluster_size(n) if min_cluster_size is None else int(min_cluster_size)
    size = max(2, min(size, n))
    if n < 3 or size >= n:
        return np.full(n, -1, dtype=np.int64)
    # min_samples below the cluster size keeps less of the corpus as noise (as in BERTopic's advice).
    min_samples = min(size, 10)
    if n <= EXACT_HDBSCAN_ROWS:
        model = HDBSCAN(min_cluster_size=size, min_samples=min_samples, copy=True)
        return model.fit_predict(points).astype(np.int64)
    graph = _knn_distance_graph(points, k=KNN_GRAPH_K)
    # sklearn counts the point itself among min_samples on dense input; a sparse graph has no diagonal.
    model = HDBSCAN(min_cluster_size=size, min_samples=max(1, min_samples - 1), metric="precomputed",
                    copy=False)
    return model.fit_predict(graph).astype(np.int64)


def _knn_distance_graph(points: np.ndarray, *, k: int):
    """Symmetric sparse euclidean kNN graph (CSR), made connected.

    sklearn's HDBSCAN builds its minimum spanning tree with Prim's algorithm over all pairs (O(n^2):
    minutes for 100k points); on a kNN graph the tree comes from scipy in about a second. Pieces of
    the graph that no kNN edge joins (separate islands) are joined Boruvka-style: each piece to the
    nearest other piece, measured between their most central points, until one piece is left.
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    n = points.shape[0]
    k = min(k, n - 1)
    dist, idx = cKDTree(points).query(points, k=k + 1)
    tiny = max(float(np.max(dist)), 1.0) * 1e-9  # sparse graphs drop zero distances (duplicate points)
    rows = np.repeat(np.arange(n), k)
    graph = sp.csr_matrix((np.maximum(dist[:, 1:].ravel(), tiny), (rows, idx[:, 1:].ravel())), shape=(n, n))
    graph = graph.maximum(graph.T).tocsr()
    while True:
        count, piece = connected_components(graph, directed=False)
        if count == 1:
            return graph
        centres = np.zeros((count, points.shape[1]))
        np.add.at(centres, piece, points)
        centres /= np.bincount(piece, minlength=count)[:, None]
        offset = np.linalg.norm(points - centres[piece], axis=1)
        order = np.lexsort((offset, piece))  # per piece, its most central point first
        reps = order[np.r_[0, np.flatnonzero(np.diff(piece[order])) + 1]]
        d, j = cKDTree(points[reps]).query(points[reps], k=2)
        a, b = reps, reps[j[:, 1]]
        link = sp.csr_matrix((np.maximum(d[:, 1], tiny), (a, b)), shape=(n, n))
        graph = graph.maximum(link).maximum(link.T).tocsr()


def keyword_labels(texts: list[str], cluster_ids: np.ndarray, *, top_n: int = 3,
                   stop_words: str | list[str] | None = "english") -> dict[int, str]:
    """"term1, term2, term3" per cluster by c-TF-IDF; the noise cluster -1 is labelled "noise".

    BERTopic's formula: the documents of a class are one document; the weight of term t in class c is
    tf(t, c) * log(1 + A / f(t)), with tf L1-normalised per class, f(t) the frequency of t over all
    classes and A the average number of words per class. Noise takes part in f(t) and A as a class.
    A cluster whose documents have no usable words gets an empty label.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    ids = np.asarray(cluster_ids)
    if len(texts) != len(ids):
        raise ValueError(f"{len(texts)} texts but {len(ids)} cluster ids")
    classes = sorted({int(c) for c in ids})
    labels = {c: "" for c in classes}
    if not classes:
        return labels
    joined = [" ".join(str(texts[i]) for i in np.flatnonzero(ids == c)) for c in classes]
    vectoriser = CountVectorizer(stop_words=stop_words, token_pattern=KEYWORD_TOKEN)
    try:
        counts = vectoriser.fit_transform(joined)
    except ValueError:  # empty vocabulary: nothing but stop words and one-letter tokens
        counts = None
    if counts is not None:
        weights = _ctfidf(counts)
        terms = vectoriser.get_feature_names_out()
        for row, c in enumerate(classes):
            lo, hi = weights.indptr[row], weights.indptr[row + 1]
            cols, w = weights.indices[lo:hi], weights.data[lo:hi]
            keep = w > 0
            cols, w = cols[keep], w[keep]
            # Highest weight first, ties in alphabetical order.
            order = np.lexsort((terms[cols], -w))[:top_n]
            labels[c] = ", ".join(terms[cols[order]])
    if -1 in labels:
        labels[-1] = "noise"
    return labels


def _ctfidf(counts):
    """c-TF-IDF weights (sparse CSR) of a sparse class x term count matrix."""
    import scipy.sparse as sp

    counts = sp.csr_matrix(counts, dtype=np.float64)
    words_per_class = np.asarray(counts.sum(axis=1)).ravel()
    term_freq = np.asarray(counts.sum(axis=0)).ravel()
    avg_words = words_per_class.mean()
    idf = np.log(1.0 + avg_words / np.maximum(term_freq, 1e-12))
    tf = sp.diags(1.0 / np.maximum(words_per_class, 1e-12)) @ counts
    return sp.csr_matrix(tf @ sp.diags(idf))


def cluster_table(cluster_ids: np.ndarray, labels_by_cluster: dict[int, str]) -> list[dict]:
    """One row per cluster, {"cluster", "size", "keywords"}, largest first (ties by cluster id)."""
    ids, sizes = np.unique(np.asarray(cluster_ids, dtype=np.int64), return_counts=True)
    rows = [{"cluster": int(c), "size": int(s), "keywords": labels_by_cluster.get(int(c), "")}
            for c, s in zip(ids, sizes)]
    return sorted(rows, key=lambda r: (-r["size"], r["cluster"]))
