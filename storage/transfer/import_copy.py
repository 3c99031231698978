"""Copying a validated file into our database: one transaction, plain row values inserted with parameters (no SQL
text, trigger or view of the file is ever executed or copied); each matrix under its recomputed key, shared when
verified, else private to its corpus."""
from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

import sqlite_utils

from storage.cache_keys import private_key
from storage.db import StorageError, explain_sqlite_error, transaction
from storage.matrices import DTYPES
from storage.sessions import MAX_NAME_LEN, clean_name, unique_session_name
from storage.transfer.file_format import (CORPUS_COLS, JUDGMENT_COLS, MATRIX_COLS, ImportRefused, db_file, one_line,
                                          rows_of, source_rows)
from storage.transfer.validation import Plan, check_values, content_hash_of, decode_block


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


def copy_in(db: sqlite_utils.Database, src: sqlite3.Connection, plan: Plan) -> str:
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
                    ((new_cid, *r) for r in source_rows(lambda cid=c["id"]: src.execute(
                        "SELECT idx, doc_id, text, label, meta_json FROM documents WHERE corpus_id = ? "
                        "ORDER BY idx", [cid]))))
                # the rows now stored hash to the hash stored with them (re-read here: what was inserted is checked)
                stored = conn.execute("SELECT text FROM documents WHERE corpus_id = ? ORDER BY idx", [new_cid])
                if content_hash_of(r[0] for r in rows_of(stored)) != c["hash"]:
                    raise ImportRefused(f"corpus {c['name']!r} changed while importing")
            conn.executemany(
                "INSERT INTO runs (session_id, kind, params_json, metrics_json, details_json, created_at) "
                "VALUES (?,?,?,?,?,?)",
                ((new_sid, *r) for r in source_rows(lambda: src.execute(
                    "SELECT kind, params_json, metrics_json, details_json, created_at FROM runs ORDER BY id"))))
            conn.executemany(
                "INSERT INTO bookmarks (session_id, corpus_id, idx, tag, note) VALUES (?,?,?,?,?)",
                ((new_sid, corpus_map[cid], idx, tag, note) for cid, idx, tag, note in source_rows(
                    lambda: src.execute("SELECT corpus_id, idx, tag, note FROM bookmarks"))))
            conn.executemany("INSERT INTO label_names (corpus_id, label, name) VALUES (?,?,?)",
                             [(corpus_map[cid], label, name) for cid, names in plan.label_names.items()
                              for label, name in names.items()])
            conn.executemany(f"INSERT INTO judgments ({', '.join(JUDGMENT_COLS)}) VALUES "
                             f"({', '.join('?' * len(JUDGMENT_COLS))})",
                             [(new_sid, corpus_map[r[1]], *r[2:]) for r in plan.judgments])
            for m in plan.matrices:
                _copy_matrix(conn, src, m, corpus_map[m["corpus"]["id"]])
        return name
    except sqlite3.IntegrityError as exc:
        raise ImportRefused(f"the file's rows do not fit this database: {one_line(exc)}") from exc
    except sqlite3.DatabaseError as exc:
        raise StorageError(explain_sqlite_error(exc, db_file(db))) from exc


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
        for no, data in source_rows(lambda: src.execute(
                "SELECT chunk_no, data FROM matrix_chunks WHERE matrix_id = ? ORDER BY chunk_no", [m["id"]])):
            want = min(chunk_rows, m["rows"] - no * chunk_rows) * m["cols"] * itemsize
            if not isinstance(data, bytes) or len(data) != want:  # re-checked: the bytes actually copied
                raise ImportRefused(f"matrix {m['cache_key']!r}: chunk {no} changed while importing")
            check_values(m, no * chunk_rows, decode_block(data, m))
            yield new_mid, no, data

    conn.executemany("INSERT INTO matrix_chunks (matrix_id, chunk_no, data) VALUES (?,?,?)", chunks())
