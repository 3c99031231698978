"""Corpora and their documents, with FTS5 keyword search."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import sqlite_utils

from storage.content import content_hash
from storage.db import StorageError, now, transaction
from storage.matrices import delete_orphan_matrices
from storage.sessions import clean_name, ensure_session, with_free_suffix


class CorpusLike(Protocol):
    name: str
    source: str
    texts: Sequence[str]
    doc_ids: Sequence[str]
    labels: Sequence[str | None] | None
    metas: Sequence[dict[str, Any]]
    text_col: str | None
    label_col: str | None
    id_col: str | None
    meta_cols: Sequence[str]
    n_skipped: int
    content_hash: str


@dataclass(frozen=True)
class CorpusInfo:
    id: int
    session_id: int
    name: str
    source: str
    n_docs: int
    text_col: str | None
    label_col: str | None
    id_col: str | None
    meta_cols: list[str]
    n_skipped: int
    content_hash: str
    created_at: str


_COLS = "id, session_id, name, source, n_docs, text_col, label_col, id_col, meta_cols, n_skipped, content_hash, " \
        "created_at"


def _info(r: Sequence) -> CorpusInfo:
    return CorpusInfo(id=r[0], session_id=r[1], name=r[2], source=r[3], n_docs=r[4], text_col=r[5], label_col=r[6],
                      id_col=r[7], meta_cols=json.loads(r[8] or "[]"), n_skipped=r[9], content_hash=r[10],
                      created_at=r[11])


def unique_corpus_name(db: sqlite_utils.Database, session_id: int, name: str) -> str:
    taken = {r[0] for r in db.execute("SELECT name FROM corpora WHERE session_id = ?", [session_id])}
    return with_free_suffix(clean_name(name, "corpus"), taken)


def save_corpus(db: sqlite_utils.Database, session_id: int, corpus: CorpusLike, *, name: str | None = None,
                replace: bool = False) -> CorpusInfo:
    """Store a validated corpus and its documents in one transaction.

    A name in use gets a suffix unless `replace` is set, in which case the old corpus is replaced. A corpus without
    documents, or whose lists disagree in length, is refused (StorageError) and nothing is written.
    """
    wanted = clean_name(name or corpus.name, "corpus")
    n = len(corpus.texts)
    if n == 0:
        raise StorageError(f"corpus {wanted!r} has no documents: nothing was stored")
    metas = list(corpus.metas) or [{} for _ in range(n)]
    if len(corpus.doc_ids) != n or len(metas) != n or (corpus.labels is not None and len(corpus.labels) != n):
        raise StorageError(f"corpus {wanted!r}: its texts, ids, labels and metadata differ in length")
    try:
        return _save_corpus(db, session_id, corpus, wanted, replace, metas)
    except UnicodeEncodeError as exc:   # a lone surrogate cannot be stored as UTF-8 text
        raise StorageError(f"corpus {wanted!r} holds text that is not valid Unicode ({exc.reason}): "
                           "nothing was stored") from None


def save_corpus_in_session(db: sqlite_utils.Database, session: str, corpus: CorpusLike, *, name: str | None = None,
                           replace: bool = False) -> CorpusInfo:
    """`save_corpus` into the session named `session`, which is created when missing, in the same transaction: a
    refused corpus leaves no new, empty session behind."""
    clean_name(session)
    clean_name(name or corpus.name, "corpus")
    with transaction(db):
        return save_corpus(db, ensure_session(db, session), corpus, name=name, replace=replace)


def _save_corpus(db: sqlite_utils.Database, session_id: int, corpus: CorpusLike, wanted: str,
                 replace: bool, metas: Sequence[dict[str, Any]]) -> CorpusInfo:
    # The content hash is always computed here, from the very texts stored: a cache key derived from it can only
    # ever describe these texts, whatever the caller's object claims.
    digest = content_hash(list(corpus.texts))
    with transaction(db) as conn:
        if replace:
            conn.execute("DELETE FROM corpora WHERE session_id = ? AND name = ?", [session_id, wanted])
        final = unique_corpus_name(db, session_id, wanted)
        cid = conn.execute(
            "INSERT INTO corpora (session_id, name, source, n_docs, text_col, label_col, id_col, meta_cols, "
            "n_skipped, content_hash, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [session_id, final, corpus.source, len(corpus.texts), corpus.text_col, corpus.label_col, corpus.id_col,
             json.dumps(list(corpus.meta_cols)), corpus.n_skipped, digest, now()]).lastrowid
        labels = corpus.labels if corpus.labels is not None else [None] * len(corpus.texts)
        conn.executemany(
            "INSERT INTO documents (corpus_id, idx, doc_id, text, label, meta_json) VALUES (?,?,?,?,?,?)",
            ((cid, i, d, t, lab, json.dumps(m, ensure_ascii=False, default=str))
             for i, (d, t, lab, m) in enumerate(zip(corpus.doc_ids, corpus.texts, labels, metas))))
        conn.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", [now(), session_id])
    return get_corpus(db, cid)


def get_corpus(db: sqlite_utils.Database, corpus_id: int) -> CorpusInfo:
    r = db.execute(f"SELECT {_COLS} FROM corpora WHERE id = ?", [corpus_id]).fetchone()
    if r is None:
        raise StorageError(f"no corpus {corpus_id}")
    return _info(r)


def find_corpus(db: sqlite_utils.Database, session_id: int, name: str) -> CorpusInfo:
    r = db.execute(f"SELECT {_COLS} FROM corpora WHERE session_id = ? AND name = ?", [session_id, name]).fetchone()
    if r is None:
        names = [x[0] for x in db.execute("SELECT name FROM corpora WHERE session_id = ? ORDER BY name", [session_id])]
        hint = f" (this session has: {', '.join(names)})" if names else " (this session has no corpora)"
        raise StorageError(f"no corpus named {name!r}{hint}")
    return _info(r)


def list_corpora(db: sqlite_utils.Database, session_id: int) -> list[CorpusInfo]:
    return [_info(r) for r in db.execute(f"SELECT {_COLS} FROM corpora WHERE session_id = ? ORDER BY name",
                                         [session_id])]


def delete_corpus(db: sqlite_utils.Database, corpus_id: int) -> None:
    with transaction(db) as conn:
        hashes = {r[0] for r in conn.execute("SELECT content_hash FROM corpora WHERE id = ?", [corpus_id])}
        conn.execute("DELETE FROM corpora WHERE id = ?", [corpus_id])
        delete_orphan_matrices(db, hashes)


def load_texts(db: sqlite_utils.Database, corpus_id: int) -> list[str]:
    return [r[0] for r in db.execute("SELECT text FROM documents WHERE corpus_id = ? ORDER BY idx", [corpus_id])]


def load_documents(db: sqlite_utils.Database, corpus_id: int, idxs: Sequence[int] | None = None) -> list[dict]:
    """Documents as dicts (idx, doc_id, text, label, meta), in index order or in the order of `idxs`."""
    if idxs is None:
        rows = db.execute("SELECT idx, doc_id, text, label, meta_json FROM documents WHERE corpus_id = ? "
                          "ORDER BY idx", [corpus_id]).fetchall()
    else:
        wanted = [int(i) for i in idxs]
        found: dict[int, tuple] = {}
        for start in range(0, len(wanted), 500):
            part = wanted[start:start + 500]
            q = ",".join("?" * len(part))
            for r in db.execute(f"SELECT idx, doc_id, text, label, meta_json FROM documents "
                                f"WHERE corpus_id = ? AND idx IN ({q})", [corpus_id, *part]):
                found[r[0]] = r
        rows = [found[i] for i in wanted if i in found]
    return [dict(idx=r[0], doc_id=r[1], text=r[2], label=r[3], meta=json.loads(r[4] or "{}")) for r in rows]


def load_labels(db: sqlite_utils.Database, corpus_id: int) -> list[str | None]:
    return [r[0] for r in db.execute("SELECT label FROM documents WHERE corpus_id = ? ORDER BY idx", [corpus_id])]


def fts_query(text: str) -> str:
    """A safe FTS5 MATCH expression: each word quoted, so user input is never FTS syntax."""
    words = [w for w in text.replace('"', " ").split() if w]
    return " ".join(f'"{w}"' for w in words)


def keyword_search(db: sqlite_utils.Database, corpus_id: int, query: str, limit: int = 50) -> list[dict]:
    """FTS5 search: idx, doc_id, label, bm25 rank and a snippet with [matches] marked by \\x02...\\x03."""
    expr = fts_query(query)
    if not expr:
        return []
    rows = db.execute(
        "SELECT d.idx, d.doc_id, d.label, bm25(documents_fts) AS rank, "
        "snippet(documents_fts, 0, char(2), char(3), '…', 24) "
        "FROM documents_fts JOIN documents d ON d.rowid = documents_fts.rowid "
        "WHERE documents_fts MATCH ? AND d.corpus_id = ? ORDER BY rank LIMIT ?", [expr, corpus_id, limit]).fetchall()
    return [dict(idx=r[0], doc_id=r[1], label=r[2], score=-r[3], snippet=r[4]) for r in rows]
