"""What to judge next: TREC-style depth-k pooling of several retrieval methods and models.

For a query set (`pool_queries`: the corpus's judged queries, a seeded sample of its documents, or typed texts),
every system (a Retrieval-lab method under a model; a method that reads no embedding, such as bm25, is one system
whatever the model) ranks the corpus (`rank_systems`, through the lab's registry and the comparison's encoders: a
document query uses its stored row and is left out of its own ranking, a typed one is encoded in the corpus's
space). The pool is the union of every system's top `depth` per query (`build_pool`, pure):

* each pooled pair gets, per system, its rank (1..depth), or depth + 1 where the system did not pool it;
  its disagreement is the population variance of those ranks (0 when every system ranks it alike);
* the unjudged pairs come first, most disagreement first; ties: held by more systems, then the best rank, then
  query order, then document index; the judged pairs follow in the same order;
* coverage: judged@10 of each system, the share of its top 10 that is judged, averaged over the queries.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import sqlite_utils

from embedlab.embedding.embedders import DEFAULT_MODEL, Embedder
from embedlab.embedding.space import EmbeddingSpace
from embedlab.errors import InputError
from embedlab.judgments import Query, combined_grades, judged_queries, judgments
from embedlab.retrieval.comparison import SpaceEncoders
from embedlab.retrieval.evaluate import drop_rows, prepare
from embedlab.retrieval.judged import MixedQueries
from embedlab.retrieval.params import model_has_tokens, positive_int
from embedlab.retrieval.registry import create_method, parse_method_list
from storage.corpora import get_corpus, load_texts

POOL_SOURCES = ("judged", "sample", "typed")
DEFAULT_POOL_METHODS = ("bm25", "dense")
COVERAGE_K = 10
MAX_DEPTH = 100
MAX_POOL_QUERIES = 1000
Progress = Callable[[float, str], None]
Pair = tuple[str, int]


@dataclass(frozen=True)
class Candidate:
    """A pooled (query, document) pair: its rank under each system (`ranks`, in the pool's system order; depth + 1
    where the system did not pool it) and its grade when judged."""
    query: Query
    query_no: int                 # position of the query in the pool's query list
    doc_idx: int
    ranks: tuple[int, ...]
    depth: int
    grade: int | None = None

    @property
    def held_by(self) -> int:
        """How many systems pooled it (ranked it within the depth)."""
        return sum(1 for r in self.ranks if r <= self.depth)

    @property
    def best_rank(self) -> int:
        return min(self.ranks)

    @property
    def disagreement(self) -> float:
        """Population variance of its ranks (depth + 1 where a system did not pool it)."""
        return float(np.var(self.ranks)) if self.ranks else 0.0

    @property
    def judged(self) -> bool:
        return self.grade is not None


@dataclass
class Pool:
    """The pooled pairs in the order to judge them, and each system's judged@10."""
    systems: list[str]
    queries: list[Query]
    candidates: list[Candidate]
    coverage: dict[str, float | None]
    depth: int
    texts: list[str] = field(default_factory=list)      # each query's text (a document query: the document's)

    @property
    def unjudged(self) -> list[Candidate]:
        return [c for c in self.candidates if not c.judged]


def build_pool(queries: Sequence[Query], rankings: Mapping[str, Sequence[Sequence[int]]],
               judged: Mapping[Pair, int], *, depth: int, coverage_k: int = COVERAGE_K) -> Pool:
    """Pool every system's top `depth` (`rankings[system][query number]`: document rows, best first) and order the
    pairs (see the module docstring); `judged`: {(query key, document row): grade}."""
    systems = list(rankings)
    pooled: dict[tuple[int, int], dict[str, int]] = {}
    for s in systems:
        for qn in range(len(queries)):
            for rank, d in enumerate(list(rankings[s][qn])[:depth], start=1):
                pooled.setdefault((qn, int(d)), {}).setdefault(s, rank)
    candidates = [Candidate(queries[qn], qn, d, tuple(by.get(s, depth + 1) for s in systems), depth,
                            judged.get((queries[qn].key, d))) for (qn, d), by in pooled.items()]
    candidates.sort(key=lambda c: (c.judged, -c.disagreement, -c.held_by, c.best_rank, c.query_no, c.doc_idx))
    coverage: dict[str, float | None] = {}
    for s in systems:
        shares = []
        for qn, q in enumerate(queries):
            top = list(rankings[s][qn])[:coverage_k]
            if top:
                shares.append(sum(1 for d in top if (q.key, int(d)) in judged) / len(top))
        coverage[s] = float(np.mean(shares)) if shares else None
    return Pool(systems, list(queries), candidates, coverage, depth)


