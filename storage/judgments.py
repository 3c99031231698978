"""Relevance judgments (schema version 4): a judge's grade of a document of a corpus for a query, kept per session.

A query is a document of the corpus (its index, "doc:<idx>") or a typed text ("text:<sha256 of the text>"); see
`QueryRef`. Grades are TREC's 0..3 (the app records 2 relevant, 1 partly relevant, 0 not relevant; an import may
bring 3). One row per (session, corpus, query, document, judge): judging a pair again replaces the grade.
Everything here checks what it stores (grade, indices within the corpus, judge name, query text); the engine's
`embedlab.judgments` is the way in for the UI and the CLI.
"""
from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from storage.db import now, transaction
from storage.errors import InputError

MIN_GRADE, MAX_GRADE = 0, 3         # TREC's graded relevance
MAX_JUDGE_LEN = 64                  # characters of a judge's name
MAX_QUERY_CHARS = 10_000            # characters of a typed query
_COLS = "session_id, corpus_id, query_key, query_idx, query_text, doc_idx, grade, judge, judged_at"


@dataclass(frozen=True)
class QueryRef:
    """A query of a corpus: a document of it (`idx`) or a typed text (`text`), exactly one of them."""
    idx: int | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        if (self.idx is None) == (self.text is None):
            raise InputError("a query is a document (its index) or a typed text, exactly one of them")

    @classmethod
    def document(cls, idx: int) -> QueryRef:
        return cls(idx=int(idx))

    @classmethod
    def typed(cls, text: str) -> QueryRef:
        """A typed query; its text is stripped, NFC-normalised and bounded (InputError when empty or too long)."""
        return cls(text=clean_query_text(text))

    @property
    def is_document(self) -> bool:
        return self.idx is not None

    @property
    def key(self) -> str:
        """The stable key stored with every judgment of this query."""
        return query_key(self.idx, self.text)


def query_key(idx: int | None, text: str | None) -> str:
    """"doc:<idx>" for a document query, "text:<first 32 hex digits of sha256(text)>" for a typed one."""
    if idx is not None:
        return f"doc:{int(idx)}"
    return "text:" + hashlib.sha256(str(text).encode("utf-8")).hexdigest()[:32]


def clean_query_text(text: Any) -> str:
    """A typed query as stored: stripped, NFC-normalised, 1..MAX_QUERY_CHARS characters, no NUL."""
    if not isinstance(text, str):
        raise InputError("a typed query must be text")
    text = unicodedata.normalize("NFC", text).strip()
    if not text:
        raise InputError("the query is empty")
    if len(text) > MAX_QUERY_CHARS:
        raise InputError(f"the query is longer than {MAX_QUERY_CHARS:,} characters")
    if "\x00" in text:
        raise InputError("the query contains a NUL character")
    return text


def clean_judge(name: Any) -> str:
    """A judge's name as stored: stripped, NFC-normalised, 1..MAX_JUDGE_LEN characters, no control characters."""
    if not isinstance(name, str):
        raise InputError("a judge's name must be text")
    name = unicodedata.normalize("NFC", name).strip()
    if not name:
        raise InputError("the judge's name is empty")
    if len(name) > MAX_JUDGE_LEN:
        raise InputError(f"the judge's name is longer than {MAX_JUDGE_LEN} characters")
    bad = [c for c in name if unicodedata.category(c) in ("Cc", "Cs")]
    if bad:
        raise InputError(f"the judge's name contains a control character ({bad[0]!a})")
    return name


def check_grade(grade: Any) -> int:
    """A grade as stored: a whole number in 0..3 (InputError otherwise; True/False are not grades)."""
    if isinstance(grade, bool):
        raise InputError(f"a grade is a whole number from {MIN_GRADE} to {MAX_GRADE}, got {grade!r}")
    try:
        value = int(grade)
        whole = value == float(grade)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"a grade is a whole number from {MIN_GRADE} to {MAX_GRADE}, got {grade!r}") from None
    if not whole or not MIN_GRADE <= value <= MAX_GRADE:
        raise InputError(f"a grade is a whole number from {MIN_GRADE} to {MAX_GRADE}, got {grade!r}")
    return value


@dataclass(frozen=True)
class JudgmentRow:
    """One stored judgment."""
    session_id: int
    corpus_id: int
    query: QueryRef
    doc_idx: int
    grade: int
    judge: str
    judged_at: str

    @property
    def pair(self) -> tuple[str, int]:
        """(query key, document index): what two judges can share."""
        return self.query.key, self.doc_idx


def _row(r: Sequence) -> JudgmentRow:
    return JudgmentRow(session_id=int(r[0]), corpus_id=int(r[1]), query=QueryRef(idx=r[3], text=r[4]),
                       doc_idx=int(r[5]), grade=int(r[6]), judge=str(r[7]), judged_at=str(r[8]))


def _check_target(db: sqlite_utils.Database, session_id: int, corpus_id: int) -> int:
    """The corpus's document count, after checking it belongs to the session."""
    row = db.execute("SELECT session_id, n_docs FROM corpora WHERE id = ?", [int(corpus_id)]).fetchone()
    if row is None:
        raise InputError(f"no corpus {corpus_id}")
    if int(row[0]) != int(session_id):
        raise InputError(f"corpus {corpus_id} belongs to another session")
    return int(row[1])


