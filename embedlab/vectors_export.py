"""A corpus's vectors and 2-D map as a Parquet table, for another tool (`export-vectors`, the Corpora page's
download button), and readable back by `ingest --vectors-col vector`.

Columns: doc_id (string), text (string), label (string, null when none), vector (fixed-size list of float32: the
stored L2-normalised rows, exactly), x and y (float32: the map's coordinates; null when the corpus has no 2-D map
under that model). The map is the Atlas's default (UMAP 2-D) when stored, else the newest 2-D map of that embedding.
The file's metadata names the model and the map ("embedlab.model", "embedlab.map").
"""
from __future__ import annotations

import io
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import sqlite_utils

from embedlab.embedding import DEFAULT_MODEL
from embedlab.embedding.cache import cache_key
from embedlab.embedding.imported import imported_models
from embedlab.embedding.space import EmbeddingSpace
from embedlab.errors import InputError
from embedlab.tasks import find_projection
from storage.cache_keys import projection_cache_key, shared_key_of
from storage.corpora import CorpusInfo, load_documents
from storage.matrices import MatrixMeta, list_matrices, load_matrix
from storage.output_files import atomic_output

VECTOR_COLUMN = "vector"


def default_export_model(db: sqlite_utils.Database, corpus: CorpusInfo) -> str:
    """The model an export takes when none is named: the corpus's imported vectors, else the default model, else the
    first model it is embedded with (InputError when it has no embedding)."""
    imported = imported_models(db, corpus.content_hash, corpus.id)
    if imported:
        return imported[0]
    stored = [m.model for m in list_matrices(db, corpus.content_hash, "embedding", corpus_id=corpus.id)]
    if not stored:
        raise InputError(f"corpus {corpus.name!r} has no embedding yet: embed it first (embed --model MODEL), or "
                         "ingest it with its vectors")
    return DEFAULT_MODEL if DEFAULT_MODEL in stored else stored[0]


def map_of(db: sqlite_utils.Database, corpus: CorpusInfo, space: EmbeddingSpace) -> MatrixMeta | None:
    """The 2-D map exported beside the vectors: the default UMAP map, else the newest 2-D map of this embedding."""
    default = find_projection(db, corpus.id, space.model, method="umap")
    if default is not None:
        return default
    emb_key = cache_key(space.embedder, corpus.content_hash)
    maps = [p for p in list_matrices(db, corpus.content_hash, "projection", corpus_id=corpus.id)
            if p.cols == 2 and shared_key_of(p.cache_key) == projection_cache_key(emb_key, p.params)]
    return maps[-1] if maps else None


def vectors_table(db: sqlite_utils.Database, corpus: CorpusInfo, model: str | None = None) -> pa.Table:
    """The corpus's documents with their vectors under `model` (default: `default_export_model`) and map."""
    model = model or default_export_model(db, corpus)
    space = EmbeddingSpace.for_corpus(db, corpus.id, model)
    meta = space.stored()
    if meta is None:
        raise InputError(f"corpus {corpus.name!r} is not embedded with {model}: embed it first, or name another "
                         "model (--model)")
    X = np.ascontiguousarray(load_matrix(db, meta), dtype=np.float32)
    docs = load_documents(db, corpus.id)
    proj = map_of(db, corpus, space)
    xy = load_matrix(db, proj).astype(np.float32) if proj is not None else None
    n, dim = X.shape
    vector = pa.FixedSizeListArray.from_arrays(pa.array(X.reshape(-1), type=pa.float32()), dim)
    columns = {
        "doc_id": pa.array([str(d["doc_id"]) for d in docs], type=pa.string()),
        "text": pa.array([d["text"] for d in docs], type=pa.string()),
        "label": pa.array([d["label"] for d in docs], type=pa.string()),
        VECTOR_COLUMN: vector,
        "x": pa.array(xy[:, 0] if xy is not None else [None] * n, type=pa.float32()),
        "y": pa.array(xy[:, 1] if xy is not None else [None] * n, type=pa.float32()),
    }
    described = json.dumps(proj.params, sort_keys=True) if proj is not None else "none"
    return pa.table(columns, metadata={"embedlab.model": model, "embedlab.map": described})


def vectors_parquet(db: sqlite_utils.Database, corpus: CorpusInfo, model: str | None = None) -> bytes:
    """`vectors_table` as the bytes of a Parquet file (the page's download)."""
    sink = io.BytesIO()
    pq.write_table(vectors_table(db, corpus, model), sink)
    return sink.getvalue()


def export_vectors(db: sqlite_utils.Database, corpus: CorpusInfo, out: str | os.PathLike,
                   model: str | None = None) -> pa.Table:
    """Write `vectors_table` to `out` (whole or not at all, `storage.output_files.atomic_output`); return it."""
    table = vectors_table(db, corpus, model)
    with atomic_output(out) as tmp:
        pq.write_table(table, tmp)
    return table
