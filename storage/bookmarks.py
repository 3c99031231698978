"""Bookmarks: documents of a corpus marked under a tag, with a note, per session (DESIGN §2, `bookmarks`)."""
from __future__ import annotations

from typing import Any, Iterable

import sqlite_utils

from storage.db import transaction


def add_bookmarks(db: sqlite_utils.Database, session_id: int, corpus_id: int, idxs: Iterable[int], *,
                  tag: str = "", note: str = "") -> int:
    """Bookmark documents under a tag (one transaction); an existing (document, tag) gets the new note."""
    rows = [(int(session_id), int(corpus_id), int(i), tag.strip(), note) for i in idxs]
    with transaction(db) as conn:
        conn.executemany("INSERT INTO bookmarks (session_id, corpus_id, idx, tag, note) VALUES (?,?,?,?,?) "
                         "ON CONFLICT (session_id, corpus_id, idx, tag) DO UPDATE SET note = excluded.note", rows)
    return len(rows)


def list_bookmarks(db: sqlite_utils.Database, session_id: int, corpus_id: int, *,
                   tag: str | None = None) -> list[dict]:
    """Bookmarks of a corpus in this session (optionally one tag): idx, tag, note; by tag then index."""
    sql = "SELECT idx, tag, note FROM bookmarks WHERE session_id = ? AND corpus_id = ?"
    args: list[Any] = [session_id, corpus_id]
    if tag is not None:
        sql += " AND tag = ?"
        args.append(tag)
    return [{"idx": r[0], "tag": r[1], "note": r[2]} for r in db.execute(sql + " ORDER BY tag, idx", args)]


def bookmark_tags(db: sqlite_utils.Database, session_id: int, corpus_id: int) -> list[str]:
    """The tags used on a corpus in this session, sorted ("" for bookmarks without a tag)."""
    return [r[0] for r in db.execute("SELECT DISTINCT tag FROM bookmarks WHERE session_id = ? AND corpus_id = ? "
                                     "ORDER BY tag", [session_id, corpus_id])]


def delete_bookmark(db: sqlite_utils.Database, session_id: int, corpus_id: int, idx: int, tag: str) -> None:
    """Remove one bookmark (a document under one tag)."""
    with transaction(db) as conn:
        conn.execute("DELETE FROM bookmarks WHERE session_id = ? AND corpus_id = ? AND idx = ? AND tag = ?",
                     [session_id, corpus_id, int(idx), tag])