def _check_idx(idx: Any, n_docs: int, what: str) -> int:
    if isinstance(idx, bool):
        raise InputError(f"the {what} index must be a whole number, got {idx!r}")
    try:
        value = int(idx)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"the {what} index must be a whole number, got {idx!r}") from None
    if not 0 <= value < n_docs:
        raise InputError(f"the {what} index {value} is outside the corpus (0..{n_docs - 1})")
    return value


@dataclass(frozen=True)
class NewJudgment:
    """A judgment to store (`save_judgments` checks every field)."""
    query: QueryRef
    doc_idx: int
    grade: int
    judge: str


def save_judgments(db: sqlite_utils.Database, session_id: int, corpus_id: int, items: Iterable[NewJudgment], *,
                   judged_at: str | None = None) -> int:
    """Store judgments of one corpus in one transaction (a pair judged again by the same judge gets the new grade);
    every field is checked first, and a bad one stores nothing (InputError). Returns how many were written."""
    n_docs = _check_target(db, session_id, corpus_id)
    at = judged_at or now()
    rows = []
    for item in items:
        query = item.query
        if query.idx is not None:
            q_idx, q_text = _check_idx(query.idx, n_docs, "query document"), None
        else:
            q_idx, q_text = None, clean_query_text(query.text)
        rows.append((int(session_id), int(corpus_id), query_key(q_idx, q_text), q_idx, q_text,
                     _check_idx(item.doc_idx, n_docs, "document"), check_grade(item.grade), clean_judge(item.judge),
                     at))
    with transaction(db) as conn:
        conn.executemany(f"INSERT INTO judgments ({_COLS}) VALUES (?,?,?,?,?,?,?,?,?) "
                         "ON CONFLICT (session_id, corpus_id, query_key, doc_idx, judge) DO UPDATE SET "
                         "grade = excluded.grade, judged_at = excluded.judged_at", rows)
        if rows:
            conn.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", [at, int(session_id)])
    return len(rows)


def delete_judgment(db: sqlite_utils.Database, session_id: int, corpus_id: int, query: QueryRef, doc_idx: int,
                    judge: str) -> bool:
    """Remove one judge's judgment of a pair; whether there was one."""
    with transaction(db) as conn:
        cur = conn.execute("DELETE FROM judgments WHERE session_id = ? AND corpus_id = ? AND query_key = ? "
                           "AND doc_idx = ? AND judge = ?",
                           [int(session_id), int(corpus_id), query.key, int(doc_idx), clean_judge(judge)])
        return cur.rowcount > 0


def has_judgments(db: sqlite_utils.Database) -> bool:
    """Whether the database has the judgments table (a read-only database of an older version, never migrated,
    has none: it reads as holding no judgments)."""
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'judgments'").fetchone() is not None


def load_judgments(db: sqlite_utils.Database, session_id: int, corpus_id: int | None = None, *,
                   judges: Sequence[str] | None = None, query: QueryRef | None = None,
                   doc_idxs: Sequence[int] | None = None) -> list[JudgmentRow]:
    """The session's judgments (of one corpus, some judges, one query, some documents) in the order they were
    first made (judging a pair again keeps its place)."""
    if not has_judgments(db):
        return []
    sql = f"SELECT {_COLS} FROM judgments WHERE session_id = ?"
    args: list[Any] = [int(session_id)]
    if corpus_id is not None:
        sql += " AND corpus_id = ?"
        args.append(int(corpus_id))
    if judges is not None:
        names = [clean_judge(j) for j in judges]
        sql += f" AND judge IN ({', '.join('?' * len(names))})"
        args += names
    if query is not None:
        sql += " AND query_key = ?"
        args.append(query.key)
    if doc_idxs is not None:
        idxs = [int(i) for i in doc_idxs]
        sql += f" AND doc_idx IN ({', '.join('?' * len(idxs))})"
        args += idxs
    return [_row(r) for r in db.execute(sql + " ORDER BY rowid", args)]


def judge_names(db: sqlite_utils.Database, session_id: int, corpus_id: int | None = None) -> list[str]:
    """The judges of a session (of one corpus), sorted."""
    if not has_judgments(db):
        return []
    sql, args = "SELECT DISTINCT judge FROM judgments WHERE session_id = ?", [int(session_id)]
    if corpus_id is not None:
        sql += " AND corpus_id = ?"
        args.append(int(corpus_id))
    return [r[0] for r in db.execute(sql + " ORDER BY judge", args)]


def judgment_counts(db: sqlite_utils.Database, session_id: int) -> list[dict[str, Any]]:
    """Per corpus and judge: judgments, queries, relevant (grade > 0) ones and the last time; by corpus name, judge."""
    if not has_judgments(db):
        return []
    sql = ("SELECT c.id, c.name, j.judge, COUNT(*), COUNT(DISTINCT j.query_key), SUM(j.grade > 0), MAX(j.judged_at) "
           "FROM judgments j JOIN corpora c ON c.id = j.corpus_id WHERE j.session_id = ? "
           "GROUP BY c.id, j.judge ORDER BY c.name, j.judge")
    return [{"corpus_id": r[0], "corpus": r[1], "judge": r[2], "judgments": r[3], "queries": r[4],
             "relevant": int(r[5] or 0), "last": r[6]} for r in db.execute(sql, [int(session_id)])]
