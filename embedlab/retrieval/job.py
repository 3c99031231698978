"""The `retrieval` job behind the Retrieval page: compare methods on BEIR queries or on queries sampled from a
corpus's labels, and keep the comparison as a run; plus ranking one typed query against a stored corpus.

params of the job (JSON):
  {"session_id": 1, "source": "beir", "beir_dir": PATH (folder or .zip), "split": "test", "max_docs": N | None,
   "max_queries": N | None, ...}
  {"session_id": 1, "source": "labels", "corpus_id": ID, "n_queries": 200, "seed": 0, ...}
  ... with "model", "methods": [names], "params": {method: {param: value}}, "baseline": name, "dataset": label.
The run's metrics are {method: bench-JSON entry}; its details hold what the drill-down shows, bounded in size
(see `run_details`).
"""
from __future__ import annotations

import json
import math
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import sqlite_utils

from embedlab.errors import InputError
from embedlab.jobs import JobContext, job_kind
from embedlab.retrieval.base import RetrievalMethod, TextSet, TokenMatrix
from embedlab.retrieval.registry import create_method, method_info, parse_method_list

Progress = Callable[[float, str], None]

SOURCES = ("beir", "labels")
TOP_SHOWN = 10                  # ranked documents kept per query and method for the drill-down
MAX_DETAIL_QUERIES = 1000       # queries whose rankings, texts and qrels the run keeps
MAX_QRELS_PER_QUERY = 100       # judged documents kept per query (besides those shown in a ranking)
TEXT_CHARS = 300                # query and document texts are cut to this length in the run
SIGNIFICANCE_METRICS = ("ndcg@10", "recall@100", "mrr@10", "map@100")
EMBED_SHARE = 0.3               # progress bar share of embedding (when anything needs embedding)
EVAL_K = 100                    # depth of the evaluated rankings (Recall@100, MAP@100)


# --- parameters ---------------------------------------------------------------------------------------------------


def _positive_int(value: Any, what: str, *, allow_none: bool = False) -> int | None:
    if value is None or value == "" or value == 0 and allow_none:
        if allow_none:
            return None
        raise InputError(f"{what} is missing")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a whole number, got {value!r}") from None
    if number < 1 or number != float(value):
        raise InputError(f"{what} must be a positive whole number, got {value!r}")
    return number


def dataset_label(beir_dir: str) -> str:
    """The name a BEIR folder or ZIP goes by in the run list: `beir-scifact/` -> scifact."""
    name = Path(beir_dir).name
    name = name[:-4] if name.endswith(".zip") else name
    for prefix in ("beir-", "beir_"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name or "beir"


def store_beir_upload(data: bytes, filename: str, *, uploads_dir: str | Path | None = None) -> Path:
    """Keep an uploaded BEIR ZIP as <uploads_dir>/<sha256 prefix>/<name>.zip (default data/uploads; the same bytes
    are stored once), so a background job and later reruns can read it; the name is reduced to safe characters."""
    import hashlib
    import re

    from embedlab.datasets import ROOT

    folder = Path(uploads_dir or ROOT / "data" / "uploads") / hashlib.sha256(data).hexdigest()[:16]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(filename or "upload").name)[:80].strip("._") or "upload"
    path = folder / (stem if stem.lower().endswith(".zip") else f"{stem}.zip")
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


def beir_splits(source: str | Path) -> list[str]:
    """The qrels splits of a BEIR folder or .zip (for a split picker); [] when there are none to be found."""
    from embedlab.retrieval.beir import _Source

    path = Path(source)
    try:
        src = _Source(data=path.read_bytes(), name=path.name) if path.suffix == ".zip" else _Source(path)
    except (InputError, OSError, zipfile.BadZipFile):
        return []
    return [f[:-4] for f in src.list_dir("qrels") if f.endswith(".tsv")]


