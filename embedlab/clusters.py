"""Clusters of documents (HDBSCAN or k-means) and their keyword labels (class-based TF-IDF)."""
from __future__ import annotations

import numpy as np

from embedlab.errors import InputError
from embedlab.neighbours import l2_normalise
from embedlab.projection import _pca, distinct_rows, one_point

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
# A readable number of clusters: HDBSCAN's default settings aim between these (see `_hdbscan`).
READABLE_CLUSTERS = (5, 40)
CONTINENT_SHARE = 0.5
MAX_CLUSTER_SHARE = 0.25
# Keyword labels leave out corpus-wide boilerplate: a token in more than this share of all documents (AG News:
# "said" 17 %, "new" 13 %, "reuters" 10 %) that no cluster has KEYWORD_CLEAR_LIFT times as often (a topic word
# of a corpus of three topics can be in 20 % of all documents), once there are BOILERPLATE_MIN_DOCS documents, and
# in any cluster a token that does not set the cluster apart: its lift (share of the cluster's documents that
# hold it / share of all documents; a token in every document: 1.0) must reach KEYWORD_CLEAR_LIFT, or at least
# KEYWORD_MIN_LIFT with KEYWORD_MIN_CONCENTRATION of the documents holding it in this cluster. On AG News' k=10
# clusters "ap" (7 % of documents, a wire-service tag) had lifts 2.66 and 1.71 with 22-24 % of its documents
# in the cluster; topic words had lifts 5-9 ("space" 5.7, "coach" 9.0), "company" 2.95 with 42 %.
BOILERPLATE_DOC_SHARE = 0.10
BOILERPLATE_MIN_DOCS = 50
KEYWORD_MIN_LIFT = 1.5
KEYWORD_CLEAR_LIFT = 3.0
KEYWORD_MIN_CONCENTRATION = 1 / 3


def default_min_cluster_size(n: int) -> int:
    """HDBSCAN's smallest cluster: 1.5 % of the corpus, at least 10 (AG News, 7,600 documents: 114).

    On AG News' UMAP map, 0.5 % (38) found 3 clusters (one of 5,626 documents) with the "eom" selection and 65
    with "leaf"; 5 found 289 clusters and 30 % noise (the page kept the size of a smaller corpus seen first)."""
    return int(max(10, round(0.015 * n)))


