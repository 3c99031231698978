"""Sessions: named workspaces holding corpora, runs and bookmarks."""
from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass

import sqlite_utils

from storage.db import StorageError, now, transaction
from storage.matrices import delete_orphan_matrices

MAX_NAME_LEN = 200


class InvalidName(StorageError):
    """A session or corpus name that cannot be used."""


def clean_name(name: str, what: str = "session") -> str:
    """Validate a user-given name: non-empty, bounded, no control characters. Quotes, SQL and `../` are fine:
    names are only ever stored as data, never used as paths or in SQL text."""
    if not isinstance(name, str):
        raise InvalidName(f"{what} name must be text")
    name = unicodedata.normalize("NFC", name).strip()
    if not name:
        raise InvalidName(f"{what} name is empty")
    if len(name) > MAX_NAME_LEN:
        raise InvalidName(f"{what} name is longer than {MAX_NAME_LEN} characters")
    bad = [c for c in name if unicodedata.category(c) in ("Cc", "Cs")]
    if bad:
        raise InvalidName(f"{what} name contains a control character ({ascii(bad[0])})")
    return name


@dataclass(frozen=True)
class SessionSummary:
    name: str
    corpora: int
    documents: int
    embeddings: int
    runs: int
    created_at: str = ""

    def line(self) -> str:
        """The `sessions list` line: name and counts, nothing that differs between copies."""
        return (f"{self.name}\tcorpora={self.corpora}\tdocuments={self.documents}"
                f"\tembeddings={self.embeddings}\truns={self.runs}")


def get_session_id(db: sqlite_utils.Database, name: str) -> int | None:
    row = db.execute("SELECT id FROM sessions WHERE name = ?", [clean_name(name)]).fetchone()
    return row[0] if row else None


def require_session(db: sqlite_utils.Database, name: str) -> int:
    sid = get_session_id(db, name)
    if sid is None:
        raise StorageError(f"no session named {name!r}")
    return sid


def ensure_session(db: sqlite_utils.Database, name: str) -> int:
    """The id of session `name`, created if it does not exist yet."""
    name = clean_name(name)
    with transaction(db) as conn:
        row = conn.execute("SELECT id FROM sessions WHERE name = ?", [name]).fetchone()
        if row:
            return row[0]
        ts = now()
        return conn.execute("INSERT INTO sessions (name, created_at, updated_at) VALUES (?,?,?)",
                            [name, ts, ts]).lastrowid


def create_session(db: sqlite_utils.Database, name: str) -> int:
    """Create a new session; refuse a name in use."""
    name = clean_name(name)
    with transaction(db):
        if get_session_id(db, name) is not None:
            raise InvalidName(f"a session named {name!r} exists already")
        return ensure_session(db, name)


def with_free_suffix(name: str, taken: set[str]) -> str:
    """`name`, or `name (2)`, `name (3)`, ... whichever is free, shortened to stay within the length limit."""
    if name not in taken:
        return name
    i = 2
    while True:
        suffix = f" ({i})"
        candidate = name[:MAX_NAME_LEN - len(suffix)].rstrip() + suffix
        if candidate not in taken:
            return candidate
        i += 1


def unique_session_name(db: sqlite_utils.Database, name: str) -> str:
    """`name`, or `name (2)`, `name (3)`, ... whichever is free."""
    return with_free_suffix(clean_name(name), {r[0] for r in db.execute("SELECT name FROM sessions")})


