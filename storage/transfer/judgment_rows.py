"""The judgments of a session file (schema version 4 on): the table checked (a plain table with our columns and
declared types, every value of the right type), then every row: it belongs to the file's session and to one of its
corpora, its query is a document of that corpus or a stored-form typed text (never both), its key is the one
recomputed from them, its document is within the corpus, its grade in 0..3, its judge's name as the app stores names,
and no pair is judged twice by one judge. A file of an older version has no judgments."""
from __future__ import annotations

import sqlite3
from functools import lru_cache
from typing import Any

from storage.db import connect
from storage.errors import InputError
from storage.judgments import check_grade, clean_judge, clean_query_text, query_key
from storage.transfer.file_format import JUDGMENT_COLS, JUDGMENT_TYPES, JUDGMENTS_SINCE, ImportRefused, rows_of

MAX_TIME_CHARS = 40


@lru_cache(maxsize=1)
def _reference() -> dict[str, str]:
    """Our judgments table's (column -> declared type), as the migration creates it."""
    ref = connect(":memory:")
    try:
        return {r[1]: (r[2] or "").upper() for r in ref.execute("PRAGMA table_info(judgments)")}
    finally:
        ref.close()


def check_judgments_table(src: sqlite3.Connection) -> bool:
    """Whether the file has judgments to read: a version-4 file must have the table as ours is; an older one
    has none (a table of that name in an older file is not read)."""
    version = int(src.execute("PRAGMA user_version").fetchone()[0])
    if version < JUDGMENTS_SINCE:
        return False
    table = src.execute("SELECT type, rootpage, sql FROM sqlite_master WHERE name = 'judgments'").fetchone()
    if table is None:
        raise ImportRefused("the file has no table 'judgments'")
    if table[0] != "table" or not table[1] or (table[2] or "").lstrip().upper().startswith("CREATE VIRTUAL"):
        raise ImportRefused("'judgments' in the file is not a plain table")
    have = {r[1]: ((r[2] or "").upper(), r[6]) for r in src.execute("PRAGMA table_xinfo(judgments)")}
    for column, declared in _reference().items():
        if column not in have:
            raise ImportRefused(f"table 'judgments' lacks column {column!r}")
        if have[column][1]:
            raise ImportRefused(f"table 'judgments' column {column!r} is a generated column")
        if have[column][0] != declared:
            raise ImportRefused(f"table 'judgments' column {column!r} has type {have[column][0] or 'none'!r}, "
                                f"expected {declared!r}")
    for column, ok in JUDGMENT_TYPES.items():
        found = src.execute(f"SELECT typeof({column}) FROM judgments WHERE typeof({column}) NOT IN "
                            f"({', '.join(repr(t) for t in ok)}) LIMIT 1").fetchone()
        if found is not None:
            raise ImportRefused(f"judgments.{column} holds a {found[0]} value (expected {' or '.join(ok)})")
    return True


def validate_judgments(src: sqlite3.Connection, session_id: int, corpora: dict[int, dict[str, Any]]) -> list[tuple]:
    """The file's judgments as rows of `JUDGMENT_COLS` (by the file's ids), each checked (module docstring)."""
    if not check_judgments_table(src):
        return []
    out: list[tuple] = []
    seen: set[tuple] = set()
    sql = f"SELECT {', '.join(JUDGMENT_COLS)} FROM judgments ORDER BY rowid"
    for row in rows_of(src.execute(sql)):
        r = dict(zip(JUDGMENT_COLS, row))
        corpus = corpora.get(r["corpus_id"])
        where = f"a judgment of corpus {r['corpus_id']}"
        if r["session_id"] != session_id:
            raise ImportRefused(f"a judgment belongs to another session (session_id {r['session_id']})")
        if corpus is None:
            raise ImportRefused(f"{where}: the file holds no such corpus")
        n = corpus["n_docs"]
        if not 0 <= r["doc_idx"] < n:
            raise ImportRefused(f"{where} points at document {r['doc_idx']}, outside 0..{n - 1}")
        if (r["query_idx"] is None) == (r["query_text"] is None):
            raise ImportRefused(f"{where}: its query is neither a document nor a text, or both")
        if r["query_idx"] is not None and not 0 <= r["query_idx"] < n:
            raise ImportRefused(f"{where}: its query document {r['query_idx']} is outside 0..{n - 1}")
        try:
            if r["query_text"] is not None and clean_query_text(r["query_text"]) != r["query_text"]:
                raise ImportRefused(f"{where}: its query text is not in the stored form (trimmed, NFC)")
            grade = check_grade(r["grade"])
            if clean_judge(r["judge"]) != r["judge"]:
                raise ImportRefused(f"{where}: the judge's name {r['judge'][:80]!r} is not in the stored form")
        except InputError as exc:
            raise ImportRefused(f"{where}: {exc}") from None
        if r["query_key"] != query_key(r["query_idx"], r["query_text"]):
            raise ImportRefused(f"{where}: its query key does not match its query")
        if not r["judged_at"] or len(r["judged_at"]) > MAX_TIME_CHARS:
            raise ImportRefused(f"{where}: its time is empty or longer than {MAX_TIME_CHARS} characters")
        pair = (r["corpus_id"], r["query_key"], r["doc_idx"], r["judge"])
        if pair in seen:
            raise ImportRefused(f"{where}: judge {r['judge']!r} judged one pair twice")
        seen.add(pair)
        out.append(tuple({**r, "grade": grade}[c] for c in JUDGMENT_COLS))
    return out
