"""2-D and 3-D maps of an embedding matrix (UMAP, PCA, t-SNE) and how faithful a map is.

Decisions (figures from bench/projection_scale.py on 2 shared cores, and AG News test, 7,600 MiniLM
embeddings):
- Reproducible by default: with a seed, umap-learn runs single-threaded (its own rule) and the layout is
  identical from run to run. On 2 busy cores parallel runs were no faster (20k: 14.5-15.9 s seeded,
  16.2-20.7 s with `seed=None`); on a many-core machine pass `seed=None` for speed.
- Large, wide inputs (more than PCA_MIN_ROWS rows and more than `pca_dims` columns) are reduced by PCA
  first. Rows are L2-normalised before it when the metric is cosine; there |a-b|^2 = 2 - 2 cos, so the
  layout after the PCA uses the euclidean metric. `pca_dims` defaults to 100, not 50: on AG News the
  kNN of 50 principal components keep 53 % of the true cosine kNN, of 100 components 71 %, and the
  map's kNN overlap is 0.27 (PCA 50), 0.30 (PCA 100), 0.31 (no PCA); PCA 100 costs 10-15 % more
  time than PCA 50 (20k: 14.5 s against 13.2 s).
- Epochs: umap's defaults (500 up to 10,000 rows, 200 up to FEW_EPOCHS_ROWS) and LARGE_N_EPOCHS (100)
  above. At 100k x 384: 200 epochs 56 s, trustworthiness 0.984, kNN overlap 0.060; 100 epochs 33 s,
  0.984, 0.056 (plain `umap.UMAP(metric="cosine")`: 66 s, 0.983, 0.064). The epochs are most of the
  time; the spectral start already places the clusters.
- The kNN graph is computed here with umap's own NN-descent (same seed) so that progress can report
  it; the epochs report progress through umap's tqdm bar, which is given a file that calls `progress`.
- numba compiles umap's and pynndescent's kernels once per process: the first projection above 4096
  rows pays 30-80 s more on a busy 2-core machine.
"""
from __future__ import annotations

import re
import time
import warnings
from typing import Callable

import numpy as np

from embedlab.errors import InputError
from embedlab.neighbours import l2_normalise, top_k, top_k_of_scores
from embedlab.numba_cache import import_umap

PROJECTION_VERSION = 2  # 2: an exact kNN graph up to EXACT_KNN_ROWS (was NN-descent above 4096 rows)
METHODS = ("umap", "pca", "tsne")
PCA_MIN_ROWS = 5000
FEW_EPOCHS_ROWS = 50_000
LARGE_N_EPOCHS = 100
TSNE_ONE_THREAD_ROWS = 20_000
# umap-learn computes exact distances below this many rows, and NN-descent above.
UMAP_SMALL_DATA = 4096
EXACT_KNN_ROWS = 50_000   # up to here UMAP's kNN graph is exact (blockwise products), NN-descent above
# Above this many rows UMAP is fitted on a random sample of this many and the other rows are placed by umap-learn's
# `transform` (their neighbours among the sample, then a short optimisation with the sample fixed): see `_umap_sampled`.
UMAP_FIT_ROWS = 100_000
PLACE_BLOCK_ROWS = 100_000   # rows placed per `transform` call (progress, and memory)
# Rows closer than this (relative to the largest value) to the first row are the same point: identical documents.
SAME_POINT_TOLERANCE = 1e-5

Progress = Callable[[float, str], None]