def pool_queries(db: sqlite_utils.Database, session_id: int, corpus_id: int, source: str, *, n_queries: int = 20,
                 seed: int = 0, texts: Sequence[str] = (), judges: Sequence[str] | None = None) -> list[Query]:
    """The query set: "judged" (the corpus's judged queries, by `judges`), "sample" (a seeded sample of
    `n_queries` documents, in index order) or "typed" (`texts`, duplicates dropped)."""
    if source not in POOL_SOURCES:
        raise InputError(f"unknown query set {source!r}; expected one of {', '.join(POOL_SOURCES)}")
    if source == "judged":
        found = [jq.query for jq in judged_queries(db, session_id, corpus_id, judges=judges)]
        if not found:
            raise InputError("no judged query yet: judge some results, or pool a sample of documents")
        return found[:MAX_POOL_QUERIES]
    if source == "typed":
        queries = list(dict.fromkeys(Query.typed(t) for t in texts if isinstance(t, str) and t.strip()))
        if not queries:
            raise InputError("type at least one query")
        return queries[:MAX_POOL_QUERIES]
    n_docs = get_corpus(db, corpus_id).n_docs
    n = min(int(positive_int(n_queries, "number of queries")), n_docs, MAX_POOL_QUERIES)
    rows = np.sort(np.random.default_rng(int(seed)).choice(n_docs, size=n, replace=False))
    return [Query.document(int(r)) for r in rows]


def system_name(method: str, model: str, *, model_free: bool, several_models: bool) -> str:
    """"dense · minilm" when several models are pooled; a method that reads no embedding is named alone."""
    return method if model_free or not several_models else f"{method} · {model}"


def model_name(model: str | Embedder) -> str:
    return model if isinstance(model, str) else str(model.name)


def _has_tokens(model: str | Embedder) -> bool:
    return model_has_tokens(model) if isinstance(model, str) else bool(model.has_tokens)


def rank_systems(db: sqlite_utils.Database, corpus_id: int, queries: Sequence[Query], methods: Sequence[str],
                 models: Sequence[str | Embedder], k: int, *,
                 progress: Progress | None = None) -> dict[str, list[list[int]]]:
    """{system: per query its top-k document rows}: every method under every model (a model name, or an embedder),
    a model-free method once."""
    texts = load_texts(db, corpus_id)
    rows = [q.idx for q in queries]
    q_texts = [q.text if q.text is not None else texts[int(q.idx)] for q in queries]
    names = parse_method_list(list(methods))
    out: dict[str, list[list[int]]] = {}
    steps, done = len(names) * len(models), 0
    for model in models:
        enc = SpaceEncoders(EmbeddingSpace.for_corpus(db, corpus_id, model), texts)
        corpus = enc.corpus_set([str(i) for i in range(len(texts))])
        mixed = MixedQueries(enc, rows)
        query_set = mixed.text_set(q_texts, [str(i) for i in range(len(queries))])
        for name in names:
            method = create_method(name)
            model_free = not method.needs & {"embeddings", "tokens", "query_bank"}
            system = system_name(name, model_name(model), model_free=model_free, several_models=len(models) > 1)
            done += 1
            if system in out:
                continue
            if "query_qrels" in method.needs:
                raise InputError(f"{name} needs training queries with judgements: pool it on the Retrieval page's "
                                 "BEIR source instead")
            if "tokens" in method.needs and not _has_tokens(model):
                raise InputError(f"{name} needs token embeddings, which {model_name(model)} has not")
            if progress:
                progress((done - 1) / steps, f"{system}: ranking {len(queries)} queries")
            prepare(corpus, method.needs)
            prepare(query_set, method.needs)
            method.load_libraries()
            method.build(corpus)
            ids, scores = method.search(query_set, k + 1)
            ids, _ = drop_rows(ids, scores, mixed.exclude, k)
            out[system] = [[int(d) for d in row if d >= 0] for row in ids]
    if progress:
        progress(1.0, f"ranked with {len(out)} systems")
    return out


def judgment_pool(db: sqlite_utils.Database, session_id: int, corpus_id: int, *, source: str = "judged",
                  n_queries: int = 20, seed: int = 0, texts: Sequence[str] = (),
                  methods: Sequence[str] = DEFAULT_POOL_METHODS, models: Sequence[str | Embedder] | None = None,
                  depth: int = 10, judges: Sequence[str] | None = None,
                  progress: Progress | None = None) -> Pool:
    """Pool the top `depth` of every method under every model for the query set, unjudged pairs first where the
    systems disagree most, with judged@10 per system. "Judged" counts the grades of `judges` (None: anyone's)."""
    depth = int(positive_int(depth, "pool depth"))
    if depth > MAX_DEPTH:
        raise InputError(f"the pool depth must be at most {MAX_DEPTH}, got {depth}")
    given = [m.strip() if isinstance(m, str) else m for m in (models or [DEFAULT_MODEL])]
    models = list({model_name(m): m for m in given if model_name(m)}.values())    # the last of a name kept
    if not models:
        raise InputError("pick at least one model")
    queries = pool_queries(db, session_id, corpus_id, source, n_queries=n_queries, seed=seed, texts=texts,
                           judges=judges)
    rankings = rank_systems(db, corpus_id, queries, methods, models, max(depth, COVERAGE_K), progress=progress)
    grades = combined_grades(judgments(db, session_id, corpus_id, judges=judges))
    pool = build_pool(queries, rankings, grades, depth=depth)
    all_texts = load_texts(db, corpus_id)
    pool.texts = [q.text if q.text is not None else all_texts[int(q.idx)] for q in queries]
    return pool