def validate_params(params: dict) -> dict:
    """A checked, normalised copy of a job's params; InputError names what is wrong (the page calls this before
    submitting, so the user sees the problem at once)."""
    from embedlab.embedding.embedders import DEFAULT_MODEL, TFIDF_MODEL

    p = dict(params)
    source = p.get("source")
    if source not in SOURCES:
        raise InputError(f"unknown query source {source!r}; expected one of {', '.join(SOURCES)}")
    p["session_id"] = _positive_int(p.get("session_id"), "session_id")
    p["model"] = str(p.get("model") or DEFAULT_MODEL).strip()
    if not p.get("methods"):
        raise InputError("pick at least one retrieval method")
    p["methods"] = parse_method_list(p["methods"])
    method_params = p.get("params") or {}
    if not isinstance(method_params, dict):
        raise InputError("params must map method names to their parameters")
    extra = sorted(set(method_params) - set(p["methods"]))
    if extra:
        raise InputError(f"parameters given for method(s) not chosen: {', '.join(extra)}")
    for name, values in method_params.items():
        create_method(name, **(values or {}))       # raises InputError on unknown or mistyped parameters
    p["params"] = {n: dict(v) for n, v in method_params.items() if v}
    baseline = p.get("baseline") or ("bm25" if "bm25" in p["methods"] else p["methods"][0])
    if baseline not in p["methods"]:
        raise InputError(f"the baseline {baseline!r} is not among the chosen methods")
    p["baseline"] = baseline
    if p["model"] == TFIDF_MODEL:
        token_methods = [n for n in p["methods"] if "tokens" in method_info(n).needs]
        if token_methods:
            raise InputError(f"{', '.join(token_methods)} need token embeddings, which tfidf-svd has not: "
                             "pick a sentence-transformers model")
    if source == "beir":
        if not p.get("beir_dir"):
            raise InputError("no BEIR folder or ZIP given")
        p["beir_dir"] = str(p["beir_dir"])
        p["split"] = str(p.get("split") or "test")
        p["max_docs"] = _positive_int(p.get("max_docs"), "max docs", allow_none=True)
        p["max_queries"] = _positive_int(p.get("max_queries"), "max queries", allow_none=True)
        p.setdefault("dataset", dataset_label(p["beir_dir"]))
    else:
        p["corpus_id"] = _positive_int(p.get("corpus_id"), "corpus_id")
        p["n_queries"] = _positive_int(p.get("n_queries", 200), "number of queries")
        try:
            p["seed"] = int(p.get("seed") or 0)
        except (TypeError, ValueError):
            raise InputError(f"seed must be a whole number, got {p.get('seed')!r}") from None
    return p


# --- encoders -----------------------------------------------------------------------------------------------------