def cluster(X: np.ndarray, *, method: str = "hdbscan", n_clusters: int = 10, min_cluster_size: int | None = None,
            seed: int = 0, coords: np.ndarray | None = None, selection: str = "auto") -> np.ndarray:
    """A cluster id per document (int64); HDBSCAN marks noise with -1.

    HDBSCAN runs on the map coordinates when `coords` is given, as BERTopic and Latent Scope do on UMAP
    output: density is meaningful in a few dimensions and not in 384 (distances concentrate), and it is
    fast. The clusters are then the islands a user sees. Above EXACT_HDBSCAN_ROWS points it runs on a
    kNN graph (see `_knn_distance_graph`): 100k points in 13 s instead of 230 s on a busy 2-core machine,
    with the same clusters (ARI 0.998 against the exact result on 8,000 points). Without coordinates it
    runs on the first HDBSCAN_DIMS principal components of the L2-normalised embeddings, which finds far
    less (AG News: 2 clusters and 75 % noise, against 15 clusters and 23 % noise on the UMAP map with the
    default settings).
    Fewer documents than the minimum cluster size are all noise. `selection` is HDBSCAN's cluster selection:
    "eom", "leaf", or "auto" (see `_hdbscan`: "eom", then "leaf" when "eom" keeps fewer than 5 clusters).
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
        points = _pca(l2_normalise(X), min(HDBSCAN_DIMS, X.shape[1])).astype(np.float64)
    return _hdbscan(points, min_cluster_size=min_cluster_size, selection=selection)


def assign_noise(points: np.ndarray, ids: np.ndarray, *, reach: float = 3.0) -> np.ndarray:
    """HDBSCAN's noise (-1) joined to the cluster of its nearest clustered point, when that point is within
    `reach` times the typical spacing of clustered points (the 90th percentile of their nearest-neighbour
    distances); farther outliers stay noise. `points` are what was clustered (map coordinates, say).

    On AG News' UMAP map HDBSCAN's "leaf" clusters are the bays of one continent, and the shores between
    them (a third of the documents) are noise: on a map a user reads them as part of the nearest bay."""
    from scipy.spatial import cKDTree

    ids = np.asarray(ids, dtype=np.int64).copy()
    points = np.asarray(points, dtype=np.float64)
    clustered, noise = np.flatnonzero(ids >= 0), np.flatnonzero(ids < 0)
    if clustered.size < 2 or noise.size == 0:
        return ids
    tree = cKDTree(points[clustered])
    spacing = tree.query(points[clustered], k=2)[0][:, 1]
    limit = reach * max(float(np.percentile(spacing, 90)), 1e-12)
    dist, nearest = tree.query(points[noise], k=1)
    near = dist <= limit
    ids[noise[near]] = ids[clustered[nearest[near]]]
    return ids


def _kmeans(X: np.ndarray, *, n_clusters: int, seed: int) -> np.ndarray:
    """k-means with k capped by the number of distinct points (identical documents are one point): asking for
    more clusters than points would leave clusters empty. All documents the same point: one cluster."""
    n = X.shape[0]
    k = int(max(1, min(n_clusters, n)))
    if k > 1 and one_point(X):
        k = 1
    k = max(1, min(k, distinct_rows(X, at_most=k)))
    if k == 1:
        return np.zeros(n, dtype=np.int64)
    if n > MINIBATCH_ROWS:
        from sklearn.cluster import MiniBatchKMeans

        model = MiniBatchKMeans(n_clusters=k, n_init=KMEANS_STARTS, random_state=seed, batch_size=4096)
    else:
        from sklearn.cluster import KMeans

        model = KMeans(n_clusters=k, n_init=KMEANS_STARTS, random_state=seed)
    return model.fit_predict(X).astype(np.int64)


def _hdbscan(points: np.ndarray, *, min_cluster_size: int | None, selection: str = "auto") -> np.ndarray:
    """HDBSCAN with a readable outcome by default.

    A UMAP map of real text is often one continent with bays rather than islands: "eom" (excess of mass)
    then keeps the continent whole (AG News, 7,600 documents, smallest cluster 114: 2 clusters, one of 74 % of
    the documents). "auto" takes "eom" unless one of its clusters holds more than CONTINENT_SHARE of all
    documents (clear islands, as planted blobs are, keep "eom"); then "eom" again with clusters capped at
    MAX_CLUSTER_SHARE of the documents (AG News: 15 clusters, 23 % noise, where "leaf" kept 21 and 37 %
    noise). With the default smallest cluster, more than READABLE_CLUSTERS[1] clusters are redone with
    twice the size.
    """
    selection = str(selection).lower()
    if selection not in ("auto", "eom", "leaf"):
        raise InputError(f"unknown cluster selection {selection!r}; choose auto, eom or leaf")
    n = points.shape[0]
    chosen = min_cluster_size is not None
    size = int(min_cluster_size) if chosen else default_min_cluster_size(n)
    size = max(2, min(size, n))
    if n < 3 or size >= n:
        return np.full(n, -1, dtype=np.int64)
    graph = _knn_distance_graph(points, k=KNN_GRAPH_K) if n > EXACT_HDBSCAN_ROWS else None
    ids = _hdbscan_fit(points, graph, size, "leaf" if selection == "leaf" else "eom")
    if selection != "auto" or not _continent(ids):
        return ids
    cap = max(size + 1, int(MAX_CLUSTER_SHARE * n))
    ids = _hdbscan_fit(points, graph, size, "eom", max_size=cap)
    for _ in range(3):
        if chosen or _count(ids) <= READABLE_CLUSTERS[1] or 2 * size >= cap:
            break
        size *= 2
        ids = _hdbscan_fit(points, graph, size, "eom", max_size=cap)
    return ids


def _count(ids: np.ndarray) -> int:
    return len(set(ids[ids >= 0].tolist()))


def _continent(ids: np.ndarray) -> bool:
    """True when one cluster holds more than CONTINENT_SHARE of all documents (or there is none)."""
    kept = ids[ids >= 0]
    return kept.size == 0 or np.bincount(kept).max() > CONTINENT_SHARE * ids.size


def _hdbscan_fit(points: np.ndarray, graph, size: int, selection: str, *, max_size: int | None = None) -> np.ndarray:
    from sklearn.cluster import HDBSCAN

    # min_samples below the cluster size keeps less of the corpus as noise (as in BERTopic's advice).
    min_samples = min(size, 10)
    if graph is None:
        model = HDBSCAN(min_cluster_size=size, min_samples=min_samples, cluster_selection_method=selection,
                        max_cluster_size=max_size, copy=True)
        return model.fit_predict(points).astype(np.int64)
    # sklearn counts the point itself among min_samples on dense input; a sparse graph has no diagonal.
    model = HDBSCAN(min_cluster_size=size, min_samples=max(1, min_samples - 1), metric="precomputed",
                    cluster_selection_method=selection, max_cluster_size=max_size, copy=True)
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
                   stop_words: str | list[str] | None = "english",
                   max_doc_share: float | None = BOILERPLATE_DOC_SHARE,
                   min_lift: float | None = KEYWORD_MIN_LIFT) -> dict[int, str]:
    """"term1, term2, term3" per cluster by c-TF-IDF; the noise cluster -1 is labelled "noise".

    BERTopic's formula: the documents of a class are one document; the weight of term t in class c is
    tf(t, c) * log(1 + A / f(t)), with tf L1-normalised per class, f(t) the frequency of t over all
    classes and A the average number of words per class. Noise takes part in f(t) and A as a class.
    Corpus-wide boilerplate never names a cluster (from BOILERPLATE_MIN_DOCS documents on): a token in more
    than `max_doc_share` of all documents that no cluster holds KEYWORD_CLEAR_LIFT times as often, and in a
    cluster a token that does not set it apart (see
    KEYWORD_CLEAR_LIFT; `min_lift` None switches this rule off, `max_doc_share` None the first).
    A cluster whose documents have no usable words gets an empty label.
    """
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import CountVectorizer

    ids = np.asarray(cluster_ids)
    if len(texts) != len(ids):
        raise ValueError(f"{len(texts)} texts but {len(ids)} cluster ids")
    classes = sorted({int(c) for c in ids})
    labels = {c: "" for c in classes}
    if not classes:
        return labels
    vectoriser = CountVectorizer(stop_words=stop_words, token_pattern=KEYWORD_TOKEN)
    try:
        per_doc = vectoriser.fit_transform([str(t) for t in texts]).tocsr()
    except ValueError:  # empty vocabulary: nothing but stop words and one-letter tokens
        per_doc = None
    if per_doc is not None:
        n = per_doc.shape[0]
        row_class = np.searchsorted(classes, ids.astype(np.int64))
        member = sp.csr_matrix((np.ones(n), (row_class, np.arange(n))), shape=(len(classes), n))
        counts = member @ per_doc                                # class x term counts
        present = per_doc.copy()
        present.data[:] = 1
        class_docs = (member @ present).toarray()                # class x term: documents holding the term
        doc_share = np.asarray(present.sum(axis=0)).ravel() / max(n, 1)
        apart = None
        if n >= BOILERPLATE_MIN_DOCS:
            sizes = np.bincount(row_class, minlength=len(classes)).astype(np.float64)
            lift = (class_docs / sizes[:, None]) / np.maximum(doc_share, 1e-12)[None, :]
            if max_doc_share is not None:  # frequent everywhere, and no cluster's own
                boiler = (doc_share > max_doc_share) & (lift.max(axis=0) < KEYWORD_CLEAR_LIFT)
                counts = counts @ sp.diags((~boiler).astype(np.float64))
            if min_lift is not None:
                concentration = class_docs / np.maximum(class_docs.sum(axis=0), 1)[None, :]
                apart = (lift >= max(min_lift, KEYWORD_CLEAR_LIFT)) | (
                    (lift >= min_lift) & (concentration >= KEYWORD_MIN_CONCENTRATION))
        weights = _ctfidf(counts)
        terms = vectoriser.get_feature_names_out()
        for row, c in enumerate(classes):
            lo, hi = weights.indptr[row], weights.indptr[row + 1]
            cols, w = weights.indices[lo:hi], weights.data[lo:hi]
            keep = w > 0
            if apart is not None:
                keep &= apart[row, cols]
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
