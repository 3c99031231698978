"""Matrices as chunked little-endian BLOBs: embeddings, token embeddings, projections.

Cache keys (shared, private, per corpus) are computed in `storage.cache_keys`. A private matrix (imported, not
verified) is labelled "imported, not verified" (`status_label`); `list_matrices(..., corpus_id=)` lists what one
corpus sees.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlite_utils

from storage.cache_keys import IMPORTED_PREFIX, PRIVATE_PREFIX, is_private, private_key, shared_key_of
from storage.db import now, transaction

DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype("<f4"),
    "float16": np.dtype("<f2"),
    "int64": np.dtype("<i8"),
    "int32": np.dtype("<i4"),
    "uint8": np.dtype("u1"),
}
CHUNK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class MatrixMeta:
    id: int
    corpus_id: int | None
    content_hash: str
    kind: str
    model: str
    params: dict[str, Any]
    dtype: str
    rows: int
    cols: int
    chunk_rows: int
    complete: bool
    cache_key: str

    @property
    def n_chunks(self) -> int:
        return -(-self.rows // self.chunk_rows) if self.rows else 0


def default_chunk_rows(cols: int, dtype: str) -> int:
    """Rows per stored block: a few MB (`EMBEDLAB_CHUNK_ROWS` overrides it, for tests of resumption)."""
    forced = os.environ.get("EMBEDLAB_CHUNK_ROWS")
    if forced:
        return max(1, int(forced))
    return max(1, CHUNK_BYTES // max(1, cols * DTYPES[dtype].itemsize))


def encode_chunk(array: np.ndarray, dtype: str) -> bytes:
    """Bytes of a 2-D block in the stored (little-endian) dtype."""
    return np.ascontiguousarray(array, dtype=DTYPES[dtype]).tobytes()


def array_digest(array: np.ndarray, dtype: str = "float32") -> str:
    """sha256 of a 2-D matrix's bytes as it would be stored (little-endian `dtype`), hashed in blocks of rows (no
    copy of the whole matrix)."""
    h = hashlib.sha256()
    rows = max(1, CHUNK_BYTES // max(1, array.shape[1] * DTYPES[dtype].itemsize))
    for start in range(0, len(array), rows):
        h.update(encode_chunk(array[start:start + rows], dtype))
    return h.hexdigest()


def decode_chunk(data: bytes, dtype: str, cols: int) -> np.ndarray:
    """Inverse of `encode_chunk`; a read-only view on `data`."""
    return np.frombuffer(data, dtype=DTYPES[dtype]).reshape(-1, cols)


def _meta(row: dict) -> MatrixMeta:
    return MatrixMeta(id=row["id"], corpus_id=row["corpus_id"], content_hash=row["content_hash"],
                      kind=row["kind"], model=row["model"], params=json.loads(row["params_json"] or "{}"),
                      dtype=row["dtype"], rows=row["rows"], cols=row["cols"], chunk_rows=row["chunk_rows"],
                      complete=bool(row["complete"]), cache_key=row["cache_key"])


def get_matrix(db: sqlite_utils.Database, matrix_id: int) -> MatrixMeta:
    rows = list(db.query("SELECT * FROM matrices WHERE id = ?", [matrix_id]))
    if not rows:
        raise KeyError(f"no matrix {matrix_id}")
    return _meta(rows[0])


def matrices_where(db: sqlite_utils.Database, where: str, args: list[Any]) -> list[MatrixMeta]:
    """Stored matrices (complete or not) matching an SQL condition on the matrices table, in id order."""
    return [_meta(r) for r in db.query(f"SELECT * FROM matrices WHERE {where} ORDER BY id", args)]


def find_matrix(db: sqlite_utils.Database, cache_key: str, *, complete_only: bool = True) -> MatrixMeta | None:
    """The matrix stored under `cache_key`, or None (also None for an unfinished one if `complete_only`)."""
    rows = list(db.query("SELECT * FROM matrices WHERE cache_key = ?", [cache_key]))
    if not rows:
        return None
    meta = _meta(rows[0])
    return meta if (meta.complete or not complete_only) else None


# --- shared and private matrices ---------------------------------------------------------------------------------

IMPORTED_LABEL = "imported, not verified"
SHARED_LABEL = "shared"
VECTORS_LABEL = "imported vectors"   # a user's own vectors (`ingest --vectors`), shared by corpora of the same texts
DERIVED_KINDS = ("projection", "tokens", "token_offsets")   # follow their embedding into privacy


def status_label(key: str) -> str:
    """"shared", "imported vectors" for vectors a user ingested, or "imported, not verified" for a private matrix."""
    if is_private(key):
        return IMPORTED_LABEL
    return VECTORS_LABEL if key.startswith(IMPORTED_PREFIX) else SHARED_LABEL


def list_matrices(db: sqlite_utils.Database, content_hash: str, kind: str | None = None, *,
                  corpus_id: int | None = None) -> list[MatrixMeta]:
    """Complete matrices computed for a corpus content hash, as a corpus sees them: the shared ones (in any
    session), and with `corpus_id` that corpus's private ones, which hide the shared matrix of the same key and the
    shared projections and tokens of a model whose embedding is private. Never another corpus's private matrix."""
    sql = "SELECT * FROM matrices WHERE content_hash = ? AND complete = 1"
    args: list[Any] = [content_hash]
    if kind:
        sql += " AND kind IN (?, ?)"
        args += [kind, "embedding"]   # a private embedding decides which shared projections and tokens are seen
    found = [_meta(r) for r in db.query(sql + " ORDER BY id", args)]
    own = [m for m in found if is_private(m.cache_key) and corpus_id is not None and m.corpus_id == corpus_id
           and m.cache_key.startswith(private_key("", corpus_id))]
    own_ids = {m.id for m in own}
    hidden = {shared_key_of(m.cache_key) for m in own}
    private_models = {m.model for m in own if m.kind == "embedding"}
    seen = [m for m in found if m.id in own_ids or (not is_private(m.cache_key) and m.cache_key not in hidden
                                                    and not (m.kind in DERIVED_KINDS and m.model in private_models))]
    return [m for m in seen if kind is None or m.kind == kind]


