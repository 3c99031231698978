"""What a session file holds (the tables and columns an export writes and an import reads), the limits an import
enforces, and the refusal an import raises."""
from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

import sqlite_utils

from storage.errors import StorageError

MAX_IMPORT_BYTES = 2 * 1024**3
# Schema versions whose copied tables (COPIED below) have exactly these columns: version 2 only added label_names,
# which a version-1 file lacks (imported when present); version 4 added judgments, which a file of version 4 must
# hold and older files lack (`judgment_rows`). A migration that changes a copied table must end this range at the
# version before it.
IMPORTABLE_VERSIONS = (1, 2, 3, 4)
JUDGMENTS_SINCE = 4
MAX_MATRIX_ROWS = 100_000_000
MAX_MATRIX_COLS = 1_000_000
MAX_VALUE_BYTES = 256 * 1024**2  # one text or one chunk; SQLite's own ceiling is 1e9
SQLITE_HEADER = b"SQLite format 3\x00"

# The columns each table contributes to an export / import (schema version 1).
SESSION_COLS = ("id", "name", "created_at", "updated_at", "notes")
CORPUS_COLS = ("id", "session_id", "name", "source", "n_docs", "text_col", "label_col", "id_col", "meta_cols",
               "n_skipped", "content_hash", "created_at")
DOC_COLS = ("corpus_id", "idx", "doc_id", "text", "label", "meta_json")
MATRIX_COLS = ("id", "corpus_id", "content_hash", "kind", "model", "params_json", "dtype", "rows", "cols",
               "chunk_rows", "complete", "cache_key", "created_at")
CHUNK_COLS = ("matrix_id", "chunk_no", "data")
RUN_COLS = ("id", "session_id", "kind", "params_json", "metrics_json", "details_json", "created_at")
BOOKMARK_COLS = ("session_id", "corpus_id", "idx", "tag", "note")
JUDGMENT_COLS = ("session_id", "corpus_id", "query_key", "query_idx", "query_text", "doc_idx", "grade", "judge",
                 "judged_at")   # schema version 4
COPIED: dict[str, tuple[str, ...]] = {"sessions": SESSION_COLS, "corpora": CORPUS_COLS, "documents": DOC_COLS,
                                      "matrices": MATRIX_COLS, "matrix_chunks": CHUNK_COLS, "runs": RUN_COLS,
                                      "bookmarks": BOOKMARK_COLS, "judgments": JUDGMENT_COLS}

# What `typeof()` may say for each copied column (TEXT columns convert numbers to text on insert).
_T, _TN, _I, _IN, _B = ("text",), ("text", "null"), ("integer",), ("integer", "null"), ("blob",)
VALUE_TYPES: dict[str, dict[str, tuple[str, ...]]] = {
    "sessions": dict(id=_I, name=_T, created_at=_T, updated_at=_T, notes=_T),
    "corpora": dict(id=_I, session_id=_I, name=_T, source=_T, n_docs=_I, text_col=_TN, label_col=_TN, id_col=_TN,
                    meta_cols=_T, n_skipped=_I, content_hash=_T, created_at=_T),
    "documents": dict(corpus_id=_I, idx=_I, doc_id=_T, text=_T, label=_TN, meta_json=_T),
    "matrices": dict(id=_I, corpus_id=_IN, content_hash=_T, kind=_T, model=_T, params_json=_T, dtype=_T, rows=_I,
                     cols=_I, chunk_rows=_I, complete=_I, cache_key=_T, created_at=_T),
    "matrix_chunks": dict(matrix_id=_I, chunk_no=_I, data=_B),
    "runs": dict(id=_I, session_id=_I, kind=_T, params_json=_T, metrics_json=_T, details_json=_T, created_at=_T),
    "bookmarks": dict(session_id=_I, corpus_id=_I, idx=_I, tag=_T, note=_T),
}
# judgments (version 4 on; checked by `judgment_rows`, as older files have no such table)
JUDGMENT_TYPES: dict[str, tuple[str, ...]] = dict(session_id=_I, corpus_id=_I, query_key=_T, query_idx=_IN,
                                                  query_text=_TN, doc_idx=_I, grade=_I, judge=_T, judged_at=_T)
MATRIX_KINDS = ("embedding", "projection", "tokens", "token_offsets")
FLOAT_KINDS = ("embedding", "projection", "tokens")    # whose values are checked: float, finite
FLOAT_DTYPES = ("float32", "float16")
# A stored embedding row is L2-normalised: x / max(|x|, 1e-12) (`l2_normalise`), so of length 1, or 0 for a document
# without content, or (rarely) tiny for a document whose vector is numerical noise (tfidf-svd, a few documents).
NORM_TOLERANCE = 1e-3   # |length - 1| of a unit row; a row shorter than this counts as empty


class ImportRefused(StorageError):
    """A file that import will not take, with one line saying why; nothing was changed."""


def rows_of(cursor: sqlite3.Cursor, size: int = 256) -> Iterator[tuple]:
    """Stream a cursor in batches (large tables and BLOBs are never held whole in memory)."""
    while True:
        batch = cursor.fetchmany(size)
        if not batch:
            return
        yield from batch


def source_rows(cursor_fn) -> Iterator[tuple]:
    """Rows from the foreign file; a read failure there is the file's fault: ImportRefused."""
    try:
        yield from rows_of(cursor_fn())
    except sqlite3.DatabaseError as exc:
        raise ImportRefused(f"the file cannot be read: {one_line(exc)}") from exc


def one_line(exc: BaseException | str, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def db_file(db: sqlite_utils.Database) -> str | None:
    with contextlib.suppress(sqlite3.Error):
        for row in db.execute("PRAGMA database_list"):
            if row[1] == "main":
                return row[2] or None
    return None