class Encoders:
    """Embedding functions of one model for a TextSet, with a progress hook that the caller points at a stage.

    tfidf-svd is fitted once, on the corpus, and embeds documents and queries alike: fitted separately (as a cached
    `embed_texts` call per text list would do) queries and documents would land in different spaces.
    """

    def __init__(self, model: str, db: sqlite_utils.Database | None, corpus_texts: Sequence[str]) -> None:
        from embedlab.embedding.embedders import TFIDF_MODEL, get_embedder

        self.model, self.db = model, db
        self.report: Progress | None = None
        self.fitted = get_embedder(model).fit(list(corpus_texts)) if model == TFIDF_MODEL else None

    def embed(self, texts: list[str]) -> np.ndarray:
        from embedlab.embedding.cache import embed_texts

        if self.fitted is not None:
            return self.fitted.encode(list(texts), progress=self.report)
        return embed_texts(self.db, texts, self.model, progress=self.report)

    def embed_tokens(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        from embedlab.embedding.cache import embed_tokens

        return embed_tokens(self.db, texts, self.model, progress=self.report)


# --- the comparison -----------------------------------------------------------------------------------------------


@dataclass
class Comparison:
    """What a run compares methods on: documents, queries, judgements, and per query a row to leave out."""
    dataset: str
    corpus: TextSet
    queries: TextSet
    qrels: dict[str, dict[str, int]]
    encoders: Encoders
    query_rows: np.ndarray | None = None     # labels: queries are these corpus rows, left out of their own ranking
    warnings: list[str] = field(default_factory=list)

    @property
    def exclude(self) -> np.ndarray | None:
        return self.query_rows

    def prepare(self, needs: frozenset[str], progress: Progress | None = None) -> None:
        """Compute the representations the methods read (cached in the database), reporting progress."""
        steps: list[tuple[str, Callable[[], Any]]] = []
        if "embeddings" in needs:
            steps.append(("document embeddings", self.corpus.embeddings))
        if "tokens" in needs:
            steps.append(("document token embeddings", self.corpus.tokens))
        if self.query_rows is None:
            if "embeddings" in needs:
                steps.append(("query embeddings", self.queries.embeddings))
            if "tokens" in needs:
                steps.append(("query token embeddings", self.queries.tokens))
        if "query_bank" in needs and self.corpus.reference_queries is not None:
            steps.append(("reference query embeddings", self.corpus.reference_queries.embeddings))
        for i, (what, step) in enumerate(steps):
            def report(frac: float, msg: str, i: int = i, what: str = what) -> None:
                if progress:
                    progress((i + min(1.0, frac)) / len(steps), f"{what}: {msg}")

            self.encoders.report = report
            report(0.0, "computing (cached after the first run)")
            step()
        self.encoders.report = None
        if self.query_rows is not None:
            self.queries = self.corpus.subset(self.query_rows)   # carries the corpus's representations along


def load_comparison(db: sqlite_utils.Database, p: dict) -> Comparison:
    """The documents, queries and judgements that validated params describe."""
    if p["source"] == "beir":
        return _beir_comparison(db, p)
    return _labels_comparison(db, p)


def _beir_comparison(db: sqlite_utils.Database, p: dict) -> Comparison:
    from embedlab.retrieval.beir import load_beir

    ds = load_beir(p["beir_dir"], p["split"], name=p.get("dataset"))
    if p.get("max_docs"):
        ds = ds.limit_docs(p["max_docs"])
    if not ds.query_ids:
        raise InputError(f"no query of split {p['split']!r} has a relevant document in the kept corpus",
                         file=str(p["beir_dir"]))
    query_ids, query_texts = ds.query_ids, ds.queries
    if p.get("max_queries"):
        query_ids, query_texts = query_ids[:p["max_queries"]], query_texts[:p["max_queries"]]
    qrels = {q: ds.qrels[q] for q in query_ids}
    enc = Encoders(p["model"], db, ds.corpus_texts)
    ref = (TextSet(ds.reference_queries, ds.reference_query_ids, enc.embed, enc.embed_tokens)
           if ds.reference_queries else None)
    corpus = TextSet(ds.corpus_texts, ds.doc_ids, enc.embed, enc.embed_tokens, reference_queries=ref)
    queries = TextSet(query_texts, query_ids, enc.embed, enc.embed_tokens)
    return Comparison(p.get("dataset") or ds.name, corpus, queries, qrels, enc, warnings=list(ds.warnings))


def _labels_comparison(db: sqlite_utils.Database, p: dict) -> Comparison:
    from embedlab.retrieval.beir import queries_from_labels
    from storage.corpora import get_corpus, load_documents

    info = get_corpus(db, p["corpus_id"])
    if info.session_id != p["session_id"]:
        raise InputError(f"corpus {info.name!r} belongs to another session")
    docs = load_documents(db, info.id)
    labels = [d["label"] for d in docs]
    if all(lab is None for lab in labels):
        raise InputError(f"corpus {info.name!r} has no labels: queries from labels need a label column")
    doc_ids = [str(d["doc_id"]) for d in docs]
    if len(set(doc_ids)) != len(doc_ids):
        doc_ids = [str(d["idx"]) for d in docs]
    texts = [d["text"] for d in docs]
    lq = queries_from_labels(labels, p["n_queries"], p["seed"], doc_ids=doc_ids)
    enc = Encoders(p["model"], db, texts)
    corpus = TextSet(texts, doc_ids, enc.embed, enc.embed_tokens)
    return Comparison(p.get("dataset") or info.name, corpus, corpus.subset(lq.rows), lq.qrels, enc,
                      query_rows=lq.rows)


def run_comparison(db: sqlite_utils.Database, params: dict, *, progress: Progress | None = None,
                   should_stop: Callable[[], bool] | None = None) -> tuple[dict, dict, dict]:
    """Evaluate every chosen method; returns (normalised params, metrics, details) as a run stores them."""
    from embedlab.errors import Cancelled
    from embedlab.retrieval.evaluate import METRICS, evaluate_method

    def report(frac: float, msg: str) -> None:
        if progress:
            progress(max(0.0, min(1.0, frac)), msg)

    p = validate_params(params)
    report(0.0, "loading queries and documents")
    comp = load_comparison(db, p)
    p.setdefault("dataset", comp.dataset)
    names = p["methods"]
    needs = frozenset().union(*(method_info(n).needs for n in names))
    share = EMBED_SHARE if needs & {"embeddings", "tokens"} else 0.0
    comp.prepare(needs, lambda f, m: report(share * f, m))
    results = {}
    for i, name in enumerate(names):
        if should_stop and should_stop():
            raise Cancelled(f"stopped after {i} of {len(names)} methods")
        method = create_method(name, **p["params"].get(name, {}))
        span = (1.0 - share) / len(names)
        results[name] = evaluate_method(method, comp.corpus, comp.queries, comp.qrels, k=EVAL_K, metrics=METRICS,
                                        exclude=comp.exclude,
                                        progress=lambda f, m, i=i: report(share + span * (i + f), m))
    report(1.0, "comparing with the baseline")
    metrics = {n: _finite(r.summary()) for n, r in results.items()}
    significance = significance_vs_baseline(comp.qrels, {n: r.run for n, r in results.items()}, p["baseline"])
    return p, metrics, run_details(comp, results, significance, baseline=p["baseline"])


def significance_vs_baseline(qrels: dict, runs: dict, baseline: str,
                             metrics: Sequence[str] = SIGNIFICANCE_METRICS) -> dict[str, dict[str, float | None]]:
    """{method: {metric: p-value}} of a paired two-sided t-test (ranx.compare) against the baseline; None where
    the test is undefined (e.g. identical per-query values)."""
    from embedlab.retrieval.evaluate import compare_to_baseline

    if len(runs) < 2 or baseline not in runs:
        return {}
    report = compare_to_baseline(qrels, runs, baseline, metrics=metrics)
    return {n: {m: _finite_or_none(v["p_value"]) for m, v in per_metric.items()} for n, per_metric in report.items()}


def run_details(comp: Comparison, results: dict, significance: dict, *, baseline: str,
                max_queries: int | None = None) -> dict:
    """What the page's drill-down needs, bounded: the first `max_queries` queries with each method's top 10,
    nDCG@10 per query, their judgements (at most MAX_QRELS_PER_QUERY besides the shown documents) and the texts
    (cut to TEXT_CHARS) of the queries and of the documents shown."""
    qids = list(comp.queries.ids[:max_queries or MAX_DETAIL_QUERIES])
    doc_ids = comp.corpus.ids
    rankings: dict[str, dict[str, list]] = {}
    per_query: dict[str, dict[str, float]] = {}
    shown: dict[str, set[str]] = {q: set() for q in qids}
    for name, r in results.items():
        per_query[name] = {q: round(float(r.per_query.get("ndcg@10", {}).get(q, 0.0)), 6) for q in qids}
        ranking = {}
        for qi, q in enumerate(qids):
            row = [[doc_ids[int(d)], _short_float(s)] for d, s in zip(r.ids[qi][:TOP_SHOWN], r.scores[qi][:TOP_SHOWN])
                   if d >= 0]
            shown[q].update(d for d, _ in row)
            ranking[q] = row
        rankings[name] = ranking
    qrels, n_relevant = {}, {}
    for q in qids:
        judged = comp.qrels.get(q, {})
        n_relevant[q] = sum(1 for r in judged.values() if r > 0)
        if len(judged) > MAX_QRELS_PER_QUERY:
            first = list(judged)[:MAX_QRELS_PER_QUERY]
            judged = {d: judged[d] for d in dict.fromkeys([*first, *(d for d in shown[q] if d in judged)])}
        qrels[q] = {d: int(r) for d, r in judged.items()}
    row_of = {d: i for i, d in enumerate(doc_ids)}
    wanted = sorted(set().union(*shown.values()), key=lambda d: row_of[d]) if shown else []
    query_text = dict(zip(comp.queries.ids, comp.queries.texts))
    return {"dataset": comp.dataset, "n_docs": len(comp.corpus), "n_queries": len(comp.queries),
            "n_queries_shown": len(qids), "baseline": baseline,
            "per_query": per_query, "rankings": rankings, "qrels": qrels, "n_relevant": n_relevant,
            "queries": {q: query_text[q][:TEXT_CHARS] for q in qids},
            "docs": {d: comp.corpus.texts[row_of[d]][:TEXT_CHARS] for d in wanted},
            "significance": significance, "warnings": comp.warnings[:20]}


def _short_float(x: float) -> float:
    x = float(x)
    return float(f"{x:.6g}") if math.isfinite(x) else 0.0


def _finite_or_none(x: Any) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _finite(entry: dict) -> dict:
    out = {}
    for k, v in entry.items():
        if isinstance(v, float):
            v = round(v, 6) if math.isfinite(v) else None
        out[k] = v
    return out


@job_kind("retrieval")
def retrieval_task(db: sqlite_utils.Database, params: dict, ctx: JobContext) -> str:
    """Compare retrieval methods as `params` describe (see the module docstring); store the run."""
    from storage.sessions import save_run

    p, metrics, details = run_comparison(db, params, progress=ctx.progress, should_stop=ctx.should_stop)
    run_id = save_run(db, p["session_id"], "retrieval", p, metrics, details)
    return f"run:{run_id}"


# --- the drill-down -----------------------------------------------------------------------------------------------


def disagreements(details: dict, a: str, b: str) -> list[tuple[str, float]]:
    """(query id, nDCG@10 of b minus a) for the stored queries, largest |difference| first (ties by query order)."""
    pa, pb = details.get("per_query", {}).get(a, {}), details.get("per_query", {}).get(b, {})
    order = list(details.get("queries", {}))
    deltas = [(q, float(pb.get(q, 0.0)) - float(pa.get(q, 0.0))) for q in order]
    return sorted(deltas, key=lambda qd: -abs(qd[1]))


def ranked_list_rows(details: dict, method: str, qid: str) -> list[dict]:
    """One method's stored top 10 for a query, with relevance marks and document snippets (plain text)."""
    judged = details.get("qrels", {}).get(qid, {})
    docs = details.get("docs", {})
    rows = []
    for rank, (doc_id, score) in enumerate(details.get("rankings", {}).get(method, {}).get(qid, []), start=1):
        rel = judged.get(doc_id, 0)
        rows.append({"rank": rank, "relevant": "✓" if rel > 0 else "", "doc_id": doc_id, "score": score,
                     "text": docs.get(doc_id, "")})
    return rows


# --- a typed query ------------------------------------------------------------------------------------------------


MAX_CACHED_INDEXES = 6
_INDEXES: "OrderedDict[tuple, _CachedIndex]" = OrderedDict()
_INDEX_LOCK = threading.Lock()


@dataclass
class _CachedIndex:
    method: RetrievalMethod
    doc_ids: list[str]
    query_encoder: Any               # an embedder fitted as the documents' was
    lock: threading.Lock = field(default_factory=threading.Lock)


def clear_index_cache() -> None:
    with _INDEX_LOCK:
        _INDEXES.clear()


def _corpus_text_set(db: sqlite_utils.Database, corpus_id: int, model: str, needs: frozenset[str]):
    from embedlab.embedding.embedders import TFIDF_MODEL, get_embedder
    from embedlab.embedding.cache import embed_corpus, embed_tokens
    from storage.corpora import load_documents
    from storage.matrices import load_matrix

    docs = load_documents(db, corpus_id)
    texts, doc_ids = [d["text"] for d in docs], [str(d["doc_id"]) for d in docs]
    if model == TFIDF_MODEL:
        encoder = get_embedder(model).fit(texts)
        embeddings = encoder.encode(texts) if "embeddings" in needs else None
    else:
        encoder = get_embedder(model)
        embeddings = load_matrix(db, embed_corpus(db, corpus_id, model)) if "embeddings" in needs else None
    tokens = None
    if "tokens" in needs:
        if not hasattr(encoder, "encode_tokens"):
            raise InputError(f"{model} has no token embeddings: pick a sentence-transformers model")
        tokens = embed_tokens(db, texts, encoder)
    return TextSet.from_arrays(texts=texts, ids=doc_ids, embeddings=embeddings, tokens=tokens), encoder


def _query_text_set(query: str, encoder: Any, needs: frozenset[str]) -> TextSet:
    embeddings = encoder.encode([query]) if "embeddings" in needs else None
    tokens = TokenMatrix.from_list(encoder.encode_tokens([query])) if "tokens" in needs else None
    return TextSet.from_arrays(texts=[query], ids=["query"], embeddings=embeddings, tokens=tokens)


def rank_typed_query(db: sqlite_utils.Database, corpus_id: int, model: str, query: str,
                     methods: Sequence[str], k: int = 10, *,
                     params: dict[str, dict[str, Any]] | None = None) -> dict[str, list[tuple[int, str, float]]]:
    """Each method's top k for one typed query: {method: [(row, doc id, score)]}. Built indexes are kept (a few,
    least recently used dropped) by corpus content, model, method and parameters, so the next query is instant."""
    from storage.corpora import get_corpus

    if not query or not query.strip():
        raise InputError("type a query first")
    names = parse_method_list(list(methods))
    info = get_corpus(db, int(corpus_id))
    out: dict[str, list[tuple[int, str, float]]] = {}
    for name in names:
        method_params = (params or {}).get(name, {}) or {}
        method = create_method(name, **method_params)
        needs = frozenset(method.needs) - {"query_bank"}
        key = (info.content_hash, model, name, json.dumps(method.params, sort_keys=True, default=str))
        with _INDEX_LOCK:
            entry = _INDEXES.get(key)
            if entry is not None:
                _INDEXES.move_to_end(key)
        if entry is None:
            corpus, encoder = _corpus_text_set(db, info.id, model, needs)
            entry = _CachedIndex(method.build(corpus), list(corpus.ids), encoder)
            with _INDEX_LOCK:
                _INDEXES[key] = entry
                while len(_INDEXES) > MAX_CACHED_INDEXES:
                    _INDEXES.popitem(last=False)
        q = _query_text_set(query.strip(), entry.query_encoder, needs)
        with entry.lock:
            ids, scores = entry.method.search(q, k)
        out[name] = [(int(d), entry.doc_ids[int(d)], float(s)) for d, s in zip(ids[0], scores[0]) if d >= 0]
    return out