def projection_params(*, method: str = "umap", n_components: int = 2, seed: int | None = 42,
                      n_neighbors: int = 15, min_dist: float = 0.1, metric: str = "cosine",
                      perplexity: float = 30.0, pca_dims: int = 100, n_epochs: int | None = None,
                      fit_rows: int | None = None) -> dict:
    """The normalised parameters of a projection, with "version": a cache key's content.

    Only what changes the result of `method` is kept, so equal maps get equal keys. `fit_rows` (UMAP): fit on a
    sample of this many rows and place the others (None: `UMAP_FIT_ROWS`, the default rule; it is kept in the
    params only when given, so maps made before it keep their keys; up to UMAP_FIT_ROWS rows the default fits all).
    """
    method = _check_method(method)
    _check_options(n_components=n_components, seed=seed, n_neighbors=n_neighbors, min_dist=min_dist,
                   perplexity=perplexity, pca_dims=pca_dims, n_epochs=n_epochs, fit_rows=fit_rows)
    params: dict = {"version": PROJECTION_VERSION, "method": method, "n_components": int(n_components)}
    metric = str(metric).lower()
    if method == "pca":
        params["metric"] = metric
    elif method == "umap":
        params.update(seed=None if seed is None else int(seed), n_neighbors=int(n_neighbors),
                      min_dist=float(min_dist), metric=metric, pca_dims=int(pca_dims))
        if n_epochs is not None:
            params["n_epochs"] = int(n_epochs)
        if fit_rows is not None:
            params["fit_rows"] = int(fit_rows)
    else:
        params.update(seed=None if seed is None else int(seed), perplexity=float(perplexity), metric=metric,
                      pca_dims=int(pca_dims))
    return params


def projection_plan(n: int, dim: int, *, method: str = "umap", n_components: int = 2, n_neighbors: int = 15,
                    metric: str = "cosine", perplexity: float = 30.0, pca_dims: int = 100,
                    n_epochs: int | None = None, fit_rows: int | None = None) -> dict:
    """What `project` will do for an n x dim matrix: PCA or not, the metric, the effective parameters; for UMAP
    "fit_rows", the rows of the sample it is fitted on (None: all rows)."""
    method = _check_method(method)
    metric = str(metric).lower()
    plan = {"method": method, "n": int(n), "dim": int(dim), "n_components": int(n_components),
            "trivial": n < 3, "normalise": metric == "cosine", "pca_dims": None, "metric": metric}
    if method in ("umap", "tsne") and n > PCA_MIN_ROWS and dim > pca_dims and metric in ("cosine", "euclidean"):
        plan["pca_dims"] = int(pca_dims)
        plan["metric"] = "euclidean"
    if method == "umap":
        plan["n_neighbors"] = int(max(2, min(n_neighbors, n - 1)))
        fit = int(fit_rows) if fit_rows is not None else UMAP_FIT_ROWS
        plan["fit_rows"] = fit if n > fit else None
        m = fit if n > fit else n         # the epochs suit the rows the layout is fitted on
        if n_epochs is None:
            n_epochs = 500 if m <= 10_000 else 200 if m <= FEW_EPOCHS_ROWS else LARGE_N_EPOCHS
        plan["n_epochs"] = int(n_epochs)
    elif method == "tsne":
        plan["perplexity"] = float(max(1.0, min(perplexity, (n - 1) / 3.0)))
    return plan


