"""Moving one session between databases: export to a standalone `.sqlite` file, import such a file.

Export writes a fresh file with our own schema (rows copied, ids renumbered), leaves it as one self-contained
file (journal mode DELETE, no `-wal`) and moves it into place atomically.

Import is a trust boundary: the file may come from anyone. Before a single row is copied the file is checked
(size, header, `PRAGMA integrity_check`, schema version, tables, columns and their types, and every row's
shape and references). It is opened read-only and immutable with `sqlite3` directly, with `trusted_schema`
off; only plain row values are read from it and inserted with parameters into our database, in one transaction:
no SQL text, trigger or view of the file is ever executed or copied, and any failure leaves our database as it was.

Cached matrices are shared across sessions by cache key, so an imported matrix must never answer a lookup for data
it was not computed from. By construction:
* every corpus's content hash is recomputed from its documents (once to check the file, and again over the very
  rows inserted); a file whose stored hash differs is refused, and only the recomputed hash is stored;
* every matrix belongs to a corpus of the file with that same content, and its shape fits it (an embedding or a
  projection has exactly one row per document; token offsets one more, rising from 0 to the token count);
* the cache key of every embedding, token and projection matrix is recomputed from what the file brings: the
  matrix's own `params_json` (the embedder identity, or the projection parameters together with the recomputed key
  of an embedding of the same content) and the recomputed content hash. A key in those namespaces that differs is
  refused; a matrix is only ever stored under the recomputed key. So a lookup (`cache_key(embedder, content_hash)`)
  can only find an imported matrix for the same identity and the same texts, with the right shape. Keys in no
  lookup namespace are kept as they are: no lookup computes them;
* where the target already holds a complete matrix under a key, that one is kept and the file's is not copied.
Values are checked too, in every chunk, before anything is written and again as the bytes are copied: no NaN or
±inf in an embedding, token or projection matrix, and every embedding row of unit length (or all zero), as stored
embeddings are L2-normalised; a matrix that fails refuses the whole import.
And a file may still claim vectors for its texts that the model would not give. So an embedding enters the shared
cache only when it verifies (`embedlab.embedding.verify`: a random sample of its documents re-encoded with the
claimed model, cosine >= 0.999 on every sampled row); token embeddings likewise, and a projection only with the
embedding of the file it was derived from. Everything else (unverified, unverifiable here, or under a key no lookup
computes) is kept private to the imported corpus (`storage.matrices.private_key`, "imported, not verified"): that
corpus uses it, and no other corpus's lookup ever finds it. An export writes a corpus's private matrices under their
shared keys, so the next import checks them again.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import sqlite3
import urllib.parse
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import sqlite_utils

from embedlab.embedding.verify import sample_rows, verify_embedding, verify_tokens
from storage.db import StorageError, connect, explain_sqlite_error, transaction
from storage.matrices import (DTYPES, PRIVATE_PREFIX, private_key, projection_cache_key, session_matrices,
                              shared_key_of)
from storage.output_files import atomic_output, check_output_path, database_files, same_file
from storage.schema import EXPECTED_COLUMNS
from storage.sessions import MAX_NAME_LEN, InvalidName, clean_name, require_session, unique_session_name

__all__ = ["ImportRefused", "export_session", "import_session", "MAX_IMPORT_BYTES"]

MAX_IMPORT_BYTES = 2 * 1024**3
# Schema versions whose copied tables (COPIED below) have exactly these columns: version 2 only added label_names,
# which a version-1 file lacks (imported when present). A migration that changes a copied table must end this range at the version before it.
IMPORTABLE_VERSIONS = (1, 2, 3)
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
COPIED: dict[str, tuple[str, ...]] = {"sessions": SESSION_COLS, "corpora": CORPUS_COLS, "documents": DOC_COLS,
                                      "matrices": MATRIX_COLS, "matrix_chunks": CHUNK_COLS, "runs": RUN_COLS,
                                      "bookmarks": BOOKMARK_COLS}

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


class ImportRefused(StorageError):
    """A file that import will not take, with one line saying why; nothing was changed."""


# --------------------------------------------------------------------------------------------------- export

def export_session(db: sqlite_utils.Database, name: str, out_path: str | os.PathLike, *,
                   overwrite: bool = False) -> Path:
    """Write session `name` (its corpora, documents, runs, bookmarks and the complete matrices computed for its
    corpora' content) to a standalone `.sqlite` file; return its path. An existing file is kept unless
    `overwrite`. Jobs are not exported."""
    out, sid = export_target(db, name, out_path, overwrite=overwrite)
    try:
        with atomic_output(out, overwrite=overwrite) as tmp:
            target = connect(tmp)
            try:
                with _read_snapshot(db):
                    _copy_out(db, sid, target)
                # Leaving WAL checkpoints everything into the main file and removes the -wal: one file to send.
                mode = target.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
                if str(mode).lower() != "delete":
                    raise StorageError(f"could not finish the export file {tmp} (journal mode {mode})")
            finally:
                target.close()
    except sqlite3.DatabaseError as exc:
        raise StorageError(explain_sqlite_error(exc, out)) from exc
    except OSError as exc:
        raise StorageError(f"cannot write {out}: {exc.strerror or exc}") from exc
    return out


def export_target(db: sqlite_utils.Database, name: str, out_path: str | os.PathLike, *,
                  overwrite: bool) -> tuple[Path, int]:
    """(the export file's path, the session's id), after checking the file may be written: not a folder, not an
    existing file unless `overwrite`, not the database or one of its side files; its folder is created."""
    out = Path(out_path)
    if out.is_dir():
        raise StorageError(f"{out} is a folder: give a file name to export to")
    source = _db_file(db)
    if source:
        check_output_path(out, flag="OUT", database=source)
    if not overwrite and (out.exists() or out.is_symlink()):
        raise StorageError(f"{out} exists already: choose another file name or allow overwriting")
    sid = require_session(db, name)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the folder {out.parent}: {exc.strerror or exc}") from exc
    return out, sid


@contextlib.contextmanager
def _read_snapshot(db: sqlite_utils.Database) -> Iterator[None]:
    """One read transaction on the source, so the export is a consistent snapshot."""
    conn = db.conn
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")


def _copy_out(db: sqlite_utils.Database, sid: int, target: sqlite_utils.Database) -> None:
    src = db.conn
    with transaction(target) as out:
        s = src.execute("SELECT name, created_at, updated_at, notes FROM sessions WHERE id = ?", [sid]).fetchone()
        if s is None:
            raise StorageError("the session was deleted while exporting it")
        new_sid = out.execute("INSERT INTO sessions (name, created_at, updated_at, notes) VALUES (?,?,?,?)",
                              list(s)).lastrowid
        corpus_map: dict[int, int] = {}
        first_by_hash: dict[str, int] = {}
        cols = ", ".join(CORPUS_COLS[2:])
        for row in src.execute(f"SELECT id, {cols} FROM corpora WHERE session_id = ? ORDER BY id", [sid]).fetchall():
            new_cid = out.execute(f"INSERT INTO corpora (session_id, {cols}) VALUES (?{',?' * (len(row) - 1)})",
                                  [new_sid, *row[1:]]).lastrowid
            corpus_map[row[0]] = new_cid
            first_by_hash.setdefault(row[CORPUS_COLS.index("content_hash") - 1], new_cid)
            out.executemany("INSERT INTO documents (corpus_id, idx, doc_id, text, label, meta_json) "
                            "VALUES (?,?,?,?,?,?)",
                            ((new_cid, *r) for r in _rows(src.execute(
                                "SELECT idx, doc_id, text, label, meta_json FROM documents WHERE corpus_id = ? "
                                "ORDER BY idx", [row[0]]))))
        out.executemany("INSERT INTO runs (session_id, kind, params_json, metrics_json, details_json, created_at) "
                        "VALUES (?,?,?,?,?,?)",
                        ((new_sid, *r) for r in _rows(src.execute(
                            "SELECT kind, params_json, metrics_json, details_json, created_at FROM runs "
                            "WHERE session_id = ? ORDER BY id", [sid]))))
        bookmarks = src.execute("SELECT corpus_id, idx, tag, note FROM bookmarks WHERE session_id = ?",
                                [sid]).fetchall()
        out.executemany("INSERT INTO bookmarks (session_id, corpus_id, idx, tag, note) VALUES (?,?,?,?,?)",
                        [(new_sid, corpus_map[c], i, t, n) for c, i, t, n in bookmarks if c in corpus_map])
        names = src.execute("SELECT corpus_id, label, name FROM label_names WHERE corpus_id IN "
                            "(SELECT id FROM corpora WHERE session_id = ?)", [sid]).fetchall()
        out.executemany("INSERT INTO label_names (corpus_id, label, name) VALUES (?,?,?)",
                        [(corpus_map[c], label, name) for c, label, name in names])
        mcols = MATRIX_COLS[1:]
        # the matrices its corpora see (never another corpus's private copy); a private one under its shared key
        for meta in session_matrices(db, sid):
            m = src.execute(f"SELECT {', '.join(mcols)} FROM matrices WHERE id = ?", [meta.id]).fetchone()
            values = dict(zip(mcols, m))
            values["cache_key"] = shared_key_of(values["cache_key"])
            values["corpus_id"] = corpus_map.get(values["corpus_id"]) or first_by_hash[values["content_hash"]]
            new_mid = out.execute(f"INSERT INTO matrices ({', '.join(mcols)}) VALUES ({', '.join('?' * len(mcols))})",
                                  [values[c] for c in mcols]).lastrowid
            out.executemany("INSERT INTO matrix_chunks (matrix_id, chunk_no, data) VALUES (?,?,?)",
                            ((new_mid, *r) for r in _rows(src.execute(
                                "SELECT chunk_no, data FROM matrix_chunks WHERE matrix_id = ? ORDER BY chunk_no",
                                [meta.id]))))


def _rows(cursor: sqlite3.Cursor, size: int = 256) -> Iterator[tuple]:
    """Stream a cursor in batches (large tables and BLOBs are never held whole in memory)."""
    while True:
        batch = cursor.fetchmany(size)
        if not batch:
            return
        yield from batch


# --------------------------------------------------------------------------------------------------- import

@dataclass
class _Plan:
    """What a validated file holds, by its own ids."""
    session: dict[str, Any]
    corpora: list[dict[str, Any]] = field(default_factory=list)
    matrices: list[dict[str, Any]] = field(default_factory=list)
    label_names: dict[int, dict[str, str]] = field(default_factory=dict)   # corpus id -> label -> name


MATRIX_KINDS = ("embedding", "projection", "tokens", "token_offsets")
# The key namespaces that lookups compute (a private key too: a file's key there is refused, never kept).
LOOKUP_PREFIXES = ("embedding:", "tokens:", "projection:", PRIVATE_PREFIX)
FLOAT_KINDS = ("embedding", "projection", "tokens")    # whose values are checked: float, finite
FLOAT_DTYPES = ("float32", "float16")
# A stored embedding row is L2-normalised: x / max(|x|, 1e-12) (`l2_normalise`), so of length 1, or 0 for a document
# without content, or (rarely) tiny for a document whose vector is numerical noise (tfidf-svd, a few documents).
NORM_TOLERANCE = 1e-3   # |length - 1| of a unit row; a row shorter than this counts as empty


def import_session(db: sqlite_utils.Database, file_path: str | os.PathLike, *,
                   max_bytes: int = MAX_IMPORT_BYTES, notes: list[str] | None = None) -> str:
    """Import the one session of an exported file; return its name here (suffixed " (2)" etc. when the name is
    taken: nothing is ever overwritten). Raises `ImportRefused` for a file that fails any check, and
    `StorageError` when our own database cannot be written; in both cases nothing was changed. `notes`, when
    given, receives one line per matrix kept private to its corpus, saying why."""
    path = Path(file_path)
    source = _db_file(db)
    if source and any(same_file(path, p) for p in database_files(source)):
        raise ImportRefused(f"{path} is the database itself: import a session file exported from another one")
    _check_file(path, max_bytes)
    src = _open_foreign(path)
    try:
        try:
            _check_database(src)
            plan = _validate(src, db)
            _verify(src, plan)
        except sqlite3.DatabaseError as exc:
            raise ImportRefused(f"the file cannot be read: {_one_line(exc)}") from exc
        name = _copy_in(db, src, plan)
        if notes is not None:
            notes += [f"{_what(m)} is kept private to it (imported, not verified): {m['why']}"
                      for m in plan.matrices if not m["shared"] and m["kind"] != "token_offsets"]
        return name
    finally:
        src.close()


def _check_file(path: Path, max_bytes: int) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ImportRefused(f"no such file: {path}") from None
    except OSError as exc:
        raise ImportRefused(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise ImportRefused(f"not a regular file: {path}")
    size = st.st_size
    if size == 0:
        raise ImportRefused("not an SQLite database (empty file)")
    if size > max_bytes:
        have, limit = _human(size), _human(max_bytes)
        if have == limit:
            have, limit = f"{size:,} bytes", f"{max_bytes:,} bytes"
        raise ImportRefused(f"file is {have}, over the {limit} import limit")
    try:
        with open(path, "rb") as fh:
            header = fh.read(100)
    except OSError as exc:
        raise ImportRefused(f"cannot read {path}: {exc.strerror or exc}") from exc
    if header[:16] != SQLITE_HEADER:
        raise ImportRefused("not an SQLite database (bad header)")
    if len(header) < 100:
        raise ImportRefused("not an SQLite database (truncated header)")
    wal = path.with_name(path.name + "-wal")
    if header[18:20] == b"\x02\x02" and wal.exists() and wal.stat().st_size > 0:
        # Opened immutable, the file alone would be read without its recent changes: say so instead.
        raise ImportRefused(f"the file has unsaved changes in {wal.name}: close the program using it first, "
                            "or export the session again")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    n_pages = int.from_bytes(header[28:32], "big")
    change_counter, valid_for = header[24:28], header[92:96]
    if (change_counter == valid_for and n_pages and 512 <= page_size <= 65536
            and page_size & (page_size - 1) == 0 and size < page_size * n_pages):
        raise ImportRefused(f"the file is truncated ({size:,} of {page_size * n_pages:,} bytes)")


def _human(n: int) -> str:
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"


def _one_line(exc: BaseException | str, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _open_foreign(path: Path) -> sqlite3.Connection:
    """The file read-only and immutable (no locks, no -wal/-shm, never written), with untrusted-schema guards."""
    uri = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro&immutable=1"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise ImportRefused(f"cannot open the file: {_one_line(exc)}") from exc
    try:
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        # Defences for a database file from an untrusted source (https://www.sqlite.org/security.html):
        # no functions with side effects or untrusted virtual tables from its schema, extra page checks,
        # and this connection cannot write anything.
        conn.execute("PRAGMA trusted_schema = OFF")
        conn.execute("PRAGMA cell_size_check = ON")
        conn.execute("PRAGMA mmap_size = 0")
        conn.execute("PRAGMA query_only = ON")
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        if "malformed" in str(exc).lower() or "corrupt" in str(exc).lower():
            raise ImportRefused(f"integrity check failed: {_one_line(exc)}") from exc
        raise ImportRefused(f"not a valid SQLite database ({_one_line(exc)})") from exc
    return conn


@lru_cache(maxsize=1)
def _reference_columns() -> dict[str, list[tuple[str, str]]]:
    """Our schema's (column, declared type) per table, as the migrations create it."""
    ref = connect(":memory:")
    try:
        return {t: [(r[1], (r[2] or "").upper()) for r in ref.execute(f"PRAGMA table_info({_q(t)})")]
                for t in EXPECTED_COLUMNS}
    finally:
        ref.close()


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _check_database(src: sqlite3.Connection) -> None:
    try:
        problems = [r[0] for r in src.execute("PRAGMA integrity_check(20)").fetchall()]
    except sqlite3.DatabaseError as exc:
        raise ImportRefused(f"integrity check failed: {_one_line(exc)}") from exc
    if problems != ["ok"]:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise ImportRefused(f"integrity check failed: {_one_line(problems[0] if problems else 'no answer')}{more}")
    version = src.execute("PRAGMA user_version").fetchone()[0]
    if version not in IMPORTABLE_VERSIONS:
        expected = (str(IMPORTABLE_VERSIONS[0]) if len(IMPORTABLE_VERSIONS) == 1
                    else f"{IMPORTABLE_VERSIONS[0]} to {IMPORTABLE_VERSIONS[-1]}")
        raise ImportRefused(f"schema version {version} is not supported (expected {expected})")
    objects = {r[0]: (r[1], r[2], r[3] or "") for r in
               src.execute("SELECT name, type, rootpage, sql FROM sqlite_master")}
    for table in EXPECTED_COLUMNS:
        if table not in objects:
            raise ImportRefused(f"the file has no table {table!r}")
        kind, rootpage, sql = objects[table]
        if kind != "table":
            raise ImportRefused(f"{table!r} in the file is a {kind}, not a table")
        if not rootpage or sql.lstrip().upper().startswith("CREATE VIRTUAL"):
            raise ImportRefused(f"{table!r} in the file is a virtual table, not a table")
        have = {r[1]: ((r[2] or "").upper(), r[6]) for r in src.execute(f"PRAGMA table_xinfo({_q(table)})")}
        copied = set(COPIED.get(table, ()))
        for column, ref_type in _reference_columns()[table]:
            if column not in EXPECTED_COLUMNS[table] and column not in copied:
                continue
            if column not in have:
                raise ImportRefused(f"table {table!r} lacks column {column!r}")
            declared, hidden = have[column]
            if hidden:
                raise ImportRefused(f"table {table!r} column {column!r} is a generated column")
            if column in copied and declared != ref_type:
                raise ImportRefused(f"table {table!r} column {column!r} has type {declared or 'none'!r}, "
                                    f"expected {ref_type!r}")
    for table, types in VALUE_TYPES.items():
        exprs = ", ".join(f"SUM(typeof({_q(c)}) NOT IN ({', '.join(repr(t) for t in ok)}))"
                          for c, ok in types.items())
        counts = src.execute(f"SELECT {exprs} FROM {_q(table)}").fetchone()
        for (column, ok), bad in zip(types.items(), counts):
            if bad:
                found = src.execute(f"SELECT typeof({_q(column)}) FROM {_q(table)} WHERE typeof({_q(column)}) "
                                    f"NOT IN ({', '.join(repr(t) for t in ok)}) LIMIT 1").fetchone()[0]
                raise ImportRefused(f"{table}.{column} holds a {found} value (expected {' or '.join(ok)})")


def _json(value: str, what: str, kind: type) -> Any:
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        raise ImportRefused(f"{what} is not valid JSON") from None
    if not isinstance(parsed, kind):
        raise ImportRefused(f"{what} is not a JSON {'object' if kind is dict else 'list'}")
    return parsed


def _name(value: str, what: str) -> str:
    try:
        return clean_name(value, what)
    except InvalidName as exc:
        raise ImportRefused(f"invalid {what} name in the file: {exc}") from None


def _validate(src: sqlite3.Connection, db: sqlite_utils.Database | None = None) -> _Plan:
    """Every row of the file, checked for shape and references, every content hash and cache key recomputed;
    returns what to copy (each corpus with its recomputed `hash`, each matrix with its recomputed `key`)."""
    sessions = src.execute(f"SELECT {', '.join(SESSION_COLS)} FROM sessions").fetchall()
    if len(sessions) != 1:
        raise ImportRefused(f"the file holds {len(sessions)} sessions, expected exactly 1")
    plan = _Plan(session=dict(zip(SESSION_COLS, sessions[0])))
    sid = plan.session["id"]
    plan.session["name"] = _name(plan.session["name"], "session")

    names: set[str] = set()
    for row in src.execute(f"SELECT {', '.join(CORPUS_COLS)} FROM corpora ORDER BY id"):
        c = dict(zip(CORPUS_COLS, row))
        if c["session_id"] != sid:
            raise ImportRefused(f"corpus {c['id']} belongs to another session (session_id {c['session_id']})")
        c["name"] = _name(c["name"], "corpus")
        if c["name"] in names:
            raise ImportRefused(f"corpus name {c['name']!r} appears twice")
        names.add(c["name"])
        if plan.corpora and c["id"] == plan.corpora[-1]["id"]:
            raise ImportRefused(f"corpus id {c['id']} appears twice")
        if not 0 <= c["n_docs"] <= MAX_MATRIX_ROWS or c["n_skipped"] < 0:
            raise ImportRefused(f"corpus {c['name']!r} has an impossible document count ({c['n_docs']})")
        if c["n_docs"] == 0:
            raise ImportRefused(f"corpus {c['name']!r} has no documents (ingestion refuses an empty corpus; so does "
                                "import)")
        meta_cols = _json(c["meta_cols"], f"corpora.meta_cols of corpus {c['name']!r}", list)
        if not all(isinstance(x, str) for x in meta_cols):
            raise ImportRefused(f"corpora.meta_cols of corpus {c['name']!r} is not a list of names")
        plan.corpora.append(c)
    by_id = {c["id"]: c for c in plan.corpora}

    found = {r[0]: r[1:] for r in src.execute(
        "SELECT corpus_id, COUNT(*), COUNT(DISTINCT idx), MIN(idx), MAX(idx) FROM documents GROUP BY corpus_id")}
    for cid in found:
        if cid not in by_id:
            raise ImportRefused(f"documents belong to corpus {cid}, which is not in the file's session")
    for c in plan.corpora:
        n = c["n_docs"]
        count, distinct, lo, hi = found.get(c["id"], (0, 0, None, None))
        if not (count == distinct == n and (n == 0 or (lo == 0 and hi == n - 1))):
            span = f"idx {lo}..{hi}" if count else "none"
            raise ImportRefused(f"corpus {c['name']!r}: documents must have idx 0..{n - 1} without gaps "
                                f"(found {count} documents, {span})")
    for cid, idx, meta in _rows(src.execute("SELECT corpus_id, idx, meta_json FROM documents")):
        _json(meta, f"documents.meta_json of corpus {by_id[cid]['name']!r} idx {idx}", dict)
    for c in plan.corpora:
        c["hash"] = _content_hash(r[0] for r in _rows(src.execute(
            "SELECT text FROM documents WHERE corpus_id = ? ORDER BY idx", [c["id"]])))
        if c["hash"] != c["content_hash"]:
            raise ImportRefused(f"corpus {c['name']!r}: its content hash does not match its documents (the file was "
                                "altered): refused, as its cached matrices could describe other texts")

    for row in _rows(src.execute(f"SELECT {', '.join(RUN_COLS)} FROM runs")):
        r = dict(zip(RUN_COLS, row))
        if r["session_id"] != sid:
            raise ImportRefused(f"run {r['id']} belongs to another session (session_id {r['session_id']})")
        for col in ("params_json", "metrics_json", "details_json"):
            _json(r[col], f"runs.{col} of run {r['id']}", dict)

    seen_marks: set[tuple] = set()
    for s, cid, idx, tag in _rows(src.execute("SELECT session_id, corpus_id, idx, tag FROM bookmarks")):
        if s != sid:
            raise ImportRefused(f"a bookmark belongs to another session (session_id {s})")
        if cid not in by_id or not 0 <= idx < by_id[cid]["n_docs"]:
            raise ImportRefused(f"bookmark on corpus {cid} idx {idx} points at no document")
        if (cid, idx, tag) in seen_marks:
            raise ImportRefused(f"bookmark on corpus {cid} idx {idx} tag {tag!r} appears twice")
        seen_marks.add((cid, idx, tag))
    plan.label_names = _label_names(src, by_id)

    hashes = {c["hash"] for c in plan.corpora}
    chunks: dict[int, list[tuple[int, int]]] = {}
    for mid, no, size in _rows(src.execute(
            "SELECT matrix_id, chunk_no, length(data) FROM matrix_chunks ORDER BY matrix_id, chunk_no")):
        chunks.setdefault(mid, []).append((no, size))
    keys: set[str] = set()
    for row in src.execute(f"SELECT {', '.join(MATRIX_COLS)} FROM matrices ORDER BY id").fetchall():
        m = dict(zip(MATRIX_COLS, row))
        if m["complete"] != 1:
            continue  # an unfinished cache entry: not part of an export, not imported
        key = m["cache_key"]
        _check_matrix(m, chunks.get(m["id"], []))
        if not key:
            raise ImportRefused("a matrix has an empty cache key")
        if key in keys:
            raise ImportRefused(f"matrix cache key {key!r} appears twice")
        keys.add(key)
        if m["content_hash"] not in hashes:
            raise ImportRefused(f"matrix {key!r} belongs to no corpus of the session")
        m["params"] = _json(m["params_json"], f"matrices.params_json of matrix {key!r}", dict)
        m["corpus"] = _matrix_corpus(m, by_id, plan.corpora)
        plan.matrices.append(m)
    _derive_keys(src, db, plan)
    for m in plan.matrices:
        for start, block in _blocks(src, m):
            _check_values(m, start, block)
    return plan


def _label_names(src: sqlite3.Connection, by_id: dict[int, dict]) -> dict[int, dict[str, str]]:
    """The file's label names (a version-1 file has none), checked as the Atlas checks an edit."""
    from embedlab.errors import InputError
    from storage.label_names import clean_label_names

    table = src.execute("SELECT type, sql FROM sqlite_master WHERE name = 'label_names'").fetchone()
    if table is None:
        return {}
    if table[0] != "table" or (table[1] or "").lstrip().upper().startswith("CREATE VIRTUAL"):
        raise ImportRefused("'label_names' in the file is not a plain table")
    types = {r[1]: (r[2] or "").upper() for r in src.execute("PRAGMA table_xinfo(label_names)")}
    if types != {"corpus_id": "INTEGER", "label": "TEXT", "name": "TEXT"}:
        raise ImportRefused("table 'label_names' does not have the columns corpus_id, label and name")
    raw: dict[int, dict[str, str]] = {}
    for cid, label, name in _rows(src.execute("SELECT corpus_id, label, name FROM label_names")):
        if cid not in by_id:
            raise ImportRefused(f"a label name points at corpus {cid!r}, which the file does not hold")
        if not isinstance(label, str) or not isinstance(name, str):
            raise ImportRefused(f"a label name of corpus {cid} is not text")
        raw.setdefault(cid, {})[label] = name
    try:
        return {cid: clean_label_names(names) for cid, names in raw.items()}
    except InputError as exc:
        raise ImportRefused(f"label names: {exc}") from exc


def _content_hash(texts: Iterable[str]) -> str:
    from embedlab.corpus import content_hash

    try:
        return content_hash(texts)  # type: ignore[arg-type]  # it only iterates
    except UnicodeEncodeError:
        raise ImportRefused("a document's text is not valid Unicode (a lone surrogate)") from None


def _matrix_corpus(m: dict[str, Any], by_id: dict[int, dict], corpora: list[dict]) -> dict[str, Any]:
    """The file's corpus a matrix was computed for: its `corpus_id` (same content required), else the first corpus of
    its content; and its shape checked against that corpus."""
    key, cid = m["cache_key"], m["corpus_id"]
    if cid is not None:
        corpus = by_id.get(cid)
        if corpus is None:
            raise ImportRefused(f"matrix {key!r} belongs to corpus {cid}, which is not in the file's session")
        if corpus["hash"] != m["content_hash"]:
            raise ImportRefused(f"matrix {key!r} was computed for other texts than those of its corpus "
                                f"{corpus['name']!r}")
    else:
        corpus = next(c for c in corpora if c["hash"] == m["content_hash"])
    n, kind = corpus["n_docs"], m["kind"]
    if kind not in MATRIX_KINDS:
        raise ImportRefused(f"matrix {key!r} is of unknown kind {kind!r}")
    if kind in ("embedding", "projection") and m["rows"] != n:
        raise ImportRefused(f"matrix {key!r} has {m['rows']} rows, but its corpus {corpus['name']!r} has {n} "
                            "documents (one row each)")
    if kind == "token_offsets" and (m["rows"] != n + 1 or m["cols"] != 1 or m["dtype"] != "int64"):
        raise ImportRefused(f"matrix {key!r}: token offsets must be {n + 1} x 1 int64 for corpus {corpus['name']!r}, "
                            f"found {m['rows']} x {m['cols']} {m['dtype']}")
    return corpus


class _ClaimedIdentity:
    """The embedder identity a matrix's `params_json` claims, for `cache_key` (which only calls `identity()`)."""

    def __init__(self, identity: dict) -> None:
        self._identity = identity

    def identity(self) -> dict:
        return self._identity


def _identity_key(identity: dict, content_hash: str, kind: str) -> str:
    from embedlab.embedding.cache import cache_key

    return cache_key(_ClaimedIdentity(identity), content_hash, kind)  # type: ignore[arg-type]


def _derive_keys(src: sqlite3.Connection, db: sqlite_utils.Database | None, plan: _Plan) -> None:
    """Set each matrix's `key`: recomputed from its identity or parameters and its corpus's recomputed content hash.
    A stored key in a lookup namespace must equal it; other keys (no lookup computes them) are kept."""
    embeddings: dict[str, dict[str, dict | None]] = {}   # content hash -> embedding key -> the file's matrix
    for m in plan.matrices:
        h = m["corpus"]["hash"]
        if m["kind"] == "embedding":
            m["key"] = _identity_key(m["params"], h, "embedding")
            embeddings.setdefault(h, {})[m["key"]] = m
        elif m["kind"] == "tokens":
            m["key"] = _identity_key(m["params"], h, "tokens")
        elif m["kind"] == "token_offsets":
            m["key"] = _identity_key(m["params"], h, "tokens") + ":offsets"
    for m in plan.matrices:
        if m["kind"] != "projection":
            continue
        h = m["corpus"]["hash"]
        candidates = dict(embeddings.get(h, {}))
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                for (key,) in db.execute("SELECT cache_key FROM matrices WHERE content_hash = ? AND kind = "
                                         "'embedding' AND complete = 1 AND cache_key NOT LIKE ?",
                                         [h, PRIVATE_PREFIX + "%"]):
                    candidates.setdefault(key, None)   # an embedding of ours: the projection's values are the file's
        derived = {projection_cache_key(k, m["params"]): source for k, source in candidates.items()}
        key = m["cache_key"] if m["cache_key"] in derived else (next(iter(derived)) if len(derived) == 1 else None)
        m["key"], m["source"] = key, derived.get(key)
    keys: set[str] = set()
    for m in plan.matrices:
        stored, derived = m["cache_key"], m.get("key")
        if stored.startswith(LOOKUP_PREFIXES):
            if derived != stored:
                what = ("its projection parameters and an embedding of the same texts" if m["kind"] == "projection"
                        else "its embedder identity (params_json) and its corpus's texts")
                raise ImportRefused(f"matrix {stored!r}: its cache key does not match {what}: refused, it could "
                                    "answer lookups for other data")
        else:
            m["key"] = stored  # not a key any lookup computes: kept as it is
        if m["key"] in keys:
            raise ImportRefused(f"matrix cache key {m['key']!r} appears twice")
        keys.add(m["key"])
    by_key = {m["key"]: m for m in plan.matrices}
    for m in plan.matrices:
        if m["kind"] == "token_offsets" and m["key"].startswith(LOOKUP_PREFIXES):
            tokens = by_key.get(m["key"].removesuffix(":offsets"))
            if tokens is None or tokens["kind"] != "tokens":
                raise ImportRefused(f"matrix {m['cache_key']!r}: token offsets without their token matrix")
            _check_offsets(src, m, tokens["rows"])
        elif m["kind"] == "tokens" and m["key"].startswith(LOOKUP_PREFIXES) and m["key"] + ":offsets" not in by_key:
            raise ImportRefused(f"matrix {m['cache_key']!r}: token embeddings without their offsets")


def _check_offsets(src: sqlite3.Connection, m: dict[str, Any], n_tokens: int) -> None:
    """Token offsets rise from 0 to the token count: document i owns token rows offsets[i]:offsets[i + 1]."""
    import numpy as np

    parts = [np.frombuffer(data, dtype="<i8") for (data,) in _rows(src.execute(
        "SELECT data FROM matrix_chunks WHERE matrix_id = ? ORDER BY chunk_no", [m["id"]]))]
    offsets = np.concatenate(parts) if parts else np.zeros(0, dtype="<i8")
    if len(offsets) != m["rows"] or offsets[0] != 0 or offsets[-1] != n_tokens or np.any(np.diff(offsets) < 0):
        raise ImportRefused(f"matrix {m['cache_key']!r}: its token offsets do not run from 0 to the {n_tokens} token "
                            "rows")


def _check_matrix(m: dict[str, Any], chunks: list[tuple[int, int]]) -> None:
    key, dtype, rows, cols, chunk_rows = m["cache_key"], m["dtype"], m["rows"], m["cols"], m["chunk_rows"]
    if dtype not in DTYPES:
        raise ImportRefused(f"matrix {key!r} has unknown dtype {dtype!r}")
    if not 0 <= rows <= MAX_MATRIX_ROWS:
        raise ImportRefused(f"matrix {key!r} has {rows} rows, outside the limit of 0..{MAX_MATRIX_ROWS}")
    if not 1 <= cols <= MAX_MATRIX_COLS:
        raise ImportRefused(f"matrix {key!r} has {cols} columns, outside the limit of 1..{MAX_MATRIX_COLS}")
    if not 1 <= chunk_rows:
        raise ImportRefused(f"matrix {key!r} has an impossible chunk size ({chunk_rows} rows)")
    itemsize = DTYPES[dtype].itemsize
    expected_chunks = -(-rows // chunk_rows)
    if len(chunks) != expected_chunks:
        raise ImportRefused(f"matrix {key!r} has {len(chunks)} chunks, expected {expected_chunks}")
    total = sum(size for _, size in chunks)
    expected = rows * cols * itemsize
    if total != expected:
        raise ImportRefused(f"matrix {key!r}: its chunks hold {total} bytes, expected "
                            f"{rows}×{cols}×{itemsize} = {expected}")
    for i, (no, size) in enumerate(chunks):
        want = min(chunk_rows, rows - i * chunk_rows) * cols * itemsize
        if no != i or size != want:
            raise ImportRefused(f"matrix {key!r}: chunk {no} holds {size} bytes, expected chunk {i} of {want} bytes")


def _decode(data: bytes, m: dict[str, Any]) -> np.ndarray:
    return np.frombuffer(data, dtype=DTYPES[m["dtype"]]).reshape(-1, m["cols"])


def _blocks(src: sqlite3.Connection, m: dict[str, Any], chunk_nos: Iterable[int] | None = None
            ) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, rows) of each chunk of a file's matrix (only `chunk_nos` when given), in order."""
    sql, args = "SELECT chunk_no, data FROM matrix_chunks WHERE matrix_id = ?", [m["id"]]
    if chunk_nos is not None:
        wanted = sorted({int(c) for c in chunk_nos})
        sql += f" AND chunk_no IN ({', '.join('?' * len(wanted))})"
        args += wanted
    for no, data in _source_rows(lambda: src.execute(sql + " ORDER BY chunk_no", args)):
        yield no * m["chunk_rows"], _decode(data, m)


def _file_rows(src: sqlite3.Connection, m: dict[str, Any], rows: np.ndarray) -> np.ndarray:
    """Rows `rows` of a file's matrix (reading only the chunks that hold them)."""
    out = np.empty((len(rows), m["cols"]), dtype=np.float32)
    where = {int(r): i for i, r in enumerate(rows)}
    for start, block in _blocks(src, m, (r // m["chunk_rows"] for r in rows)):
        for r in range(start, start + len(block)):
            if r in where:
                out[where[r]] = block[r - start]
    return out


def _what(m: dict[str, Any]) -> str:
    """"the embedding matrix of 'tfidf-svd' for corpus 'news'" (a model name from the file kept short)."""
    model = f" of {_one_line(m['model'], 80)!r}" if m["model"] else ""
    return f"the {m['kind']} matrix{model} for corpus {m['corpus']['name']!r}"


def _check_values(m: dict[str, Any], start: int, block: np.ndarray) -> None:
    """A float matrix holds only finite values; an embedding's rows are unit length, or (near) zero for an empty
    document (stored embeddings are L2-normalised). Refused with the first bad row (counting from 0, as documents'
    idx do)."""
    if m["kind"] not in FLOAT_KINDS:
        return
    if m["dtype"] not in FLOAT_DTYPES:
        raise ImportRefused(f"{_what(m)} holds {m['dtype']} values: expected {' or '.join(FLOAT_DTYPES)}")
    finite = np.isfinite(block)
    if not finite.all():
        row = int(np.argmin(finite.all(axis=1)))
        value = block[row][~finite[row]][0]
        name = "NaN" if np.isnan(value) else ("+inf" if value > 0 else "-inf")
        raise ImportRefused(f"{_what(m)}: row {start + row} holds {name} (refused: a matrix must be finite)")
    if m["kind"] == "embedding":
        norms = np.linalg.norm(block.astype(np.float64), axis=1)
        bad = (np.abs(norms - 1.0) > NORM_TOLERANCE) & (norms > NORM_TOLERANCE)
        if bad.any():
            row = int(np.argmax(bad))
            raise ImportRefused(f"{_what(m)}: row {start + row} has length {norms[row]:.4g} (refused: stored "
                                "embeddings are unit length, or zero for an empty document)")


def _verify(src: sqlite3.Connection, plan: _Plan, rng: np.random.Generator | None = None) -> None:
    """Set each matrix's `shared`: whether it may enter the shared cache. An embedding (and a token matrix) must
    verify against the claimed model on a random sample of its documents; a token matrix also needs the file's
    embedding of the same identity and texts, when there is one, to verify; a projection needs the file's embedding
    it was derived from to verify; token offsets follow their token matrix. A key no lookup computes is never
    shared."""
    rng = rng or np.random.default_rng(secrets.randbits(64))
    texts: dict[int, list[str]] = {}

    def corpus_texts(corpus: dict) -> list[str]:
        if corpus["id"] not in texts:
            texts[corpus["id"]] = [r[0] for r in _source_rows(lambda: src.execute(
                "SELECT text FROM documents WHERE corpus_id = ? ORDER BY idx", [corpus["id"]]))]
        return texts[corpus["id"]]

    def lookup(m: dict) -> bool:
        return m["key"].startswith(LOOKUP_PREFIXES)

    by_key = {m["key"]: m for m in plan.matrices}
    for m in plan.matrices:
        m["shared"], m["why"] = False, "" if lookup(m) else "its key is one no lookup computes"
    for m in plan.matrices:
        if m["kind"] != "embedding" or not lookup(m):
            continue
        rows = sample_rows(m["rows"], rng)
        corpus = m["corpus"]
        verdict = verify_embedding(m["params"], lambda c=corpus: corpus_texts(c), rows,
                                   [corpus_texts(corpus)[r] for r in rows], _file_rows(src, m, rows))
        m["shared"], m["why"] = verdict.verified, verdict.reason
    for m in plan.matrices:
        if m["kind"] != "tokens" or not lookup(m):
            continue
        embedding = by_key.get(_identity_key(m["params"], m["corpus"]["hash"], "embedding"))
        if embedding is not None and not embedding["shared"]:
            m["why"] = "its embedding did not verify"
        else:
            m["shared"], m["why"] = _verify_tokens(src, m, by_key[m["key"] + ":offsets"], rng, corpus_texts)
        by_key[m["key"] + ":offsets"].update(shared=m["shared"], why=m["why"])
    for m in plan.matrices:
        if m["kind"] == "projection" and lookup(m):
            source = m.get("source")
            m["shared"] = source is not None and source["shared"]
            m["why"] = "" if m["shared"] else "the embedding it was derived from is not a verified one of the file"


def _verify_tokens(src: sqlite3.Connection, m: dict[str, Any], offsets_m: dict[str, Any], rng: np.random.Generator,
                   corpus_texts: Callable[[dict], list[str]]) -> tuple[bool, str]:
    """Token rows of a sample of documents against the model's own token encoding."""
    offsets = np.concatenate([block[:, 0] for _, block in _blocks(src, offsets_m)])
    corpus = m["corpus"]
    rows = sample_rows(len(offsets) - 1, rng)
    stored = [_file_rows(src, m, np.arange(offsets[r], offsets[r + 1])) for r in rows]
    verdict = verify_tokens(m["params"], lambda: corpus_texts(corpus), rows, [corpus_texts(corpus)[r] for r in rows],
                            stored)
    return verdict.verified, verdict.reason


def _free_session_name(db: sqlite_utils.Database, name: str) -> str:
    """`unique_session_name`, kept within the length limit (a 200-character name gets a shortened base)."""
    candidate = unique_session_name(db, name)
    if len(candidate) <= MAX_NAME_LEN:
        return candidate
    taken = {r[0] for r in db.execute("SELECT name FROM sessions")}
    i = 2
    while True:
        suffix = f" ({i})"
        candidate = clean_name(name[:MAX_NAME_LEN - len(suffix)].rstrip() + suffix)
        if candidate not in taken:
            return candidate
        i += 1


def _source_rows(cursor_fn) -> Iterator[tuple]:
    """Rows from the foreign file; a read failure there is the file's fault: ImportRefused."""
    try:
        yield from _rows(cursor_fn())
    except sqlite3.DatabaseError as exc:
        raise ImportRefused(f"the file cannot be read: {_one_line(exc)}") from exc


def _copy_in(db: sqlite_utils.Database, src: sqlite3.Connection, plan: _Plan) -> str:
    try:
        with transaction(db) as conn:
            s = plan.session
            name = _free_session_name(db, s["name"])
            new_sid = conn.execute("INSERT INTO sessions (name, created_at, updated_at, notes) VALUES (?,?,?,?)",
                                   [name, s["created_at"], s["updated_at"], s["notes"]]).lastrowid
            ccols = CORPUS_COLS[2:]
            corpus_map: dict[int, int] = {}
            first_by_hash: dict[str, int] = {}
            for c in plan.corpora:
                values = {**c, "content_hash": c["hash"]}  # the hash recomputed from the documents, never the file's
                new_cid = conn.execute(
                    f"INSERT INTO corpora (session_id, {', '.join(ccols)}) VALUES (?{',?' * len(ccols)})",
                    [new_sid, *(values[k] for k in ccols)]).lastrowid
                corpus_map[c["id"]] = new_cid
                first_by_hash.setdefault(c["hash"], new_cid)
                conn.executemany(
                    "INSERT INTO documents (corpus_id, idx, doc_id, text, label, meta_json) VALUES (?,?,?,?,?,?)",
                    ((new_cid, *r) for r in _source_rows(lambda cid=c["id"]: src.execute(
                        "SELECT idx, doc_id, text, label, meta_json FROM documents WHERE corpus_id = ? "
                        "ORDER BY idx", [cid]))))
                # the rows now stored hash to the hash stored with them (re-read here: what was inserted is checked)
                stored = conn.execute("SELECT text FROM documents WHERE corpus_id = ? ORDER BY idx", [new_cid])
                if _content_hash(r[0] for r in _rows(stored)) != c["hash"]:
                    raise ImportRefused(f"corpus {c['name']!r} changed while importing")
            conn.executemany(
                "INSERT INTO runs (session_id, kind, params_json, metrics_json, details_json, created_at) "
                "VALUES (?,?,?,?,?,?)",
                ((new_sid, *r) for r in _source_rows(lambda: src.execute(
                    "SELECT kind, params_json, metrics_json, details_json, created_at FROM runs ORDER BY id"))))
            conn.executemany(
                "INSERT INTO bookmarks (session_id, corpus_id, idx, tag, note) VALUES (?,?,?,?,?)",
                ((new_sid, corpus_map[cid], idx, tag, note) for cid, idx, tag, note in _source_rows(
                    lambda: src.execute("SELECT corpus_id, idx, tag, note FROM bookmarks"))))
            conn.executemany("INSERT INTO label_names (corpus_id, label, name) VALUES (?,?,?)",
                             [(corpus_map[cid], label, name) for cid, names in plan.label_names.items()
                              for label, name in names.items()])
            for m in plan.matrices:
                _copy_matrix(conn, src, m, corpus_map[m["corpus"]["id"]])
        return name
    except sqlite3.IntegrityError as exc:
        raise ImportRefused(f"the file's rows do not fit this database: {_one_line(exc)}") from exc
    except sqlite3.DatabaseError as exc:
        raise StorageError(explain_sqlite_error(exc, _db_file(db))) from exc


def _copy_matrix(conn: sqlite3.Connection, src: sqlite3.Connection, m: dict[str, Any], corpus_id: int) -> None:
    """Insert one complete matrix under its recomputed key (shared when verified, else private to its corpus here)
    and its corpus's recomputed content hash, or keep the complete shared one we already hold under that key."""
    key = m["key"] if m["shared"] else private_key(m["key"], corpus_id)
    if not m["shared"]:   # a leftover of a deleted corpus of the same id is stale: never kept
        conn.execute("DELETE FROM matrices WHERE cache_key = ?", [key])
    m = {**m, "cache_key": key, "content_hash": m["corpus"]["hash"]}
    same = ("content_hash", "kind", "dtype", "rows", "cols")
    have = conn.execute(f"SELECT id, complete, {', '.join(same)} FROM matrices WHERE cache_key = ?",
                        [m["cache_key"]]).fetchone()
    if have is not None:
        if have[1] == 1:
            if tuple(have[2:]) != tuple(m[k] for k in same):
                raise ImportRefused(f"matrix {m['cache_key']!r} differs from the matrix of the same cache key "
                                    "in this database")
            return
        conn.execute("DELETE FROM matrices WHERE id = ?", [have[0]])  # an unfinished one: the file has it whole
    cols = MATRIX_COLS[1:]
    values = {**m, "corpus_id": corpus_id}
    new_mid = conn.execute(f"INSERT INTO matrices ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                           [values[c] for c in cols]).lastrowid
    itemsize, chunk_rows = DTYPES[m["dtype"]].itemsize, m["chunk_rows"]

    def chunks() -> Iterable[tuple]:
        for no, data in _source_rows(lambda: src.execute(
                "SELECT chunk_no, data FROM matrix_chunks WHERE matrix_id = ? ORDER BY chunk_no", [m["id"]])):
            want = min(chunk_rows, m["rows"] - no * chunk_rows) * m["cols"] * itemsize
            if not isinstance(data, bytes) or len(data) != want:  # re-checked: the bytes actually copied
                raise ImportRefused(f"matrix {m['cache_key']!r}: chunk {no} changed while importing")
            _check_values(m, no * chunk_rows, _decode(data, m))
            yield new_mid, no, data

    conn.executemany("INSERT INTO matrix_chunks (matrix_id, chunk_no, data) VALUES (?,?,?)", chunks())


def _db_file(db: sqlite_utils.Database) -> str | None:
    with contextlib.suppress(sqlite3.Error):
        for row in db.execute("PRAGMA database_list"):
            if row[1] == "main":
                return row[2] or None
    return None