def list_sessions(db: sqlite_utils.Database) -> list[SessionSummary]:
    """Every session with its counts, sorted by name."""
    sql = """
    SELECT s.name, s.created_at,
      (SELECT COUNT(*) FROM corpora c WHERE c.session_id = s.id),
      (SELECT COALESCE(SUM(c.n_docs), 0) FROM corpora c WHERE c.session_id = s.id),
      (SELECT COUNT(*) FROM corpora c JOIN matrices m ON m.content_hash = c.content_hash
         WHERE c.session_id = s.id AND m.kind = 'embedding' AND m.complete = 1
           AND CASE WHEN m.cache_key LIKE 'private:%' THEN m.corpus_id = c.id  -- what the corpus sees (matrices.py)
                    ELSE NOT EXISTS (SELECT 1 FROM matrices p WHERE p.corpus_id = c.id
                                     AND p.cache_key = 'private:' || c.id || ':' || m.cache_key) END),
      (SELECT COUNT(*) FROM runs r WHERE r.session_id = s.id)
    FROM sessions s ORDER BY s.name COLLATE BINARY
    """
    return [SessionSummary(name=r[0], created_at=r[1], corpora=r[2], documents=r[3], embeddings=r[4], runs=r[5])
            for r in db.execute(sql)]


def rename_session(db: sqlite_utils.Database, old: str, new: str) -> None:
    new = clean_name(new)
    with transaction(db) as conn:
        sid = require_session(db, old)
        if get_session_id(db, new) not in (None, sid):
            raise InvalidName(f"a session named {new!r} exists already")
        conn.execute("UPDATE sessions SET name = ?, updated_at = ? WHERE id = ?", [new, now(), sid])


def set_notes(db: sqlite_utils.Database, name: str, notes: str) -> None:
    with transaction(db) as conn:
        conn.execute("UPDATE sessions SET notes = ?, updated_at = ? WHERE id = ?",
                     [notes, now(), require_session(db, name)])


def get_notes(db: sqlite_utils.Database, name: str) -> str:
    return db.execute("SELECT notes FROM sessions WHERE id = ?", [require_session(db, name)]).fetchone()[0]


def delete_session(db: sqlite_utils.Database, name: str) -> None:
    """Delete a session with its corpora, runs and bookmarks; matrices no other corpus uses go too."""
    with transaction(db) as conn:
        sid = require_session(db, name)
        hashes = {r[0] for r in conn.execute("SELECT content_hash FROM corpora WHERE session_id = ?", [sid])}
        conn.execute("DELETE FROM sessions WHERE id = ?", [sid])
        delete_orphan_matrices(db, hashes)


def duplicate_session(db: sqlite_utils.Database, name: str, new_name: str | None = None) -> str:
    """Copy a session (corpora, documents, runs, bookmarks, judgments; matrices are shared by content)."""
    with transaction(db) as conn:
        sid = require_session(db, name)
        target = unique_session_name(db, new_name or f"{name[:MAX_NAME_LEN - 7].rstrip()} (copy)")
        ts = now()
        notes = conn.execute("SELECT notes FROM sessions WHERE id = ?", [sid]).fetchone()[0]
        new_sid = conn.execute("INSERT INTO sessions (name, created_at, updated_at, notes) VALUES (?,?,?,?)",
                               [target, ts, ts, notes]).lastrowid
        corpus_map = {}
        for (cid,) in conn.execute("SELECT id FROM corpora WHERE session_id = ?", [sid]).fetchall():
            new_cid = conn.execute(
                "INSERT INTO corpora (session_id, name, source, n_docs, text_col, label_col, id_col, meta_cols, "
                "n_skipped, content_hash, created_at) SELECT ?, name, source, n_docs, text_col, label_col, id_col, "
                "meta_cols, n_skipped, content_hash, created_at FROM corpora WHERE id = ?", [new_sid, cid]).lastrowid
            conn.execute("INSERT INTO documents (corpus_id, idx, doc_id, text, label, meta_json) "
                         "SELECT ?, idx, doc_id, text, label, meta_json FROM documents WHERE corpus_id = ? "
                         "ORDER BY idx", [new_cid, cid])
            corpus_map[cid] = new_cid
        conn.execute("INSERT INTO runs (session_id, kind, params_json, metrics_json, details_json, created_at) "
                     "SELECT ?, kind, params_json, metrics_json, details_json, created_at FROM runs "
                     "WHERE session_id = ? ORDER BY id", [new_sid, sid])
        for old_cid, new_cid in corpus_map.items():
            conn.execute("INSERT INTO bookmarks (session_id, corpus_id, idx, tag, note) "
                         "SELECT ?, ?, idx, tag, note FROM bookmarks WHERE session_id = ? AND corpus_id = ?",
                         [new_sid, new_cid, sid, old_cid])
            conn.execute("INSERT INTO judgments (session_id, corpus_id, query_key, query_idx, query_text, doc_idx, "
                         "grade, judge, judged_at) SELECT ?, ?, query_key, query_idx, query_text, doc_idx, grade, "
                         "judge, judged_at FROM judgments WHERE session_id = ? AND corpus_id = ? ORDER BY rowid",
                         [new_sid, new_cid, sid, old_cid])
    return target