def project(X: np.ndarray, *, method: str = "umap", n_components: int = 2, seed: int | None = 42,
            n_neighbors: int = 15, min_dist: float = 0.1, metric: str = "cosine", perplexity: float = 30.0,
            pca_dims: int = 100, n_epochs: int | None = None, fit_rows: int | None = None,
            progress: Progress | None = None, info: dict | None = None) -> np.ndarray:
    """The rows of X placed in `n_components` dimensions: float32 array (n, n_components).

    UMAP (default), PCA or t-SNE. With a seed the result is identical from run to run (umap-learn then
    runs single-threaded); `seed=None` lets umap use all cores. `progress(fraction, message)` is called
    at stage boundaries and during the UMAP epochs; an exception it raises stops the projection.
    `info`, when given a dict, receives the plan (see `projection_plan`) and seconds per stage, and
    `info["caveat"]`: a line for the user when the map of these rows says little (else None).
    Fewer than 3 rows are laid out on a line; rows that are all the same point (identical documents, or
    all zero) share the origin, where UMAP and t-SNE would scatter them at random (and t-SNE would crash on
    all-zero rows); tiny inputs get smaller n_neighbors and perplexity. UMAP of more than `fit_rows` rows
    (default UMAP_FIT_ROWS) is fitted on a sample and the other rows are placed (`_umap_sampled`).
    """
    X = _check_matrix(X)
    n, dim = X.shape
    n_components = int(n_components)
    if n_components not in (2, 3):
        raise InputError(f"a map has 2 or 3 dimensions, got {n_components}")
    plan = projection_plan(n, dim, method=method, n_components=n_components, n_neighbors=n_neighbors,
                           metric=metric, perplexity=perplexity, pca_dims=pca_dims, n_epochs=n_epochs,
                           fit_rows=fit_rows)
    report = _Stages(progress, plan)
    if info is not None:
        info.clear()
        info.update(plan)
        info["seconds"] = report.seconds
        info["caveat"] = None
    if plan["trivial"]:
        Y = np.zeros((n, n_components), dtype=np.float32)
        Y[:, 0] = np.arange(n) - (n - 1) / 2.0
        report.done(_note(info, f"{'1 document: nothing' if n == 1 else f'{n} documents: nothing'} to map; "
                                f"{'it is' if n == 1 else 'they are'} placed on a line"))
        return Y
    if plan["normalise"]:
        X = l2_normalise(X)
    if one_point(X):
        report.done(_note(info, f"all {n:,} documents have the same embedding (identical texts, or texts the "
                                "model cannot tell apart): they share one point, and the map has no structure to show"))
        return np.zeros((n, n_components), dtype=np.float32)
    if method == "pca":
        report.stage("PCA")
        Y = _pca(X, n_components)
    else:
        if plan["pca_dims"] is not None:
            report.stage(f"PCA to {plan['pca_dims']} dimensions")
            X = _pca(X, plan["pca_dims"])
        if method == "umap" and plan["fit_rows"] is not None:
            Y = _umap_sampled(X, plan, seed=seed, min_dist=min_dist, report=report)
        elif method == "umap":
            Y = _umap(X, plan, seed=seed, min_dist=min_dist, report=report)
        else:
            Y = _tsne(X, plan, seed=seed, report=report)
    report.done()
    return np.ascontiguousarray(Y, dtype=np.float32)


