"""Export: one session to a standalone `.sqlite` file with our own schema (rows copied, ids renumbered), left as one
self-contained file (journal mode DELETE, no `-wal`) and moved into place atomically."""
from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import sqlite_utils

from storage.cache_keys import shared_key_of
from storage.db import StorageError, connect, explain_sqlite_error, transaction
from storage.matrices import session_matrices
from storage.output_files import atomic_output, check_output_path
from storage.sessions import require_session
from storage.transfer.file_format import CORPUS_COLS, JUDGMENT_COLS, MATRIX_COLS, db_file, rows_of


def export_session(db: sqlite_utils.Database, name: str, out_path: str | os.PathLike, *,
                   overwrite: bool = False) -> Path:
    """Write session `name` (its corpora, documents, runs, bookmarks, judgments and the complete matrices computed
    for its corpora' content) to a standalone `.sqlite` file; return its path. An existing file is kept unless
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
    source = db_file(db)
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
                            ((new_cid, *r) for r in rows_of(src.execute(
                                "SELECT idx, doc_id, text, label, meta_json FROM documents WHERE corpus_id = ? "
                                "ORDER BY idx", [row[0]]))))
        out.executemany("INSERT INTO runs (session_id, kind, params_json, metrics_json, details_json, created_at) "
                        "VALUES (?,?,?,?,?,?)",
                        ((new_sid, *r) for r in rows_of(src.execute(
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
        jcols = ", ".join(JUDGMENT_COLS[1:])
        judged = src.execute(f"SELECT {jcols} FROM judgments WHERE session_id = ? ORDER BY rowid", [sid]).fetchall()
        out.executemany(f"INSERT INTO judgments (session_id, {jcols}) VALUES (?{',?' * (len(JUDGMENT_COLS) - 1)})",
                        [(new_sid, corpus_map[r[0]], *r[1:]) for r in judged if r[0] in corpus_map])
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
                            ((new_mid, *r) for r in rows_of(src.execute(
                                "SELECT chunk_no, data FROM matrix_chunks WHERE matrix_id = ? ORDER BY chunk_no",
                                [meta.id]))))
