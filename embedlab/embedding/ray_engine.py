"""Embedding on Ray, for corpora too big for one machine's patience.

Ray Data splits the corpus into batches; `map_batches` runs them on a pool of actors that each load the model
once. Results come back in order and are written chunk by chunk into the same storage (and cache key) as the
in-process path, so a Ray-embedded corpus is a cache hit for everything else. `RAY_ADDRESS` points at an
existing cluster; without it a local one is started.
"""
from __future__ import annotations

import os

import numpy as np
import sqlite_utils

from embedlab.embedding.embedders import DEFAULT_MODEL, Progress, get_embedder
from embedlab.embedding.space import EmbeddingSpace
from embedlab.errors import EmbedLabError
from storage.matrices import (MatrixMeta, create_matrix, default_chunk_rows, find_matrix, mark_complete,
                              stored_chunks, write_chunk)


RAY_CHUNK_COLS_HINT = 384  # the dimension is unknown before the first batch; chunks sized as for 384 columns


class EmbedActor:
    """A Ray actor holding one loaded model; called on batches of {"text": [...]}."""

    def __init__(self, model: str) -> None:
        self.embedder = get_embedder(model)

    def __call__(self, batch: dict) -> dict:
        return {"idx": batch["idx"], "vector": self.embedder.encode(list(batch["text"]))}


def _ray():
    try:
        import ray
    except ImportError as exc:
        raise EmbedLabError("the Ray engine needs `ray[data]` (pip install -r requirements.txt)") from exc
    return ray


def init_ray(num_cpus: int | None = None) -> None:
    """Connect to `RAY_ADDRESS` if set, else start (or reuse) a local cluster."""
    ray = _ray()
    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False,
                 runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}})


def embed_corpus_ray(db: sqlite_utils.Database, corpus_id: int, model: str = DEFAULT_MODEL, *,
                     progress: Progress | None = None, actors: int | None = None,
                     batch_size: int = 256) -> MatrixMeta:
    """Embed a stored corpus on Ray; cached and resumable exactly like `embed_corpus`."""
    space = EmbeddingSpace.for_corpus(db, corpus_id, model)
    if space.embedder.fitted_on_corpus:
        raise EmbedLabError(f"{space.model} is fitted on the whole corpus: embed it with --engine local")
    embedder, key = space.embedder, space.key
    hit = space.stored()
    if hit is not None:
        if progress:
            progress(1.0, "cached: already embedded")
        return hit
    texts = space.texts
    init_ray()
    ray = _ray()
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    n_actors = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
    chunk_rows = default_chunk_rows(RAY_CHUNK_COLS_HINT, "float32")
    meta = find_matrix(db, key, complete_only=False)  # an unfinished run to resume, if any
    have = stored_chunks(db, meta.id) if meta else set()
    if meta is not None:
        chunk_rows = meta.chunk_rows
    n_chunks = -(-len(texts) // chunk_rows)
    todo = [c for c in range(n_chunks) if c not in have]
    rows = [{"idx": i, "text": texts[i]} for c in todo
            for i in range(c * chunk_rows, min(len(texts), (c + 1) * chunk_rows))]
    ds = ray.data.from_items(rows).map_batches(
        EmbedActor, fn_constructor_kwargs={"model": model}, batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=n_actors), num_cpus=1, batch_format="numpy")
    sizes = [min(chunk_rows, len(texts) - c * chunk_rows) for c in todo]
    buffered: list[np.ndarray] = []
    expected = (row["idx"] for row in rows)
    done_rows, next_chunk = len(texts) - len(rows), 0
    for batch in ds.iter_batches(batch_size=batch_size, batch_format="numpy"):  # in order: preserve_order
        if meta is None:  # the first vectors tell the dimension: the driver never loads the model
            meta = create_matrix(db, cache_key=key, kind="embedding", rows=len(texts),
                                 cols=int(batch["vector"].shape[1]), dtype="float32", model=embedder.name,
                                 params=embedder.identity(), corpus_id=corpus_id, content_hash=space.content_hash,
                                 chunk_rows=chunk_rows)
        if any(int(i) != next(expected) for i in batch["idx"]):
            raise RuntimeError("Ray returned rows out of order")
        buffered.extend(batch["vector"])
        while next_chunk < len(todo) and len(buffered) >= sizes[next_chunk]:
            size = sizes[next_chunk]
            write_chunk(db, meta, todo[next_chunk], np.stack(buffered[:size]).astype(np.float32))
            del buffered[:size]
            done_rows += size
            next_chunk += 1
            if progress:
                progress(done_rows / len(texts), f"embedded {done_rows}/{len(texts)} on Ray")
    mark_complete(db, meta)
    return find_matrix(db, key)