def trustworthiness_score(X: np.ndarray, Y: np.ndarray, *, n_neighbors: int = 10, sample: int | None = 2000,
                          seed: int = 0) -> float:
    """sklearn's trustworthiness of the map Y of X (cosine in X, euclidean in Y) on a random sample of rows.

    1 means that the map invents no neighbours; neighbours are taken within the sample. NaN when there is
    nothing to judge (fewer than 3 rows, or every row the same point).
    """
    from sklearn.manifold import trustworthiness

    X, Y = np.asarray(X), np.asarray(Y)
    rows = _sample_rows(X.shape[0], sample, seed)
    k = min(int(n_neighbors), (len(rows) - 1) // 2)
    if k < 1 or one_point(l2_normalise(X[rows])):
        return float("nan")   # no neighbourhoods to keep: every document is the same point
    return float(trustworthiness(X[rows], Y[rows], n_neighbors=k, metric="cosine"))


def knn_overlap(X: np.ndarray, Y: np.ndarray, *, k: int = 10, sample: int | None = 2000, seed: int = 0) -> float:
    """Mean share of a document's k nearest neighbours (cosine in X) that are also its k nearest on the map Y.

    Averaged over a random sample of documents; neighbours are searched in the full sets, self excluded.
    A map with no neighbourhood structure scores about k / (n - 1). NaN when every row is the same point.
    """
    from scipy.spatial import cKDTree

    X, Y = l2_normalise(_check_matrix(X)), np.asarray(Y, dtype=np.float64)
    n = X.shape[0]
    k = int(min(k, n - 1))
    if k < 1 or one_point(X):
        return float("nan")   # no neighbourhoods to keep: every document is the same point
    rows = _sample_rows(n, sample, seed)
    idx_x, _ = top_k(X, rows, k=k)
    _, idx_y = cKDTree(Y).query(Y[rows], k=k + 1)
    idx_y = _drop_self(np.asarray(idx_y).reshape(len(rows), k + 1), rows)
    hits = [len(np.intersect1d(a, b, assume_unique=True)) for a, b in zip(idx_x, idx_y)]
    return float(np.mean(hits) / k)


# --- stages ---------------------------------------------------------------------------------------


def _umap(X: np.ndarray, plan: dict, *, seed, min_dist: float, report: "_Stages", keep: bool = False):
    """The UMAP layout of X; with `keep`, the fitted umap object instead (its kNN search index kept, for
    `transform`: the kNN graph then always comes from NN-descent, whose index `transform` searches)."""
    import numba
    from numba.core.errors import NumbaWarning

    umap = import_umap()
    from umap.umap_ import nearest_neighbors

    n = X.shape[0]
    n_neighbors = plan["n_neighbors"]
    kwargs = dict(n_components=plan["n_components"], n_neighbors=n_neighbors, min_dist=float(min_dist),
                  metric=plan["metric"], n_epochs=plan["n_epochs"], random_state=seed,
                  n_jobs=1 if seed is not None else -1, tqdm_kwds=report.epoch_tqdm_kwds())
    if distinct_rows(X, at_most=10) < 10:
        # The spectral start needs a graph with more nodes than dimensions + 1, and fails on a few distinct points
        # repeated (identical documents): tiny data start at random.
        kwargs["init"] = "random"
    threads = numba.get_num_threads()
    try:
        with warnings.catch_warnings():
            # import_umap compiles NN-descent's kernels with numba's disk cache on; those that use dynamic globals
            # cannot be cached and say so once per process: compiled all the same, nothing for a user to do.
            warnings.filterwarnings("ignore", message="Cannot cache compiled function", category=NumbaWarning)
            # umap falls back to a random start by itself when its spectral start fails (a too small eigengap)
            warnings.filterwarnings("ignore", message="Spectral initialisation failed", category=UserWarning)
            if UMAP_SMALL_DATA < n <= EXACT_KNN_ROWS and plan["metric"] == "euclidean" and not keep:
                report.stage("kNN graph")
                kwargs["precomputed_knn"] = exact_euclidean_knn(X, n_neighbors)
            elif n > UMAP_SMALL_DATA:
                report.stage("kNN graph")
                random_state = np.random.RandomState(seed) if seed is not None else None
                kwargs["precomputed_knn"] = nearest_neighbors(
                    X, n_neighbors, plan["metric"], {}, False, random_state, low_memory=True,
                    use_pynndescent=True, n_jobs=kwargs["n_jobs"], verbose=False)  # (indices, distances, index)
            report.stage("fuzzy graph and spectral start")
            reducer = umap.UMAP(**kwargs)
            Y = reducer.fit_transform(X)
    finally:
        numba.set_num_threads(threads)
    report.raise_deferred()
    return reducer if keep else Y


def _umap_sampled(X: np.ndarray, plan: dict, *, seed, min_dist: float, report: "_Stages") -> np.ndarray:
    """UMAP fitted on a random sample of plan["fit_rows"] rows (seeded), the other rows placed block by block by
    umap-learn's `transform`: each row starts at the weighted mean of its nearest sampled rows and moves for a third
    of the epochs while the sample stays fixed. At 1M x 384 on 2 cores a full fit would take far longer (NN-descent
    on 1M rows, and every epoch over 15M edges): see bench/million.py, which also measures the trustworthiness of
    the sampled map against a full fit at 100k."""
    import numba
    from numba.core.errors import NumbaWarning

    n, m = len(X), int(plan["fit_rows"])
    rng = np.random.default_rng(0 if seed is None else seed)
    sample = np.sort(rng.choice(n, size=m, replace=False))
    reducer = _umap(np.ascontiguousarray(X[sample]), {**plan, "n": m}, seed=seed, min_dist=min_dist,
                    report=report, keep=True)
    Y = np.empty((n, plan["n_components"]), dtype=np.float32)
    Y[sample] = reducer.embedding_
    rest = np.setdiff1d(np.arange(n), sample, assume_unique=True)
    reducer.tqdm_kwds = {**(reducer.tqdm_kwds or {}), "disable": True}
    reducer.verbose = False
    threads = numba.get_num_threads()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Cannot cache compiled function", category=NumbaWarning)
            for start in range(0, len(rest), PLACE_BLOCK_ROWS):
                report.placing(start, len(rest))
                rows = rest[start:start + PLACE_BLOCK_ROWS]
                Y[rows] = reducer.transform(np.ascontiguousarray(X[rows]))
    finally:
        numba.set_num_threads(threads)
    report.placing(len(rest), len(rest))
    return Y


def exact_euclidean_knn(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k nearest rows by Euclidean distance, itself first (UMAP's kNN convention): blockwise matrix
    products. Up to EXACT_KNN_ROWS this is faster than NN-descent, whose numba kernels cannot be cached on disk
    (they use dynamic globals) and cost ~60 s of compilation in every new process."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    n = len(X)
    k = min(k, n)
    sq = np.einsum("ij,ij->i", X, X)
    idx = np.empty((n, k), np.int64)
    dist = np.empty((n, k), np.float32)
    step = max(1, (1 << 24) // max(n, 1))
    for start in range(0, n, step):
        rows = np.arange(start, min(n, start + step))
        d2 = sq[rows, None] + sq[None, :] - 2.0 * (X[rows] @ X.T)
        d2[np.arange(len(rows)), rows] = -1.0                      # itself first, whatever the rounding
        idx[rows], nearness = top_k_of_scores(-d2, k)               # nearest first, ties to the lower row
        dist[rows] = np.sqrt(np.maximum(-nearness, 0.0))
    return idx, dist


def _tsne(X: np.ndarray, plan: dict, *, seed, report: "_Stages") -> np.ndarray:
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    report.stage("t-SNE layout")
    tsne = TSNE(n_components=plan["n_components"], perplexity=plan["perplexity"], metric=plan["metric"],
                # PCA initialisation needs at least as many input dimensions as output ones
                init="pca" if X.shape[1] >= plan["n_components"] else "random", random_state=seed)
    # Up to TSNE_ONE_THREAD_ROWS, one thread (OpenMP and BLAS): on busy shared cores the threads of sklearn's
    # Barnes-Hut wait for each other (200 points, 2 cores at load 4: 0.8-1.2 s with one thread, 11-45 s with two).
    limit = 1 if X.shape[0] <= TSNE_ONE_THREAD_ROWS else None
    with threadpool_limits(limits=limit):
        return tsne.fit_transform(X.astype(np.float32))


def _pca(X: np.ndarray, n_components: int) -> np.ndarray:
    """Deterministic PCA by the eigenvectors of the covariance (d x d), signs fixed; zero-padded if rank is short."""
    from threadpoolctl import threadpool_limits

    X = np.asarray(X, dtype=np.float32)
    n, d = X.shape
    Xc = X - X.mean(axis=0, dtype=np.float64).astype(np.float32)
    # One BLAS thread: 0.3 s for 20k x 384 on a busy 2-core machine, where two threads took 0.5 s.
    with threadpool_limits(limits=1, user_api="blas"):
        cov = (Xc.T @ Xc).astype(np.float64)
        values, vectors = np.linalg.eigh(cov)
    take = min(n_components, d)
    vectors = vectors[:, ::-1][:, :take]
    signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(take)])
    signs[signs == 0] = 1
    Y = Xc @ (vectors * signs).astype(np.float32)
    if take < n_components:
        Y = np.hstack([Y, np.zeros((n, n_components - take), dtype=np.float32)])
    return Y


class _Stages:
    """Turns stage changes and umap's epoch bar into `progress(fraction, message)` calls, and times stages."""

    def __init__(self, progress: Progress | None, plan: dict) -> None:
        self.progress = progress
        self.seconds: dict[str, float] = {}
        self._name: str | None = None
        self._t0 = time.perf_counter()
        # Fraction of the run at which each stage starts (shares measured at 20k and 100k x 384).
        big = plan["n"] > UMAP_SMALL_DATA
        self.starts = {"PCA": 0.0, "kNN graph": 0.02 if plan["pca_dims"] else 0.0,
                       "fuzzy graph and spectral start": 0.12 if big else 0.0,
                       "epochs": 0.3 if big else 0.1, "t-SNE layout": 0.05}
        # A sampled UMAP: the fit (kNN graph, start, epochs) takes the first share, placing the other rows the rest.
        self.place_start = 0.35 if plan.get("fit_rows") else 0.99
        if plan.get("fit_rows"):
            self.starts.update({"kNN graph": 0.01, "fuzzy graph and spectral start": 0.06, "epochs": 0.12})

    def stage(self, message: str) -> None:
        self._close()
        self._name = message
        key = "PCA" if message.startswith("PCA") else message
        self._emit(self.starts.get(key, 0.0), message)

    def epochs(self, done: int, total: int) -> None:
        if self._name != "epochs":
            self._close()
            self._name = "epochs"
        start = self.starts["epochs"]
        self._emit(start + (self.place_start - start) * done / max(total, 1), f"layout: epoch {done}/{total}")

    def placing(self, done: int, total: int) -> None:
        """Progress of placing the rows outside a sampled UMAP's sample."""
        if self._name != "placing":
            self._close()
            self._name = "placing"
        self._emit(self.place_start + (0.99 - self.place_start) * done / max(total, 1),
                   f"placing the other rows: {done:,}/{total:,}")

    def done(self, caveat: str | None = None) -> None:
        """The last progress call: "done", with the map's caveat when there is one (the CLI prints it)."""
        self._close()
        self._emit(1.0, f"done: {caveat}" if caveat else "done")

    def epoch_tqdm_kwds(self) -> dict:
        self._stream = _EpochStream(self.epochs)
        return {"disable": False, "file": self._stream,
                "bar_format": "{n}/{total}\n", "mininterval": 0.5, "ascii": True}

    def raise_deferred(self) -> None:
        """Re-raise what the progress callback raised during umap's epochs (a stop request)."""
        stream = getattr(self, "_stream", None)
        if stream is not None and stream.error is not None:
            raise stream.error

    def _close(self) -> None:
        now = time.perf_counter()
        if self._name is not None:
            key = "PCA" if self._name.startswith("PCA") else self._name
            self.seconds[key] = round(self.seconds.get(key, 0.0) + now - self._t0, 3)
        self._t0 = now
        self._name = None

    def _emit(self, fraction: float, message: str) -> None:
        if self.progress is not None:
            self.progress(float(min(1.0, max(0.0, fraction))), message)


class _EpochStream:
    """A file for tqdm: umap-learn has no epoch callback, but it draws its epoch bar through tqdm.

    tqdm writes while holding its process-wide lock and releases it without try/finally, so an exception
    escaping `write` would leave that lock held for good and freeze every later progress bar in the process.
    A raising callback (a stop request) is therefore kept, and re-raised by `_Stages` once umap returns.
    """

    _count = re.compile(r"(\d+)/(\d+)")

    def __init__(self, on_epoch: Callable[[int, int], None]) -> None:
        self.on_epoch = on_epoch
        self.error: BaseException | None = None

    def write(self, text: str) -> int:
        found = self._count.findall(text)
        if found and self.error is None:
            done, total = found[-1]
            try:
                self.on_epoch(int(done), int(total))
            except BaseException as exc:  # noqa: BLE001 - re-raised outside tqdm
                self.error = exc
        return len(text)

    def flush(self) -> None:
        pass


# --- helpers --------------------------------------------------------------------------------------


def one_point(X: np.ndarray, *, block: int = 4096) -> bool:
    """Whether every row of X is the same point (to SAME_POINT_TOLERANCE of its largest value); blockwise, and a
    typical matrix is told apart by its first block."""
    X = np.asarray(X)
    if X.size == 0:
        return len(X) > 0
    scale = max(float(X.max()), -float(X.min()))
    if scale == 0.0:
        return True
    limit = SAME_POINT_TOLERANCE * scale
    return all(np.abs(X[start:start + block] - X[0]).max() <= limit for start in range(0, len(X), block))


def distinct_rows(X: np.ndarray, *, at_most: int) -> int:
    """How many distinct rows X has, counted up to `at_most` (a typical matrix stops after `at_most` rows)."""
    seen: set[bytes] = set()
    for row in np.ascontiguousarray(X):
        seen.add(row.tobytes())
        if len(seen) >= at_most:
            break
    return len(seen)


def _note(info: dict | None, caveat: str) -> str:
    """Record a caveat in `info` (when given) and return it."""
    if info is not None:
        info["caveat"] = caveat
    return caveat


def _check_method(method: str) -> str:
    method = str(method).lower()
    if method not in METHODS:
        raise InputError(f"unknown projection method {method!r}; choose one of {', '.join(METHODS)}")
    return method


def _check_options(*, n_components, seed, n_neighbors, min_dist, perplexity, pca_dims, n_epochs,
                   fit_rows=None) -> None:
    """User-set projection options in their valid ranges, or one InputError line naming the option."""
    def number(name: str, value, kind, lo, hi) -> None:
        try:
            v = kind(value)
        except (TypeError, ValueError, OverflowError):
            raise InputError(f"{name} must be a number, got {value!r}") from None
        if not (lo <= v <= hi) or (kind is float and v != v):
            raise InputError(f"{name} must be between {lo} and {hi}, got {value!r}")

    if n_components not in (2, 3, "2", "3"):
        raise InputError(f"a map has 2 or 3 dimensions, got {n_components!r}")
    if seed is not None:
        number("seed", seed, int, 0, 2**32 - 1)
    number("n_neighbors", n_neighbors, int, 2, 200)
    number("min_dist", min_dist, float, 0.0, 1.0)
    number("perplexity", perplexity, float, 1.0, 100.0)
    number("pca_dims", pca_dims, int, 2, 4096)
    if n_epochs is not None:
        number("n_epochs", n_epochs, int, 1, 10_000)
    if fit_rows is not None:
        number("fit_rows", fit_rows, int, 100, 10_000_000)


def _check_matrix(X) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise InputError(f"an embedding matrix must be 2-D, got shape {X.shape}")
    if X.dtype.kind not in "fiu":
        raise InputError(f"an embedding matrix must be numeric, got {X.dtype}")
    X = X.astype(np.float32, copy=False)
    if not np.isfinite(X).all():
        bad = int((~np.isfinite(X)).any(axis=1).sum())
        raise InputError(f"the embedding matrix has {bad} rows with NaN or infinite values")
    return X


def _sample_rows(n: int, sample: int | None, seed: int) -> np.ndarray:
    if sample is None or sample >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=int(sample), replace=False))


def _drop_self(idx: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """From (m, k+1) neighbour lists drop the row itself, or the last one where ties pushed self out."""
    is_self = idx == rows[:, None]
    missing = ~is_self.any(axis=1)
    is_self[missing, -1] = True
    return idx[~is_self].reshape(idx.shape[0], idx.shape[1] - 1)
