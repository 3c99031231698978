"""The retrieval benchmark behind `python -m embedlab bench-retrieval`: every chosen method on one BEIR split,
with the JSON of DESIGN §3 as the result."""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from embedlab.errors import InputError
from embedlab.retrieval.base import TextSet
from embedlab.retrieval.beir import BeirDataset, load_beir
from embedlab.retrieval.evaluate import METRICS, MethodResult, evaluate_method
from embedlab.retrieval.registry import create_method, parse_method_list

Progress = Callable[[float, str], None]


def text_sets(ds: BeirDataset, *, model: str, db=None, progress: Progress | None = None) -> tuple[TextSet, TextSet]:
    """Corpus and query text sets whose embeddings (and token embeddings) are computed on first use, through the
    embedding cache when `db` is given; the collection's training queries ride along as InvGC's query bank."""
    embed, embed_tokens = encoders(model, db, progress=progress)
    ref = TextSet(ds.reference_queries, ds.reference_query_ids, embed, embed_tokens) if ds.reference_queries else None
    corpus = TextSet(ds.corpus_texts, ds.doc_ids, embed, embed_tokens, reference_queries=ref)
    queries = TextSet(ds.queries, ds.query_ids, embed, embed_tokens)
    return corpus, queries


def encoders(model: str, db=None, *, progress: Progress | None = None):
    """(texts -> embeddings, texts -> (token rows, offsets)) for `model`, cached in `db` when given.
    `progress(message)` hears the embedding's progress lines."""
    from embedlab.embedding.cache import embed_texts as cached_embed
    from embedlab.embedding.cache import embed_tokens as cached_tokens

    def relay(what: str):
        return (lambda frac, msg: progress(f"{what}: {msg}")) if progress else None

    def embed(texts: list[str]):
        return cached_embed(db, texts, model, progress=relay(f"embedding {len(texts)} texts"))

    def embed_tokens(texts: list[str]):
        return cached_tokens(db, texts, model, progress=relay(f"token embeddings of {len(texts)} texts"))

    return embed, embed_tokens


def run_methods(corpus: TextSet, queries: TextSet, qrels: dict[str, dict[str, int]], names: Sequence[str], *,
                k: int = 100, params: dict[str, dict[str, Any]] | None = None,
                progress: Progress | None = None) -> dict[str, MethodResult]:
    """Evaluate each named method in turn (the shared embeddings are computed once, on first need)."""
    results: dict[str, MethodResult] = {}
    n = len(names)
    for i, name in enumerate(names):
        method = create_method(name, **(params or {}).get(name, {}))

        def report(frac: float, msg: str, i: int = i) -> None:
            if progress:
                progress((i + frac) / n, msg)

        todo = [label for need, label, have in (("embeddings", "embeddings", corpus.has_embeddings),
                                                ("tokens", "token embeddings", corpus.has_tokens))
                if need in method.needs and not have]
        if todo:
            report(0.0, f"{name}: computing {' and '.join(todo)} (cached after the first run)")
        results[name] = evaluate_method(method, corpus, queries, qrels, k=k, metrics=METRICS, progress=report)
    return results


def run_retrieval_bench(*, beir_dir: str | os.PathLike, split: str = "test", model: str = "all-MiniLM-L6-v2",
                        methods: str | Sequence[str] | None = None, max_docs: int | None = None, db=None,
                        progress: Progress | None = None) -> dict:
    """Benchmark retrieval methods on a BEIR split; returns {"dataset", "split", "model", "n_docs", "n_queries",
    "methods": {name: {"ndcg@10", "recall@100", "mrr@10", "ms_per_query", "index_bytes", "recall@10", "map@100",
    "build_s"}}}."""
    names = parse_method_list(methods)
    if max_docs is not None and max_docs < 1:
        raise InputError(f"--max-docs must be a positive number, got {max_docs}")
    ds = load_beir(beir_dir, split)
    if max_docs is not None:
        ds = ds.limit_docs(max_docs)
    if not ds.query_ids:
        raise InputError(f"no query of split {split!r} has a relevant document in the kept corpus", file=str(beir_dir))
    at = [0.0]

    def report(frac: float, msg: str) -> None:
        at[0] = frac
        if progress:
            progress(frac, msg)

    corpus, queries = text_sets(ds, model=model, db=db, progress=lambda msg: report(at[0], msg))
    if any("tokens" in create_method(name).needs for name in names):
        # One model pass gives token and sentence embeddings (the cache stores both): fetch tokens first.
        corpus.tokens()
        queries.tokens()
    results = run_methods(corpus, queries, ds.qrels, names, progress=report)
    return {"dataset": ds.name, "split": split, "model": model, "n_docs": ds.n_docs, "n_queries": ds.n_queries,
            "methods": {name: _rounded(r.summary()) for name, r in results.items()}}


def _rounded(entry: dict) -> dict:
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in entry.items()}
