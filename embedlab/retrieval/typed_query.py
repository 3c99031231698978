"""Ranking one typed query against a stored corpus with several methods (the page's "typed query" source).

Documents and the query are embedded through the corpus's `EmbeddingSpace`, so the query lands in the documents'
space (a corpus-fitted model uses the corpus's fit). Built indexes are kept, a few, by corpus content, model, method
and parameters, so the next query is instant.
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from embedlab.embedding.space import EmbeddingSpace
from embedlab.errors import InputError
from embedlab.retrieval.base import RetrievalMethod, TextSet, TokenMatrix
from embedlab.retrieval.registry import create_method, parse_method_list
from storage.cache_keys import sharing_scope
from storage.corpora import get_corpus, load_documents

MAX_CACHED_INDEXES = 6
MAX_K = 1000
_INDEXES: OrderedDict[tuple, _CachedIndex] = OrderedDict()
_INDEX_LOCK = threading.Lock()


@dataclass
class _CachedIndex:
    method: RetrievalMethod
    doc_ids: list[str]
    space: EmbeddingSpace            # encodes the query in the documents' space
    lock: threading.Lock = field(default_factory=threading.Lock)


def clear_index_cache() -> None:
    with _INDEX_LOCK:
        _INDEXES.clear()


class _Corpus:
    """The stored corpus of one call, read once, and its space under the model (shared with the cached indexes of
    the same corpus and model, so that a corpus-fitted model is fitted once)."""

    def __init__(self, db: sqlite_utils.Database, info, model: str, scope: str) -> None:
        self.db, self.info, self.model, self.scope = db, info, model, scope
        self._docs: tuple[list[str], list[str]] | None = None
        self._space: EmbeddingSpace | None = None

    @property
    def texts_and_ids(self) -> tuple[list[str], list[str]]:
        if self._docs is None:
            docs = load_documents(self.db, self.info.id)
            self._docs = [d["text"] for d in docs], [str(d["doc_id"]) for d in docs]
        return self._docs

    @property
    def space(self) -> EmbeddingSpace:
        if self._space is None:
            self._space = _shared_space(self.scope, self.model) or EmbeddingSpace(
                self.db, self.texts_and_ids[0], self.model, content_hash=self.info.content_hash,
                corpus_id=self.info.id)
        return self._space

    def text_set(self, needs: frozenset[str]) -> TextSet:
        texts, doc_ids = self.texts_and_ids
        space = self.space
        if "tokens" in needs and not space.has_tokens:
            raise InputError(f"{space.model} has no token embeddings: pick a sentence-transformers model")
        # tokens first: one model pass stores the sentence embeddings with them
        tokens = space.tokens() if "tokens" in needs else None
        embeddings = space.documents() if "embeddings" in needs else None
        return TextSet.from_arrays(texts=texts, ids=doc_ids, embeddings=embeddings, tokens=tokens)


def _shared_space(scope: str, model: str) -> EmbeddingSpace | None:
    with _INDEX_LOCK:
        return next((e.space for key, e in _INDEXES.items() if key[:2] == (scope, model)), None)


def _query_text_set(query: str, space: EmbeddingSpace, needs: frozenset[str]) -> TextSet:
    embeddings = space.encode([query]) if "embeddings" in needs else None
    tokens = TokenMatrix(*space.encode_tokens([query])) if "tokens" in needs else None
    return TextSet.from_arrays(texts=[query], ids=["query"], embeddings=embeddings, tokens=tokens)


def rank_typed_query(db: sqlite_utils.Database, corpus_id: int, model: str, query: str,
                     methods: Sequence[str], k: int = 10, *,
                     params: dict[str, dict[str, Any]] | None = None) -> dict[str, list[tuple[int, str, float]]]:
    """Each method's top k for one typed query: {method: [(row, doc id, score)]}. Built indexes are kept (a few,
    least recently used dropped) by corpus content, model, method and parameters, so the next query is instant."""
    if not query or not query.strip():
        raise InputError("type a query first")
    try:
        k = int(k)
        corpus_id = int(corpus_id)
    except (TypeError, ValueError):
        raise InputError(f"k and the corpus id must be whole numbers, got {k!r} and {corpus_id!r}") from None
    if not 1 <= k <= MAX_K:
        raise InputError(f"k must be between 1 and {MAX_K}, got {k}")
    model = str(model or "").strip()
    if not model:
        raise InputError("no model given")
    names = parse_method_list(list(methods))
    info = get_corpus(db, corpus_id)
    scope = sharing_scope(db, info.id, info.content_hash)   # a corpus's private (imported) matrices: its own indexes
    stored = _Corpus(db, info, model, scope)
    out: dict[str, list[tuple[int, str, float]]] = {}
    for name in names:
        method_params = (params or {}).get(name) or {}
        if not isinstance(method_params, dict):
            raise InputError(f"the parameters of {name} must map parameter names to values")
        method = create_method(name, **method_params)
        needs = frozenset(method.needs) - {"query_bank"}
        key = (scope, model, name, json.dumps(method.params, sort_keys=True, default=str))
        with _INDEX_LOCK:
            entry = _INDEXES.get(key)
            if entry is not None:
                _INDEXES.move_to_end(key)
        if entry is None:
            corpus = stored.text_set(needs)
            entry = _CachedIndex(method.build(corpus), list(corpus.ids), stored.space)
            with _INDEX_LOCK:
                _INDEXES[key] = entry
                while len(_INDEXES) > MAX_CACHED_INDEXES:
                    _INDEXES.popitem(last=False)
        q = _query_text_set(query.strip(), entry.space, needs)
        with entry.lock:
            ids, scores = entry.method.search(q, k)
        out[name] = [(int(d), entry.doc_ids[int(d)], float(s)) for d, s in zip(ids[0], scores[0]) if d >= 0]
    return out
