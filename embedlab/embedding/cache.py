"""Embeddings stored in SQLite under a content cache key: the same texts and model are never embedded twice,
in any session. Dense embeddings are written chunk by chunk, so an interrupted run resumes where it stopped.

Keys are computed by `storage.cache_keys`. A stored corpus may hold a private copy (imported, not verified: see
`storage.cache_keys.corpus_key`); every lookup that knows its corpus passes `corpus_id`, and then finds that copy,
and no other corpus ever does. `EmbeddingSpace` (and its `embed_texts`, `embed_corpus`) is the front end."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import sqlite_utils

from embedlab.embedding.embedders import DEFAULT_MODEL, Embedder, Progress, get_embedder
from embedlab.embedding.imported import IMPORTED_EMBEDDER, find_imported, imported_key, is_imported
from embedlab.errors import Cancelled, EmbedLabError
from storage.cache_keys import corpus_key, identity_cache_key, offsets_key
from storage.content import content_hash as hash_texts
from storage.db import transaction
from storage.leases import Lease, computation
from storage.matrices import (MatrixMeta, create_matrix, find_matrix, load_matrix, mark_complete, save_matrix,
                              stored_chunks, write_chunk)


def cache_key(embedder: Embedder, content_hash: str, kind: str = "embedding") -> str:
    """The shared key of this embedder's `kind` matrix of this content (`storage.cache_keys.identity_cache_key` of
    its identity: model, weights' hash, normalisation, max length, backend); imported vectors' own key
    (`storage.cache_keys.imported_cache_key`: their name, their bytes, the texts)."""
    identity = embedder.identity()
    if identity.get("embedder") == IMPORTED_EMBEDDER:
        if kind != "embedding":
            raise EmbedLabError(f"{embedder.name} has no token embeddings: pick a sentence-transformers model")
        return imported_key(identity, content_hash)
    return identity_cache_key(identity, content_hash, kind)


def _as_embedder(model: str | Embedder) -> Embedder:
    return get_embedder(model) if isinstance(model, str) else model


def embedding_key(db: sqlite_utils.Database, embedder: Embedder, content_hash: str,
                  corpus_id: int | None = None) -> str:
    """The key of the embedding of this content that corpus `corpus_id` uses (its private copy, else shared)."""
    return corpus_key(db, cache_key(embedder, content_hash), corpus_id)


def tokens_key(db: sqlite_utils.Database | None, embedder: Embedder, content_hash: str,
               corpus_id: int | None = None) -> str:
    """The key of the token embeddings corpus `corpus_id` uses (private with a private copy of them or of the
    embedding); the offsets live under `offsets_key` of this key."""
    shared = cache_key(embedder, content_hash, kind="tokens")
    if db is None:
        return shared
    return corpus_key(db, shared, corpus_id, derived_from=cache_key(embedder, content_hash))


def find_embedding(db: sqlite_utils.Database, content_hash: str, model: str | Embedder,
                   corpus_id: int | None = None) -> MatrixMeta | None:
    """The finished embedding of this content with this model, if stored (never loads the model); with
    `corpus_id`, the one that corpus uses. A model name of imported vectors finds them (None when these texts have
    none of that name)."""
    if is_imported(model):
        return find_imported(db, content_hash, model, corpus_id)
    return find_matrix(db, embedding_key(db, _as_embedder(model), content_hash, corpus_id))


def find_tokens(db: sqlite_utils.Database, content_hash: str, model: str | Embedder,
                corpus_id: int | None = None) -> tuple[MatrixMeta, MatrixMeta] | None:
    """(token matrix, offsets) of this content with this model as corpus `corpus_id` uses them, if both stored
    (imported vectors have none)."""
    if is_imported(model) or not _as_embedder(model).has_tokens:
        return None
    key = tokens_key(db, _as_embedder(model), content_hash, corpus_id)
    meta, offsets = find_matrix(db, key), find_matrix(db, offsets_key(key))
    return None if meta is None or offsets is None else (meta, offsets)


def compute_embedding(db: sqlite_utils.Database, texts: Sequence[str], model: str | Embedder, *,
                      content_hash: str | None = None, corpus_id: int | None = None,
                      progress: Progress | None = None,
                      should_stop: Callable[[], bool] | None = None) -> MatrixMeta:
    """Embed `texts` into a stored matrix, reusing a finished one and resuming an unfinished one. When another
    process is embedding the same texts with the same model, wait for it and return its matrix: one computation."""
    embedder = _as_embedder(model)
    content_hash = content_hash or hash_texts(list(texts))
    key = embedding_key(db, embedder, content_hash, corpus_id)
    done = find_matrix(db, key)
    if done is not None:
        if progress:
            progress(1.0, "cached: already embedded")
        return done

    def waiting(owner: str) -> None:
        if progress:
            started = find_matrix(db, key, complete_only=False)
            stored = len(stored_chunks(db, started.id)) * started.chunk_rows if started else 0
            rows = min(stored, started.rows) if started else 0
            progress(rows / max(1, len(texts)), f"another process ({owner}) is embedding these texts: "
                                                f"{rows}/{len(texts)} stored, waiting for it")

    with computation(db, key, done=lambda: find_matrix(db, key) is not None, waiting=waiting,
                     should_stop=should_stop) as lease:
        if lease is None:
            done = find_matrix(db, key)
            if done is None:
                raise Cancelled("stopped while waiting for another process embedding the same texts")
            if progress:
                progress(1.0, "embedded by another process meanwhile")
            return done
        return _compute(db, list(texts), embedder, key, content_hash, corpus_id, lease, progress, should_stop)


def _compute(db: sqlite_utils.Database, texts: list[str], embedder: Embedder, key: str, content_hash: str,
             corpus_id: int | None, lease: Lease, progress: Progress | None,
             should_stop: Callable[[], bool] | None) -> MatrixMeta:
    """The embedding itself, chunk by chunk (resuming from stored chunks), while holding the lease on `key`."""
    if progress:
        progress(0.0, f"loading {embedder.name}" if not embedder.fitted_on_corpus else f"fitting {embedder.name}")
    embedder.fit(texts)   # a corpus-fitted embedder learns from these texts; a pretrained one ignores this
    dim = embedder.dimension()
    meta = create_matrix(db, cache_key=key, kind="embedding", rows=len(texts), cols=dim, dtype="float32",
                         model=embedder.name, params=embedder.identity(), corpus_id=corpus_id,
                         content_hash=content_hash)
    have = stored_chunks(db, meta.id)
    todo = [c for c in range(meta.n_chunks) if c not in have]
    n_done = sum(min(meta.chunk_rows, meta.rows - c * meta.chunk_rows) for c in have)
    if progress and have:
        progress(n_done / max(1, meta.rows), f"resuming: {n_done}/{meta.rows} rows already stored")
    for i, chunk_no in enumerate(todo):
        if should_stop and should_stop():
            raise Cancelled(f"stopped after {n_done}/{meta.rows} rows")
        start = chunk_no * meta.chunk_rows
        block = texts[start:start + meta.chunk_rows]

        def report(frac: float, msg: str, base: int = n_done, size: int = len(block)) -> None:
            lease.renew()
            if progress:
                rows = base + int(frac * size)
                # before its first row an embedder may say what it prepares (a static model distilled once)
                progress(rows / max(1, meta.rows), msg if frac == 0 and msg else f"embedded {rows}/{meta.rows}")

        vecs = embedder.encode(block, progress=report)
        write_chunk(db, meta, chunk_no, vecs, complete=(i == len(todo) - 1))
        n_done += len(block)
    if not todo:
        mark_complete(db, meta)
    if progress:
        caveat = getattr(embedder, "caveat", None)     # e.g. TF-IDF + SVD kept fewer dimensions than asked
        progress(1.0, f"embedded {meta.rows}/{meta.rows}" + (f" ({caveat})" if caveat else ""))
    return find_matrix(db, key)


def embed_tokens(db: sqlite_utils.Database | None, texts: Sequence[str] | Callable[[], Sequence[str]],
                 model: str | Embedder = DEFAULT_MODEL, *, progress: Progress | None = None,
                 content_hash: str | None = None, corpus_id: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Token embeddings of `texts`: (all tokens stacked, float32; offsets of shape (n + 1,)).

    Document i owns rows offsets[i]:offsets[i + 1]. Stored as float16 with an int64 offsets matrix. `texts` may be
    a loader: with `content_hash` given, a cache hit never reads them.
    """
    embedder = _as_embedder(model)
    if not embedder.has_tokens:
        raise EmbedLabError(f"{embedder.name} has no token embeddings: pick a sentence-transformers model")
    load = texts if callable(texts) else (lambda: texts)
    h = content_hash or hash_texts(list(load()))
    key = tokens_key(db, embedder, h, corpus_id)
    if db is not None:
        meta = find_matrix(db, key)
        off_meta = find_matrix(db, offsets_key(key))
        if meta is not None and off_meta is not None:
            if progress:
                progress(1.0, "cached: token embeddings already stored")
            return load_matrix(db, meta).astype(np.float32), load_matrix(db, off_meta)[:, 0].astype(np.int64)
    vectors, per_doc = embedder.encode_with_tokens(list(load()), progress=progress)  # one pass gives both
    emb_key = None if db is None else embedding_key(db, embedder, h, corpus_id)
    if emb_key is not None and find_matrix(db, emb_key) is None:
        save_matrix(db, vectors, cache_key=emb_key, kind="embedding", model=embedder.name,
                    params=embedder.identity(), corpus_id=corpus_id, content_hash=h)
    lengths = np.array([len(t) for t in per_doc], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    dim = per_doc[0].shape[1] if per_doc else 0
    tokens = np.concatenate(per_doc) if per_doc else np.zeros((0, dim), np.float32)
    if db is not None:
        with transaction(db):
            save_matrix(db, tokens, cache_key=key, kind="tokens", dtype="float16", model=embedder.name,
                        params=embedder.identity(), corpus_id=corpus_id, content_hash=h)
            save_matrix(db, offsets.reshape(-1, 1), cache_key=offsets_key(key), kind="token_offsets",
                        dtype="int64", model=embedder.name, params=embedder.identity(), corpus_id=corpus_id,
                        content_hash=h)
        tokens = tokens.astype(np.float16).astype(np.float32)
    return tokens, offsets