def save_run(db: sqlite_utils.Database, session_id: int, kind: str, params: dict, metrics: dict,
             details: dict | None = None) -> int:
    """Keep a retrieval or OOD comparison in the session's history."""
    with transaction(db) as conn:
        return conn.execute(
            "INSERT INTO runs (session_id, kind, params_json, metrics_json, details_json, created_at) "
            "VALUES (?,?,?,?,?,?)",
            [session_id, kind, json.dumps(params, default=str), json.dumps(metrics, default=float),
             json.dumps(details or {}, default=float), now()]).lastrowid


def list_runs(db: sqlite_utils.Database, session_id: int, kind: str | None = None) -> list[dict]:
    sql = "SELECT id, kind, params_json, metrics_json, created_at FROM runs WHERE session_id = ?"
    args: list = [session_id]
    if kind:
        sql += " AND kind = ?"
        args.append(kind)
    return [dict(id=r[0], kind=r[1], params=json.loads(r[2]), metrics=json.loads(r[3]), created_at=r[4])
            for r in db.execute(sql + " ORDER BY id DESC", args)]


def load_run(db: sqlite_utils.Database, run_id: int) -> dict:
    r = db.execute("SELECT id, session_id, kind, params_json, metrics_json, details_json, created_at FROM runs "
                   "WHERE id = ?", [run_id]).fetchone()
    if r is None:
        raise StorageError(f"no run {run_id}")
    return dict(id=r[0], session_id=r[1], kind=r[2], params=json.loads(r[3]), metrics=json.loads(r[4]),
                details=json.loads(r[5]), created_at=r[6])


def session_fingerprint(db: sqlite_utils.Database, name: str) -> str:
    """A short hash of everything an export of session `name` holds (its row, corpora, runs, bookmarks and the
    complete matrices of its corpora' content): equal fingerprints, equal exports. Cheap: ids and counts only."""
    sid = require_session(db, name)
    parts = [
        db.execute("SELECT name, updated_at, length(notes), notes FROM sessions WHERE id = ?", [sid]).fetchall(),
        db.execute("SELECT id, name, n_docs, content_hash, text_col, label_col FROM corpora WHERE session_id = ? "
                   "ORDER BY id", [sid]).fetchall(),
        db.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM runs WHERE session_id = ?", [sid]).fetchall(),
        db.execute("SELECT corpus_id, idx, tag, note FROM bookmarks WHERE session_id = ? "
                   "ORDER BY corpus_id, idx, tag", [sid]).fetchall(),
        db.execute("SELECT id, cache_key FROM matrices WHERE complete = 1 AND content_hash IN "
                   "(SELECT content_hash FROM corpora WHERE session_id = ?) ORDER BY id", [sid]).fetchall(),
    ]
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'label_names'").fetchone():
        parts.append(db.execute("SELECT corpus_id, label, name FROM label_names WHERE corpus_id IN "
                                "(SELECT id FROM corpora WHERE session_id = ?) ORDER BY corpus_id, label",
                                [sid]).fetchall())
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'judgments'").fetchone():
        parts.append(db.execute("SELECT corpus_id, query_key, doc_idx, judge, grade FROM judgments "
                                "WHERE session_id = ? ORDER BY rowid", [sid]).fetchall())
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]