def session_matrices(db: sqlite_utils.Database, session_id: int) -> list[MatrixMeta]:
    """The complete matrices the corpora of a session see (`list_matrices` per corpus), one per shared key (the
    first corpus's when two corpora of the same texts see different ones), in id order."""
    seen: dict[str, MatrixMeta] = {}
    for cid, content_hash in db.execute("SELECT id, content_hash FROM corpora WHERE session_id = ? ORDER BY id",
                                        [session_id]).fetchall():
        for m in list_matrices(db, content_hash, corpus_id=cid):
            seen.setdefault(shared_key_of(m.cache_key), m)
    return sorted(seen.values(), key=lambda m: m.id)


def create_matrix(db: sqlite_utils.Database, *, cache_key: str, kind: str, rows: int, cols: int,
                  dtype: str = "float32", model: str = "", params: dict | None = None,
                  corpus_id: int | None = None, content_hash: str = "",
                  chunk_rows: int | None = None) -> MatrixMeta:
    """Register a matrix to be filled chunk by chunk; an unfinished one of the same key and shape is reused."""
    if dtype not in DTYPES:
        raise ValueError(f"unsupported dtype {dtype!r}")
    with transaction(db) as conn:
        existing = find_matrix(db, cache_key, complete_only=False)
        if existing is not None:
            if existing.complete or (existing.rows, existing.cols, existing.dtype) == (rows, cols, dtype):
                return existing
            conn.execute("DELETE FROM matrices WHERE id = ?", [existing.id])
        cur = conn.execute(
            "INSERT INTO matrices (corpus_id, content_hash, kind, model, params_json, dtype, rows, cols, "
            "chunk_rows, complete, cache_key, created_at) VALUES (?,?,?,?,?,?,?,?,?,0,?,?)",
            [corpus_id, content_hash, kind, model, json.dumps(params or {}, sort_keys=True), dtype, rows, cols,
             chunk_rows or default_chunk_rows(cols, dtype), cache_key, now()])
        return get_matrix(db, cur.lastrowid)


def set_matrix_params(db: sqlite_utils.Database, matrix_id: int, params: dict) -> None:
    """Replace a matrix's params (what it says about itself, never its values or its key)."""
    with transaction(db) as conn:
        conn.execute("UPDATE matrices SET params_json = ? WHERE id = ?",
                     [json.dumps(params, sort_keys=True), matrix_id])


def stored_chunks(db: sqlite_utils.Database, matrix_id: int) -> set[int]:
    return {r[0] for r in db.execute("SELECT chunk_no FROM matrix_chunks WHERE matrix_id = ?", [matrix_id])}


