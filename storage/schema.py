"""The schema (DESIGN §2) and its migrations, keyed on `PRAGMA user_version`."""
from __future__ import annotations

import sqlite3

import sqlite_utils

from storage.errors import StorageError
from storage.locks import transaction

# Each entry moves the database from version i to i + 1. Never edit a released step: append one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        notes TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE corpora (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        source TEXT NOT NULL DEFAULT '',
        n_docs INTEGER NOT NULL,
        text_col TEXT,
        label_col TEXT,
        id_col TEXT,
        meta_cols TEXT NOT NULL DEFAULT '[]',
        n_skipped INTEGER NOT NULL DEFAULT 0,
        content_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (session_id, name)
    );
    CREATE INDEX corpora_hash ON corpora(content_hash);
    CREATE TABLE documents (
        corpus_id INTEGER NOT NULL REFERENCES corpora(id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        doc_id TEXT NOT NULL,
        text TEXT NOT NULL,
        label TEXT,
        meta_json TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (corpus_id, idx)
    );
    CREATE VIRTUAL TABLE documents_fts USING fts5(text, content='documents', content_rowid='rowid',
                                                  tokenize='unicode61 remove_diacritics 2');
    CREATE TRIGGER documents_ai AFTER INSERT ON documents BEGIN
        INSERT INTO documents_fts(rowid, text) VALUES (new.rowid, new.text);
    END;
    CREATE TRIGGER documents_ad AFTER DELETE ON documents BEGIN
        INSERT INTO documents_fts(documents_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    END;
    CREATE TRIGGER documents_au AFTER UPDATE OF text ON documents BEGIN
        INSERT INTO documents_fts(documents_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
        INSERT INTO documents_fts(rowid, text) VALUES (new.rowid, new.text);
    END;
    CREATE TABLE matrices (
        id INTEGER PRIMARY KEY,
        corpus_id INTEGER REFERENCES corpora(id) ON DELETE SET NULL,
        content_hash TEXT NOT NULL DEFAULT '',
        kind TEXT NOT NULL,
        model TEXT NOT NULL DEFAULT '',
        params_json TEXT NOT NULL DEFAULT '{}',
        dtype TEXT NOT NULL,
        rows INTEGER NOT NULL,
        cols INTEGER NOT NULL,
        chunk_rows INTEGER NOT NULL,
        complete INTEGER NOT NULL DEFAULT 0,
        cache_key TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL
    );
    CREATE INDEX matrices_hash ON matrices(content_hash);
    CREATE TABLE matrix_chunks (
        matrix_id INTEGER NOT NULL REFERENCES matrices(id) ON DELETE CASCADE,
        chunk_no INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (matrix_id, chunk_no)
    );
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        session_id INTEGER REFERENCES sessions(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        params_json TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL DEFAULT 'queued'
            CHECK (status IN ('queued','running','done','failed','cancelled','interrupted')),
        progress REAL NOT NULL DEFAULT 0,
        message TEXT NOT NULL DEFAULT '',
        started_at TEXT,
        finished_at TEXT,
        result_ref TEXT,
        owner TEXT,
        heartbeat_at REAL
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        params_json TEXT NOT NULL DEFAULT '{}',
        metrics_json TEXT NOT NULL DEFAULT '{}',
        details_json TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL
    );
    CREATE TABLE bookmarks (
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        corpus_id INTEGER NOT NULL REFERENCES corpora(id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        tag TEXT NOT NULL DEFAULT '',
        note TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (session_id, corpus_id, idx, tag)
    );
    """,
    # 2: names for a corpus's label values (AG News' "1" -> "World"), edited on the Atlas page.
    """
    CREATE TABLE label_names (
        corpus_id INTEGER NOT NULL REFERENCES corpora(id) ON DELETE CASCADE,
        label TEXT NOT NULL,
        name TEXT NOT NULL,
        PRIMARY KEY (corpus_id, label)
    );
    """,
    # 3: who is computing what (a cache key), so two processes asking for the same matrix share one computation.
    """
    CREATE TABLE leases (
        key TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        heartbeat_at REAL NOT NULL
    );
    """,
    # 4: relevance judgments (issue 25): a judge's grade of a document for a query of a corpus. The query is a
    # document (query_idx) or a typed text (query_text), never both; query_key names it stably ("doc:<idx>" or
    # "text:<sha256 of the text>", `storage.judgments.query_key`). Re-judging a pair replaces the row.
    """
    CREATE TABLE judgments (
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        corpus_id INTEGER NOT NULL REFERENCES corpora(id) ON DELETE CASCADE,
        query_key TEXT NOT NULL,
        query_idx INTEGER,
        query_text TEXT,
        doc_idx INTEGER NOT NULL,
        grade INTEGER NOT NULL CHECK (grade BETWEEN 0 AND 3),
        judge TEXT NOT NULL,
        judged_at TEXT NOT NULL,
        PRIMARY KEY (session_id, corpus_id, query_key, doc_idx, judge),
        CHECK ((query_idx IS NULL) <> (query_text IS NULL))
    );
    CREATE INDEX judgments_corpus ON judgments(corpus_id, query_key);
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)

# Tables and the columns each must have; import checks foreign files against this.
EXPECTED_COLUMNS: dict[str, set[str]] = {
    "sessions": {"id", "name", "created_at", "updated_at", "notes"},
    "corpora": {"id", "session_id", "name", "source", "n_docs", "text_col", "label_col", "id_col", "meta_cols",
                "n_skipped", "content_hash", "created_at"},
    "documents": {"corpus_id", "idx", "doc_id", "text", "label", "meta_json"},
    "matrices": {"id", "corpus_id", "content_hash", "kind", "model", "params_json", "dtype", "rows", "cols",
                 "chunk_rows", "complete", "cache_key", "created_at"},
    "matrix_chunks": {"matrix_id", "chunk_no", "data"},
    "jobs": {"id", "session_id", "kind", "params_json", "status", "progress", "message", "started_at",
             "finished_at", "result_ref", "owner", "heartbeat_at"},
    "runs": {"id", "session_id", "kind", "params_json", "metrics_json", "details_json", "created_at"},
    "bookmarks": {"session_id", "corpus_id", "idx", "tag", "note"},
}
# Version 3 added `leases`, which is never exported or imported. Version 4 added `judgments`, which a session file of
# version 4 must hold (`storage.transfer.judgment_rows`); older files have none.
JUDGMENT_COLUMNS = {"session_id", "corpus_id", "query_key", "query_idx", "query_text", "doc_idx", "grade", "judge",
                    "judged_at"}


def user_version(db: sqlite_utils.Database) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite_utils.Database) -> int:
    """Apply the missing migrations, each in its own transaction; return the new version."""
    version = user_version(db)
    if version > SCHEMA_VERSION:
        raise StorageError(f"the database has schema version {version}, newer than this EmbedLab "
                           f"({SCHEMA_VERSION}): upgrade EmbedLab")
    while version < SCHEMA_VERSION:
        with transaction(db) as conn:
            # Re-read inside the write lock: another process may have migrated meanwhile.
            version = user_version(db)
            if version >= SCHEMA_VERSION:
                break
            for statement in _split_statements(MIGRATIONS[version]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
        version = user_version(db)
    return version


def _split_statements(script: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies whole."""
    statements, buf = [], []
    for line in script.strip().splitlines():
        buf.append(line)
        candidate = "\n".join(buf).strip()
        if candidate.endswith(";") and _complete(candidate):
            statements.append(candidate)
            buf = []
    if "\n".join(buf).strip():
        statements.append("\n".join(buf).strip())
    return statements


def _complete(sql: str) -> bool:
    return sqlite3.complete_statement(sql)
