"""The one comparison of retrieval methods, used by the Retrieval page's job and by `bench-retrieval` alike.

`compare_methods(db, params)` loads the documents, queries and judgements that the params describe (a BEIR split,
queries drawn from a stored corpus's labels, or a stored corpus's own relevance judgments: `embedlab.retrieval.
judged`, whose runs also get the condensed-list scores), embeds them through the corpus's `EmbeddingSpace` (documents
stored once; queries encoded in the same space, so a corpus-fitted model uses the corpus's fit), evaluates every
method, and returns the results; the job turns them into a stored run, the CLI into the JSON of DESIGN §3.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlite_utils

from embedlab.embedding.space import EmbeddingSpace
from embedlab.errors import Cancelled, InputError
from embedlab.retrieval.base import TextSet
from embedlab.retrieval.beir import load_beir, queries_from_labels
from embedlab.retrieval.evaluate import METRICS, MethodResult, evaluate_method
from embedlab.retrieval.judged import MixedQueries, condensed_metrics, judged_queries
from embedlab.retrieval.params import method_needs, validate_comparison
from embedlab.retrieval.registry import create_method
from storage.corpora import get_corpus, load_documents

Progress = Callable[[float, str], None]

EMBED_SHARE = 0.3               # progress bar share of embedding (when anything needs embedding)
EVAL_K = 100                    # depth of the evaluated rankings (Recall@100, MAP@100)


class SpaceEncoders:
    """A TextSet's `embed` / `embed_tokens` callbacks over one EmbeddingSpace, with a progress hook that the
    caller points at a stage.

    The corpus's callbacks give the space's stored documents; any other texts (queries, the query bank) are
    encoded in the same space. A row subset of the corpus that has not had its representations computed yet is
    encoded like any other texts, never given the whole corpus's matrix.
    """

    def __init__(self, space: EmbeddingSpace, corpus_texts: Sequence[str]) -> None:
        self.space = space
        self.corpus_texts = list(corpus_texts)
        self.report: Progress | None = None
        self.should_stop: Callable[[], bool] | None = None

    def _is_corpus(self, texts: Sequence[str]) -> bool:
        return len(texts) == len(self.corpus_texts) and list(texts) == self.corpus_texts

    def documents(self, texts: Sequence[str]) -> np.ndarray:
        if self._is_corpus(texts):
            return self.space.documents(progress=self.report, should_stop=self.should_stop)
        return self.encode(texts)

    def document_tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        if self._is_corpus(texts):
            return self.space.tokens(progress=self.report)
        return self.encode_tokens(texts)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.space.encode(list(texts), progress=self.report)

    def encode_tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        return self.space.encode_tokens(list(texts), progress=self.report)

    def corpus_set(self, ids: Sequence[str], reference_queries: TextSet | None = None) -> TextSet:
        return TextSet(self.corpus_texts, list(ids), self.documents, self.document_tokens,
                       reference_queries=reference_queries)

    def query_set(self, texts: Sequence[str], ids: Sequence[str]) -> TextSet:
        return TextSet(list(texts), list(ids), self.encode, self.encode_tokens)


@dataclass
class Comparison:
    """What methods are compared on: documents, queries, judgements, and (labels) per query a row to leave out."""
    dataset: str
    corpus: TextSet
    queries: TextSet
    qrels: dict[str, dict[str, int]]
    encoders: SpaceEncoders
    query_rows: np.ndarray | None = None     # labels: queries are these corpus rows, left out of their own ranking
    warnings: list[str] = field(default_factory=list)
    exclude_rows: np.ndarray | None = None   # labels, capped: per query its row and its label's unjudged rows
    document_queries: dict[str, int] = field(default_factory=dict)   # judgments: query id -> its document's row

    @property
    def space(self) -> EmbeddingSpace:
        return self.encoders.space

    @property
    def exclude(self) -> np.ndarray | None:
        return self.exclude_rows if self.exclude_rows is not None else self.query_rows

    def prepare(self, needs: frozenset[str], progress: Progress | None = None,
                should_stop: Callable[[], bool] | None = None) -> None:
        """Compute the representations the methods read (stored in the database), reporting progress.

        Token embeddings come first: one model pass stores the sentence embeddings with them, so the sentence
        embeddings that follow are a cache hit. Queries drawn from the corpus (labels) take the documents' rows.
        """
        steps: list[tuple[str, Callable[[], Any]]] = []
        if "tokens" in needs:
            steps.append(("document token embeddings", self.corpus.tokens))
        if "embeddings" in needs:
            steps.append(("document embeddings", self.corpus.embeddings))
        if self.query_rows is None:
            if "tokens" in needs:
                steps.append(("query token embeddings", self.queries.tokens))
            if "embeddings" in needs:
                steps.append(("query embeddings", self.queries.embeddings))
        bank = self.corpus.reference_queries
        if "query_qrels" in needs and "tokens" in needs and bank is not None:   # a router's experts search them
            steps.append(("training query token embeddings", bank.tokens))
        if "query_bank" in needs and bank is not None:
            steps.append(("reference query embeddings", bank.embeddings))
        self.encoders.should_stop = should_stop
        try:
            for i, (what, step) in enumerate(steps):
                if should_stop and should_stop():
                    raise Cancelled(f"stopped before the {what}")

                def report(frac: float, msg: str, i: int = i, what: str = what) -> None:
                    if progress:
                        progress((i + min(1.0, max(0.0, frac))) / len(steps), f"{what}: {msg}")

                self.encoders.report = report
                report(0.0, "computing (stored after the first run)")
                step()
        finally:
            self.encoders.report = None
            self.encoders.should_stop = None
        if self.query_rows is not None:
            self.queries = self.corpus.subset(self.query_rows)   # carries the corpus's representations along


def load_comparison(db: sqlite_utils.Database | None, p: dict) -> Comparison:
    """The documents, queries and judgements that validated params describe (nothing is embedded yet)."""
    if p["source"] == "beir":
        return _beir_comparison(db, p)
    if db is None:
        raise InputError(f"queries from {p['source']} need the database that holds the corpus")
    if p["source"] == "judgments":
        return _judgments_comparison(db, p)
    return _labels_comparison(db, p)


def _beir_comparison(db: sqlite_utils.Database | None, p: dict) -> Comparison:
    ds = load_beir(p["beir_dir"], p["split"], name=p.get("dataset"))
    if p.get("max_docs"):
        ds = ds.limit_docs(p["max_docs"])
    if not ds.query_ids:
        raise InputError(f"no query of split {p['split']!r} has a relevant document in the kept corpus",
                         file=str(p["beir_dir"]))
    query_ids, query_texts = ds.query_ids, ds.queries
    if p.get("max_queries"):
        query_ids, query_texts = query_ids[:p["max_queries"]], query_texts[:p["max_queries"]]
    texts = ds.corpus_texts
    enc = SpaceEncoders(EmbeddingSpace(db, texts, p["model"]), texts)
    ref = enc.query_set(ds.reference_queries, ds.reference_query_ids) if ds.reference_queries else None
    if ref is not None:
        ref.qrels = ds.reference_qrels
    return Comparison(p.get("dataset") or ds.name, enc.corpus_set(ds.doc_ids, ref),
                      enc.query_set(query_texts, query_ids), {q: ds.qrels[q] for q in query_ids}, enc,
                      warnings=list(ds.warnings))


def _labels_comparison(db: sqlite_utils.Database, p: dict) -> Comparison:
    info = get_corpus(db, p["corpus_id"])
    if p.get("session_id") is not None and info.session_id != p["session_id"]:
        raise InputError(f"corpus {info.name!r} belongs to another session")
    docs = load_documents(db, info.id)
    labels = [d["label"] for d in docs]
    if all(lab is None for lab in labels):
        raise InputError(f"corpus {info.name!r} has no labels: queries from labels need a label column")
    doc_ids = [str(d["doc_id"]) for d in docs]
    if len(set(doc_ids)) != len(doc_ids):
        doc_ids = [str(d["idx"]) for d in docs]
    texts = [d["text"] for d in docs]
    lq = queries_from_labels(labels, p["n_queries"], p["seed"], doc_ids=doc_ids, max_relevant=p.get("max_relevant"))
    enc = SpaceEncoders(EmbeddingSpace.for_corpus(db, info.id, p["model"]), texts)
    corpus = enc.corpus_set(doc_ids)
    return Comparison(p.get("dataset") or info.name, corpus, corpus.subset(lq.rows), lq.qrels, enc,
                      query_rows=lq.rows, exclude_rows=lq.exclude)


def _judgments_comparison(db: sqlite_utils.Database, p: dict) -> Comparison:
    """A corpus's judged queries: documents of the corpus take their stored rows (and leave their own ranking),
    typed ones are encoded in the corpus's space (`embedlab.retrieval.judged`)."""
    jq = judged_queries(db, p)
    enc = SpaceEncoders(EmbeddingSpace.for_corpus(db, p["corpus_id"], p["model"]), jq.texts)
    mixed = MixedQueries(enc, jq.query_rows)
    return Comparison(p.get("dataset") or jq.corpus_name, enc.corpus_set(jq.doc_ids),
                      mixed.text_set(jq.query_texts, jq.query_ids), jq.qrels, enc, warnings=jq.warnings,
                      exclude_rows=mixed.exclude, document_queries=jq.document_queries)


