"""Workspace reads cached by Streamlit: the one module that wraps them in `st.cache_data` / `st.cache_resource`.

Each cached function is keyed as `embedlab.workspace` says a read may be cached (a matrix by its id and cache key, a
corpus's documents by its id and content hash, a run by its id and time); anything else is read fresh through
`components.state.get_workspace()`. A cached function shared by every user opens its own connection
(`Workspace.open(path)`), never a browser session's.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from components.state import get_workspace
from embedlab.ann import IvfIndex, stored_or_built, use_index
from embedlab.clusters import assign_noise, cluster, keyword_labels
from embedlab.compare import linear_cka, mean_neighbour_overlap, neighbour_disagreement
from embedlab.diagnostics import diagnose, k_occurrence
from embedlab.embedding.embedders import Embedder, get_embedder
from embedlab.embedding.imported import is_imported
from embedlab.embedding.space import EmbeddingSpace
from embedlab.judgments import Query
from embedlab.map_colours import ColourSpec, label_colour, label_palette
from embedlab.map_retrieval import RunFit, fit_run
from embedlab.nearest_documents import semantic_hits
from embedlab.ood.explain import class_means, explain, id_reference, load_run_training, rows_tested_on, run_corpora
from embedlab.projection import knn_overlap, trustworthiness_score
from embedlab.retrieval.base import TextSet, TokenMatrix
from embedlab.retrieval.beir import beir_summary
from embedlab.retrieval.registry import create_method
from embedlab.runs import Run, RunHeader
from embedlab.text_display import hover_texts
from embedlab.workspace import CorpusInfo, Workspace

# --- matrices and models (shared by every user of the server) ---


@st.cache_resource(max_entries=16, show_spinner=False)
def _shared_matrix(path: str, matrix_id: int, cache_key: str) -> np.ndarray:
    with Workspace.open(path) as ws:
        arr = ws.load_matrix(matrix_id)
    arr.setflags(write=False)
    return arr


def shared_matrix(matrix_id: int) -> np.ndarray:
    """A finished matrix, loaded once per server and shared read-only by all users (keyed by its cache key too:
    an evicted matrix's id may come back for another matrix)."""
    return _shared_matrix(*get_workspace().matrix_cache_key(matrix_id))


@st.cache_resource(max_entries=4, show_spinner="Building the neighbour index (once per embedding)…")
def _neighbour_index(path: str, matrix_id: int, cache_key: str) -> IvfIndex:
    X = _shared_matrix(path, matrix_id, cache_key)
    with Workspace.open(path) as ws:
        return stored_or_built(ws.db, X, embedding_key=cache_key)


def neighbour_index(matrix_id: int, n: int) -> IvfIndex | None:
    """The approximate neighbour index of an embedding of n documents (`embedlab.ann`: stored, or built once and
    stored), or None where exact search is fast enough."""
    if not use_index(n):
        return None
    return _neighbour_index(*get_workspace().matrix_cache_key(matrix_id))


@st.cache_resource(show_spinner=False)
def shared_embedder(model: str) -> Embedder:
    """One embedder (and so one loaded model) per server, shared by all users."""
    return get_embedder(model)


# --- atlas ---
# Keys: `MatrixKey` = `Workspace.matrix_cache_key(id)`, `CorpusKey` = `Workspace.corpus_cache_key(corpus)`, a run by
# (path, id, created_at). The public functions take ids and corpora and build the keys; the `_` ones are cached.

MatrixKey = tuple[str, int, str]
CorpusKey = tuple[str, int, str]


class CorpusView:
    """Texts, doc ids, labels and metadata of a corpus, loaded once per server (read-only)."""

    def __init__(self, docs: list[dict]) -> None:
        self.texts = [d["text"] for d in docs]
        self.doc_ids = [str(d["doc_id"]) for d in docs]
        labels = [d["label"] for d in docs]
        self.labels = labels if any(lab is not None for lab in labels) else None
        self.metas = [d["meta"] for d in docs]
        self.n = len(docs)


def _matrix(key: MatrixKey) -> np.ndarray:
    return _shared_matrix(*key)


@st.cache_resource(max_entries=4, show_spinner="Loading documents…")
def _corpus_view(key: CorpusKey) -> CorpusView:
    with Workspace.open(key[0]) as ws:
        return CorpusView(ws.documents(key[1]))


def corpus_view(corpus: CorpusInfo) -> CorpusView:
    return _corpus_view(get_workspace().corpus_cache_key(corpus))


@st.cache_resource(max_entries=8, show_spinner=False)
def _shown_labels(key: CorpusKey, names: tuple[tuple[str, str], ...]) -> list | None:
    view = _corpus_view(key)
    if view.labels is None:
        return None
    named = dict(names)
    return [None if v is None else named.get(str(v)) or v for v in view.labels]


def shown_labels_for(corpus: CorpusInfo, names: tuple[tuple[str, str], ...]) -> list | None:
    """The corpus's labels as the user named them (None stays None); None for a corpus without labels."""
    return _shown_labels(get_workspace().corpus_cache_key(corpus), names)


@st.cache_resource(max_entries=8, show_spinner=False)
def _hover(key: CorpusKey, with_labels: bool, names: tuple[tuple[str, str], ...]) -> list[str]:
    return hover_texts(_corpus_view(key).texts, _shown_labels(key, names) if with_labels else None)


def hover_for(corpus: CorpusInfo, with_labels: bool, names: tuple[tuple[str, str], ...] = ()) -> list[str]:
    """Escaped hover text per document (with its label as named, when asked)."""
    return _hover(get_workspace().corpus_cache_key(corpus), with_labels, names)


@st.cache_resource(max_entries=8, show_spinner=False)
def _label_palette(key: CorpusKey) -> dict[str, str]:
    view = _corpus_view(key)
    return label_palette(view.labels) if view.labels is not None else {}


def corpus_label_palette(corpus: CorpusInfo) -> dict[str, str]:
    """One colour per label value of the corpus (every map of it agrees)."""
    return _label_palette(get_workspace().corpus_cache_key(corpus))


@st.cache_resource(max_entries=8, show_spinner=False)
def _label_colour(key: CorpusKey, names: tuple[tuple[str, str], ...]) -> ColourSpec:
    return label_colour(_corpus_view(key).labels, names=dict(names), palette=_label_palette(key))


def label_colour_for(corpus: CorpusInfo, names: tuple[tuple[str, str], ...]) -> ColourSpec:
    """Colour by label: the corpus's palette, the user's names."""
    return _label_colour(get_workspace().corpus_cache_key(corpus), names)


@st.cache_resource(max_entries=4, show_spinner="Preparing the corpus's embedding space…")
def _embedding_space(key: CorpusKey, model: str) -> EmbeddingSpace:
    if is_imported(model):   # imported vectors: what their stored params say (their query encoder is shared)
        with Workspace.open(key[0]) as ws:
            return EmbeddingSpace(None, _corpus_view(key).texts, ws.embedder(ws.corpus(key[1]), model),
                                  content_hash=key[2], corpus_id=key[1])
    embedder = get_embedder(model)   # a corpus-fitted embedder is this space's own; a loaded model is shared
    if not embedder.fitted_on_corpus:
        embedder = shared_embedder(model)
    return EmbeddingSpace(None, _corpus_view(key).texts, embedder, content_hash=key[2], corpus_id=key[1])


def embedding_space(corpus: CorpusInfo, model: str) -> EmbeddingSpace:
    """The corpus's space under `model`, shared by every user: queries are encoded as its documents were (a
    corpus-fitted model with the corpus's own fit, done once here; a pretrained one with the shared model)."""
    return _embedding_space(get_workspace().corpus_cache_key(corpus), model)


@st.cache_data(max_entries=64, show_spinner="Searching…")
def _semantic_search(emb: MatrixKey, corpus: CorpusKey, model: str, query: str,
                     k: int) -> tuple[list[int], list[float]]:
    vec = _embedding_space(corpus, model).encode([query])
    idx, scores = semantic_hits(_matrix(emb), vec[0], k=k)
    return idx.tolist(), scores.tolist()


def semantic_search(corpus: CorpusInfo, emb_id: int, model: str, query: str, k: int) -> tuple[list[int], list[float]]:
    """(rows, cosines) of the k documents nearest to `query` under `model`."""
    ws = get_workspace()
    return _semantic_search(ws.matrix_cache_key(emb_id), ws.corpus_cache_key(corpus), model, query, k)


@st.cache_data(max_entries=16, show_spinner="Clustering…")
def _clusters(emb: MatrixKey, proj: MatrixKey | None, corpus: CorpusKey, method: str, n_clusters: int,
              min_cluster_size: int, assign: bool) -> tuple[np.ndarray, dict[int, str]]:
    coords = _matrix(proj) if proj is not None and method == "hdbscan" else None
    ids = cluster(_matrix(emb), method=method, n_clusters=n_clusters, min_cluster_size=min_cluster_size,
                  coords=coords)
    if assign and method == "hdbscan" and coords is not None:
        ids = assign_noise(coords, ids)
    return ids, keyword_labels(_corpus_view(corpus).texts, ids)


def clusters_for(corpus: CorpusInfo, emb_id: int, proj_id: int | None, method: str, n_clusters: int,
                 min_cluster_size: int, assign: bool = False) -> tuple[np.ndarray, dict[int, str]]:
    """(cluster id per document, -1 noise; keywords per cluster). HDBSCAN clusters the map, k-means the space."""
    ws = get_workspace()
    return _clusters(ws.matrix_cache_key(emb_id), ws.matrix_cache_key(proj_id) if proj_id is not None else None,
                     ws.corpus_cache_key(corpus), method, n_clusters, min_cluster_size, assign)


@st.cache_data(max_entries=16, show_spinner="Measuring the map's quality…")
def _map_quality(emb: MatrixKey, proj: MatrixKey) -> tuple[float, float, int]:
    X, Y = _matrix(emb), _matrix(proj)
    sample = min(2000, X.shape[0])
    return trustworthiness_score(X, Y, sample=sample), knn_overlap(X, Y, k=10, sample=sample), sample


def map_quality(emb_id: int, proj_id: int) -> tuple[float, float, int]:
    """(trustworthiness, kNN overlap@10, sample size) of a map of an embedding."""
    ws = get_workspace()
    return _map_quality(ws.matrix_cache_key(emb_id), ws.matrix_cache_key(proj_id))


@st.cache_data(max_entries=16, show_spinner="Comparing the two embedding spaces…")
def _space_agreement(a: MatrixKey, b: MatrixKey) -> tuple[float, float, int | None]:
    A, B = _matrix(a), _matrix(b)
    sample = 2000 if A.shape[0] > 20_000 else None
    return linear_cka(A, B), mean_neighbour_overlap(A, B, k=10, sample=sample), sample


def space_agreement(emb_a: int, emb_b: int) -> tuple[float, float, int | None]:
    """(linear CKA, mean neighbour overlap@10, sample size or None) of two embeddings of a corpus."""
    ws = get_workspace()
    return _space_agreement(ws.matrix_cache_key(emb_a), ws.matrix_cache_key(emb_b))


@st.cache_data(max_entries=8, show_spinner="Per-document neighbour overlap and rank displacement…")
def _disagreement(a: MatrixKey, b: MatrixKey) -> dict[str, np.ndarray]:
    return neighbour_disagreement(_matrix(a), _matrix(b), k=10, depth=50)


def per_document_disagreement(emb_a: int, emb_b: int) -> dict[str, np.ndarray]:
    ws = get_workspace()
    return _disagreement(ws.matrix_cache_key(emb_a), ws.matrix_cache_key(emb_b))


@st.cache_data(max_entries=16, show_spinner=False)
def _k_occurrence(emb: MatrixKey) -> np.ndarray:
    return k_occurrence(_matrix(emb))


def k_occurrence_for(emb_id: int) -> np.ndarray:
    """N_10 of every document of a stored embedding: in how many other documents' top-10 it is."""
    return _k_occurrence(get_workspace().matrix_cache_key(emb_id))


@st.cache_data(max_entries=64, show_spinner=False)
def _diagnostics(emb: MatrixKey, model: str) -> dict:
    return diagnose(_matrix(emb), model=model, counts=_k_occurrence(emb))


def diagnostics_for(emb_id: int, model: str) -> dict:
    """`embedlab.diagnostics.diagnose` of a stored embedding, reusing its cached N_10 (the hub map's)."""
    return _diagnostics(get_workspace().matrix_cache_key(emb_id), model)


@st.cache_resource(max_entries=2, show_spinner=False)
def _maxsim(tokens: MatrixKey, offsets: MatrixKey) -> tuple[Any, TokenMatrix]:
    with Workspace.open(tokens[0]) as ws:
        matrix = TokenMatrix(ws.load_matrix(tokens[1]).astype(np.float32),
                             ws.load_matrix(offsets[1])[:, 0].astype(np.int64))
    return create_method("maxsim").build(TextSet.from_arrays(tokens=matrix)), matrix


def maxsim_index(tokens_id: int, offsets_id: int) -> tuple[Any, TokenMatrix]:
    """MaxSim built on stored token embeddings, and the token matrix (queries are documents' own tokens)."""
    ws = get_workspace()
    return _maxsim(ws.matrix_cache_key(tokens_id), ws.matrix_cache_key(offsets_id))


@st.cache_resource(max_entries=16, show_spinner="Loading the run…")
def _stored_run(path: str, run_id: int, created_at: str) -> Run:
    with Workspace.open(path) as ws:
        return ws.run(run_id)


def stored_run(run_id: int, created_at: str) -> Run:
    """A stored run with its details, loaded once per server; read-only (runs never change once saved)."""
    return _stored_run(get_workspace().path, int(run_id), str(created_at))


@st.cache_data(max_entries=64, show_spinner="Matching the run's documents to the corpus…")
def _run_fit(path: str, run_id: int, created_at: str, corpus: CorpusKey, corpus_name: str) -> RunFit:
    return fit_run(_stored_run(path, run_id, created_at), corpus_id=corpus[1], corpus_name=corpus_name,
                   doc_ids=_corpus_view(corpus).doc_ids)


def run_fit_for(run_id: int, created_at: str, corpus: CorpusInfo) -> RunFit:
    """Whether (and where) a retrieval run's documents are this corpus's (`embedlab.map_retrieval.fit_run`)."""
    ws = get_workspace()
    return _run_fit(ws.path, int(run_id), str(created_at), ws.corpus_cache_key(corpus), corpus.name)


@st.cache_data(max_entries=64, show_spinner=False)
def _corpora_showing_run(path: str, run_id: int, created_at: str,
                         corpora: tuple[tuple[int, str, str], ...]) -> list[str]:
    run = _stored_run(path, run_id, created_at)
    with Workspace.open(path) as ws:
        return [name for corpus_id, name, _ in corpora
                if fit_run(run, corpus_id=corpus_id, corpus_name=name, doc_ids=ws.doc_ids(corpus_id)).fits]


def corpora_showing_run(run_id: int, created_at: str, session_id: int) -> list[str]:
    """Names of the session's corpora whose map can show retrieval run `run_id`; recomputed when the session's
    corpora change."""
    ws = get_workspace()
    corpora = tuple((c.id, c.name, c.content_hash) for c in ws.corpora(session_id))
    return _corpora_showing_run(ws.path, int(run_id), str(created_at), corpora)


@st.cache_data(max_entries=64, show_spinner=False)
def _ood_brief(path: str, run_id: int, created_at: str, corpus_id: int, content_hash: str) -> dict[str, Any] | None:
    with Workspace.open(path) as ws:
        run = ws.run(run_id)
        positions, rows = rows_tested_on(run, run_corpora(ws.db, run), corpus_id)
    if not len(positions) or not run.scores:
        return None
    return {"id": int(run.id), "params": run.params, "metrics": run.metrics, "created_at": run.created_at,
            "scores": {m: np.asarray(v, dtype=np.float64) for m, v in run.scores.items()},
            "is_ood": np.asarray(run.is_ood, dtype=bool), "test_labels": run.details.get("test_labels"),
            "positions": positions, "rows": rows}


def ood_brief(run: RunHeader, corpus: CorpusInfo) -> dict[str, Any] | None:
    """What the Why OOD view needs of an OOD run (from `Workspace.runs`) to colour this corpus, None
    when the run tests none of its documents: params, metrics, scores, truth, test labels, and the test positions
    and rows on this corpus."""
    return _ood_brief(get_workspace().path, int(run.id), str(run.created_at), int(corpus.id),
                      corpus.content_hash)


@st.cache_data(max_entries=256, show_spinner=False)
def _best_detector(path: str, run_id: int, created_at: str, corpus_id: int, content_hash: str) -> str | None:
    brief = _ood_brief(path, run_id, created_at, corpus_id, content_hash)
    if brief is None:
        return None
    return max(brief["scores"], key=lambda m: brief["metrics"].get(m, {}).get("auroc") or 0)


def ood_colour_layers(session_id: int, corpus: CorpusInfo) -> dict[str, tuple[RunHeader, str]]:
    """The Atlas's "Colour by" choices from OOD runs: for every run of the session that tests documents of this
    corpus, its name -> (the run, its best detector by AUROC). A small cached answer per run: every Atlas
    rerun asks it."""
    ws = get_workspace()
    layers = {}
    for r in ws.runs(session_id, "ood"):
        best = _best_detector(ws.path, int(r.id), str(r.created_at), int(corpus.id), corpus.content_hash)
        if best is not None:
            layers[f"OOD score: run #{r.id} · {best}"] = (r, best)
    return layers


def ood_colour_values(run: RunHeader, method: str, corpus: CorpusInfo) -> np.ndarray:
    """Detector `method`'s score of an OOD run per document of the corpus, NaN where the run tests none."""
    brief = ood_brief(run, corpus)
    values = np.full(corpus.n_docs, np.nan, dtype=np.float32)
    ok = brief["rows"] < corpus.n_docs
    values[brief["rows"][ok]] = brief["scores"][method][brief["positions"][ok]]
    return values


@st.cache_resource(max_entries=4, show_spinner=False)
def _ood_training(path: str, run_id: int, created_at: str):
    with Workspace.open(path) as ws:
        run = ws.run(run_id)
        training = load_run_training(ws.db, run)
    _, means = class_means(training.vectors, training.labels)
    return training, id_reference(training, run.is_ood, means)


@st.cache_data(max_entries=256, show_spinner=False)
def _ood_explanation(path: str, run_id: int, created_at: str, position: int, k: int):
    training, reference = _ood_training(path, run_id, created_at)
    run = _stored_run(path, run_id, created_at)
    return (explain(training, run, position, k=k, reference=reference), int(training.id_corpus.id),
            training.id_corpus.name, training.matches_run)


def ood_explanation(run_id: int, created_at: str, position: int, k: int):
    """`embedlab.ood.explain.explain` of one test document of an OOD run (its k nearest training documents), with
    the training corpus's id and name and whether the rebuilt test set is the run's. The run's training set,
    rebuilt in its space, is kept as a resource (read-only vectors, not copied per rerun)."""
    return _ood_explanation(get_workspace().path, int(run_id), str(created_at), int(position), int(k))


# --- runs: the Retrieval and OOD pages (helper "runs") ---
# Keys: a BEIR folder or ZIP by (path, split, modification time); a corpus's labels by `CorpusKey`; an OOD run's test
# documents by (path, run id, created_at), for 5 minutes (they are read from the corpora stored now).


@st.cache_data(max_entries=16, show_spinner="Reading the BEIR collection…")
def _beir_summary(path: str, split: str, mtime: float) -> dict:
    return beir_summary(path, split)


def beir_summary_of(path: Path, split: str) -> dict:
    """Counts and warnings of one split of a BEIR folder or ZIP, or {"error": the loader's one line}."""
    return _beir_summary(str(path), split, path.stat().st_mtime)


@st.cache_data(max_entries=64, show_spinner=False)
def _label_counts(key: CorpusKey) -> dict[str, int]:
    with Workspace.open(key[0]) as ws:
        return ws.label_counts(key[1], skip_empty=True)


def label_counts_of(corpus: CorpusInfo) -> dict[str, int]:
    """How many documents carry each label of a stored corpus (empty labels not counted)."""
    return _label_counts(get_workspace().corpus_cache_key(corpus))


@st.cache_data(max_entries=16, show_spinner=False, ttl=300)
def _run_test_documents(path: str, run_id: int, created_at: str) -> dict[tuple[int, int], dict]:
    with Workspace.open(path) as ws:
        return ws.run_test_documents(ws.run(run_id))


def run_test_documents(run: RunHeader) -> dict[tuple[int, int], dict]:
    """The stored documents of an OOD run's test set by (corpus id as in the run, idx)."""
    return _run_test_documents(get_workspace().path, int(run.id), str(run.created_at))


# --- judgments: what to judge next (helper "judgments-ui") ---
# Keys: a pool's rankings by the corpus (`CorpusKey`), its queries ((idx, text) pairs), methods, models and depth;
# the grades are read fresh on every rerun (they change as the user judges), only the rankings are kept.


@st.cache_data(max_entries=8, show_spinner="Pooling: every method and model ranks the queries…")
def _pool_rankings(corpus: CorpusKey, queries: tuple[tuple[int | None, str | None], ...], methods: tuple[str, ...],
                   models: tuple[str, ...], k: int) -> dict[str, list[list[int]]]:
    with Workspace.open(corpus[0]) as ws:
        return ws.pool_rankings(corpus[1], [Query(idx=i, text=t) for i, t in queries], list(methods), list(models), k)


def pool_rankings(corpus: CorpusInfo, queries: Sequence[tuple[int | None, str | None]], methods: Sequence[str],
                  models: Sequence[str], k: int) -> dict[str, list[list[int]]]:
    """{system: per query its top-k document rows} of every method under every model (`embedlab.judgment_pool.
    rank_systems`), computed once per query set and systems."""
    return _pool_rankings(get_workspace().corpus_cache_key(corpus), tuple((None if i is None else int(i), t)
                                                                          for i, t in queries),
                          tuple(methods), tuple(models), int(k))