def write_chunk(db: sqlite_utils.Database, meta: MatrixMeta, chunk_no: int, block: np.ndarray,
                *, complete: bool = False) -> None:
    """Store one row block (atomically; with `complete` the matrix is marked finished in the same commit)."""
    expected = min(meta.chunk_rows, meta.rows - chunk_no * meta.chunk_rows)
    if block.shape != (expected, meta.cols):
        raise ValueError(f"chunk {chunk_no} has shape {block.shape}, expected {(expected, meta.cols)}")
    with transaction(db) as conn:
        conn.execute("INSERT OR REPLACE INTO matrix_chunks (matrix_id, chunk_no, data) VALUES (?,?,?)",
                     [meta.id, chunk_no, encode_chunk(block, meta.dtype)])
        if complete:
            _mark_complete(conn, meta)


def _mark_complete(conn, meta: MatrixMeta) -> None:
    n = conn.execute("SELECT COUNT(*) FROM matrix_chunks WHERE matrix_id = ?", [meta.id]).fetchone()[0]
    if n != meta.n_chunks:
        raise ValueError(f"matrix {meta.id} has {n} of {meta.n_chunks} chunks")
    conn.execute("UPDATE matrices SET complete = 1 WHERE id = ?", [meta.id])


def mark_complete(db: sqlite_utils.Database, meta: MatrixMeta) -> None:
    with transaction(db) as conn:
        _mark_complete(conn, meta)


def save_matrix(db: sqlite_utils.Database, array: np.ndarray, *, cache_key: str, kind: str,
                dtype: str = "float32", model: str = "", params: dict | None = None,
                corpus_id: int | None = None, content_hash: str = "") -> MatrixMeta:
    """Store a whole matrix in one transaction (replacing any unfinished one under the key)."""
    array = np.asarray(array)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    with transaction(db):
        meta = create_matrix(db, cache_key=cache_key, kind=kind, rows=array.shape[0], cols=array.shape[1],
                             dtype=dtype, model=model, params=params, corpus_id=corpus_id,
                             content_hash=content_hash)
        if meta.complete:
            return meta
        for chunk_no in range(meta.n_chunks):
            start = chunk_no * meta.chunk_rows
            write_chunk(db, meta, chunk_no, array[start:start + meta.chunk_rows])
        mark_complete(db, meta)
    return get_matrix(db, meta.id)


def load_matrix(db: sqlite_utils.Database, matrix: int | MatrixMeta, *, rows: int | None = None) -> np.ndarray:
    """The whole matrix (or its first stored `rows`) as a native-endian array, filled chunk by chunk."""
    meta = matrix if isinstance(matrix, MatrixMeta) else get_matrix(db, matrix)
    n = meta.rows if rows is None else rows
    native = DTYPES[meta.dtype].newbyteorder("=")
    out = np.empty((n, meta.cols), dtype=native)
    cur = db.execute("SELECT chunk_no, data FROM matrix_chunks WHERE matrix_id = ? AND chunk_no < ? "
                     "ORDER BY chunk_no", [meta.id, -(-n // meta.chunk_rows) if n else 0])
    filled = 0
    for chunk_no, data in cur:
        block = decode_chunk(data, meta.dtype, meta.cols)
        start = chunk_no * meta.chunk_rows
        take = min(len(block), n - start)
        out[start:start + take] = block[:take]
        filled += take
    if filled != n:
        raise ValueError(f"matrix {meta.id} is incomplete: {filled} of {n} rows stored")
    return out


def delete_orphan_matrices(db: sqlite_utils.Database, content_hashes: set[str]) -> int:
    """Drop the matrices of these content hashes that no remaining corpus has, and every private matrix whose
    corpus is gone; return how many went.

    Only hashes of corpora just deleted are considered: caches of texts that were never a corpus
    (benchmark queries, a run's inputs) stay.
    """
    with transaction(db) as conn:
        gone = conn.execute("DELETE FROM matrices WHERE cache_key LIKE ? AND (corpus_id IS NULL OR corpus_id NOT IN "
                            "(SELECT id FROM corpora))", [PRIVATE_PREFIX + "%"]).rowcount
        for h in content_hashes:
            # "ann:" + hash: a neighbour index of one of its embeddings (embedlab.ann), never listed as a matrix
            gone += conn.execute("DELETE FROM matrices WHERE content_hash IN (?, ?) AND NOT EXISTS "
                                 "(SELECT 1 FROM corpora WHERE content_hash = ?)", [h, "ann:" + h, h]).rowcount
        return gone