@dataclass
class ComparisonResult:
    """A finished comparison: the normalised params, what was compared, each method's evaluation, and the seconds
    spent computing the embeddings (and token embeddings) before any index was built (cached ones cost nothing)."""
    params: dict
    comparison: Comparison
    results: dict[str, MethodResult]
    embed_s: float = 0.0
    condensed: dict[str, dict[str, float | None]] = field(default_factory=dict)   # judgments: condensed lists
    condensed_significance: dict[str, dict[str, float | None]] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, dict[str, float | int | None]]:
        """{method: bench-JSON entry} (DESIGN §3 keys, then recall@10, map@100, build_s and method extras),
        floats rounded to 6 digits, non-finite ones as None."""
        return {name: finite_entry(r.summary()) for name, r in self.results.items()}

    @property
    def runs(self) -> dict[str, dict[str, dict[str, float]]]:
        return {name: r.run for name, r in self.results.items()}


def compare_methods(db: sqlite_utils.Database | None, params: dict, *, progress: Progress | None = None,
                    should_stop: Callable[[], bool] | None = None) -> ComparisonResult:
    """Evaluate every chosen method on what `params` describe (see `embedlab.retrieval.params`); embeddings are
    stored in `db` (None: computed and kept in memory only)."""
    def report(frac: float, msg: str) -> None:
        if progress:
            progress(max(0.0, min(1.0, frac)), msg)

    p = validate_comparison(params)
    comp = load_comparison(db, p)    # no progress line before the input is known to be valid
    p["dataset"] = p.get("dataset") or comp.dataset
    names = p["methods"]
    needs_of = {n: method_needs(n, p["params"]) for n in names}
    needs = frozenset().union(*needs_of.values())
    bank = comp.corpus.reference_queries
    if "query_qrels" in needs and (bank is None or not bank.qrels):
        users = ", ".join(n for n in names if "query_qrels" in needs_of[n])
        raise InputError(f"{users} needs training queries with judgements (a BEIR collection with a "
                         "qrels/train.tsv split besides the evaluated one); these queries have none")
    report(0.0, f"{len(comp.corpus):,} documents and {len(comp.queries):,} queries loaded")
    share = EMBED_SHARE if needs & {"embeddings", "tokens"} else 0.0
    started = time.perf_counter()
    comp.prepare(needs, lambda f, m: report(share * f, m), should_stop)
    embed_s = time.perf_counter() - started
    results: dict[str, MethodResult] = {}
    span = (1.0 - share) / len(names)
    for i, name in enumerate(names):
        if should_stop and should_stop():
            raise Cancelled(f"stopped after {i} of {len(names)} methods")
        method = create_method(name, **p["params"].get(name, {}))
        results[name] = evaluate_method(method, comp.corpus, comp.queries, comp.qrels, k=EVAL_K, metrics=METRICS,
                                        exclude=comp.exclude,
                                        progress=lambda f, m, i=i: report(share + span * (i + f), m))
    done = ComparisonResult(p, comp, results, embed_s)
    if p["source"] == "judgments":     # beside it, unjudged documents removed from every ranking (Sakai 2007)
        means, significance = condensed_metrics(comp.qrels, done.runs, p["baseline"])
        done.condensed = {name: finite_entry(m) for name, m in means.items()}
        done.condensed_significance = significance
    report(1.0, f"compared {len(names)} method(s) on {len(comp.queries)} queries")
    return done


def finite_entry(entry: dict) -> dict:
    """Floats rounded to 6 digits, NaN and infinities as None (strict JSON)."""
    out = {}
    for k, v in entry.items():
        if isinstance(v, float):
            v = round(v, 6) if math.isfinite(v) else None
        out[k] = v
    return out
