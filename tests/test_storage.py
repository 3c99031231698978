"""Storage: schema and migrations, matrices, sessions, corpora and bookmarks."""
from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from storage import StorageError, connect
from storage.bookmarks import add_bookmarks, bookmark_tags, delete_bookmark, list_bookmarks
from storage.corpora import find_corpus, keyword_search, list_corpora, load_documents, save_corpus
from storage.matrices import (create_matrix, find_matrix, load_matrix, save_matrix, stored_chunks, write_chunk)
from storage.schema import SCHEMA_VERSION, migrate, user_version
from storage.sessions import (InvalidName, create_session, delete_session, duplicate_session, ensure_session,
                              list_sessions, rename_session, save_run, unique_session_name)
from tests.builders import make_corpus, stored_corpus


def test_new_database_has_schema_wal_and_foreign_keys(db, db_path):
    assert user_version(db) == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    tables = set(db.table_names())
    assert {"sessions", "corpora", "documents", "matrices", "matrix_chunks", "jobs", "runs", "bookmarks",
            "documents_fts"} <= tables


def test_migrate_is_idempotent_and_reopen_keeps_data(db_path):
    db = connect(db_path)
    ensure_session(db, "a")
    db.close()
    db = connect(db_path)
    assert migrate(db) == SCHEMA_VERSION
    assert [s.name for s in list_sessions(db)] == ["a"]


def test_newer_schema_is_refused(db_path):
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(StorageError, match="newer than this EmbedLab"):
        connect(db_path)


def test_foreign_file_is_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StorageError, match="not a valid EmbedLab database"):
        connect(path)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_matrix_round_trip_across_chunks(db, dtype, monkeypatch):
    monkeypatch.setattr("storage.matrices.CHUNK_BYTES", 1000)
    arr = np.random.default_rng(0).normal(size=(257, 13)).astype(dtype)
    meta = save_matrix(db, arr, cache_key="k", kind="embedding", dtype=dtype)
    assert meta.complete and meta.n_chunks > 5
    back = load_matrix(db, meta)
    assert back.dtype == np.dtype(dtype) and np.array_equal(back, arr)


def test_matrix_blobs_are_little_endian(db):
    meta = save_matrix(db, np.array([[1.0, 2.0]], dtype=np.float32), cache_key="le", kind="embedding")
    blob = db.execute("SELECT data FROM matrix_chunks WHERE matrix_id = ?", [meta.id]).fetchone()[0]
    assert blob == np.array([1.0, 2.0], dtype="<f4").tobytes()


def test_unfinished_matrix_is_not_a_cache_hit_and_resumes(db, monkeypatch):
    monkeypatch.setattr("storage.matrices.CHUNK_BYTES", 4 * 4 * 10)  # 10 rows of 4 float32
    arr = np.arange(100, dtype=np.float32).reshape(25, 4)
    meta = create_matrix(db, cache_key="r", kind="embedding", rows=25, cols=4)
    write_chunk(db, meta, 0, arr[:10])
    assert find_matrix(db, "r") is None
    again = create_matrix(db, cache_key="r", kind="embedding", rows=25, cols=4)
    assert again.id == meta.id and stored_chunks(db, meta.id) == {0}
    write_chunk(db, again, 1, arr[10:20])
    write_chunk(db, again, 2, arr[20:], complete=True)
    assert np.array_equal(load_matrix(db, find_matrix(db, "r")), arr)


def test_write_chunk_checks_shape(db):
    meta = create_matrix(db, cache_key="s", kind="embedding", rows=3, cols=2)
    with pytest.raises(ValueError, match="shape"):
        write_chunk(db, meta, 0, np.zeros((3, 5), np.float32))


def test_loading_reads_whole_chunks_in_one_query_and_is_exact(db):
    """Loading is `np.frombuffer` per stored block of a few MB, in one query, never a row-by-row fetch (the time it
    takes at 100k x 384 is measured by `bench/scale.py --parts load`)."""
    arr = np.random.default_rng(1).random((10_000, 384), dtype=np.float32)
    meta = save_matrix(db, arr, cache_key="big", kind="embedding")
    assert meta.chunk_rows == 2730                                      # blocks of 4 MB (2,730 rows of 384 floats)
    assert stored_chunks(db, meta.id) == {0, 1, 2, 3}                   # the last one partial
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    try:
        back = load_matrix(db, meta)
    finally:
        db.conn.set_trace_callback(None)
    assert back.dtype == np.float32 and np.array_equal(back, arr)
    assert len(statements) == 1 and "FROM matrix_chunks" in statements[0], statements
    assert np.array_equal(load_matrix(db, meta, rows=2731), arr[:2731])  # a prefix across a block boundary


def test_corpus_save_is_atomic_on_failure(db, session_id):
    save_corpus(db, session_id, make_corpus(["one", "two"]))
    broken = make_corpus(["a", "b", "c"], name="broken")
    broken.doc_ids = ["0", "1", None]  # the third row violates NOT NULL after two rows went in
    with pytest.raises(sqlite3.IntegrityError):
        save_corpus(db, session_id, broken)
    assert [c.name for c in list_corpora(db, session_id)] == ["c"]
    assert db.execute("SELECT COUNT(*) FROM documents").fetchone()[0] == 2


def test_corpus_names_get_suffix_and_documents_round_trip(db, session_id):
    a = save_corpus(db, session_id, make_corpus(["alpha", "beta"], labels=["x", None]))
    b = save_corpus(db, session_id, make_corpus(["gamma"]))
    assert (a.name, b.name) == ("c", "c (2)")
    docs = load_documents(db, a.id)
    assert [(d["text"], d["label"]) for d in docs] == [("alpha", "x"), ("beta", None)]
    assert [d["idx"] for d in load_documents(db, a.id, [1, 0])] == [1, 0]
    with pytest.raises(StorageError, match="no corpus named 'nope'"):
        find_corpus(db, session_id, "nope")


def test_keyword_search_uses_fts_and_treats_input_as_words(db):
    _, info = stored_corpus(db, ["the quick brown fox", "lazy dogs sleep", "a fox and a dog"])
    hits = keyword_search(db, info.id, "fox")
    assert sorted(h["idx"] for h in hits) == [0, 2]
    assert "\x02fox\x03" in hits[0]["snippet"]
    assert keyword_search(db, info.id, 'fox" OR "dogs') is not None  # FTS syntax is quoted away, no error
    assert keyword_search(db, info.id, "") == []


def test_session_lifecycle_and_counts(db):
    sid = ensure_session(db, "b")
    ensure_session(db, "a")
    save_corpus(db, sid, make_corpus(["x", "y", "z"]))
    save_run(db, sid, "ood", {"p": 1}, {"knn": {"auroc": 0.9}})
    lines = [s.line() for s in list_sessions(db)]
    assert lines == ["a\tcorpora=0\tdocuments=0\tembeddings=0\truns=0",
                     "b\tcorpora=1\tdocuments=3\tembeddings=0\truns=1"]
    rename_session(db, "b", "c")
    copy = duplicate_session(db, "c")
    assert copy == "c (copy)"
    assert [s.line().split("\t", 1)[1] for s in list_sessions(db) if s.name.startswith("c")] == \
        ["corpora=1\tdocuments=3\tembeddings=0\truns=1"] * 2
    delete_session(db, "c")
    assert [s.name for s in list_sessions(db)] == ["a", "c (copy)"]
    assert db.execute("SELECT COUNT(*) FROM documents").fetchone()[0] == 3


@pytest.mark.parametrize("name", ["O'Brien \"quoted\"", "'; DROP TABLE sessions; --", "../../etc/passwd",
                                  "مرحبا", "🧭 emoji", "a\u200bb"])
def test_unusual_session_names_are_plain_data(db, name):
    ensure_session(db, name)
    assert name in [s.name for s in list_sessions(db)]
    assert "sessions" in db.table_names()


@pytest.mark.parametrize("name,message", [("", "empty"), ("   ", "empty"), ("a\x00b", "control character"),
                                          ("x" * 201, "longer than 200")])
def test_bad_session_names_are_refused(db, name, message):
    with pytest.raises(InvalidName, match=message):
        ensure_session(db, name)
    assert list_sessions(db) == []


def test_create_refuses_existing_and_unique_name_suffixes(db):
    create_session(db, "x")
    with pytest.raises(InvalidName, match="exists already"):
        create_session(db, "x")
    ensure_session(db, "x (2)")
    assert unique_session_name(db, "x") == "x (3)"


def test_deleting_a_session_keeps_matrices_another_corpus_uses(db):
    a, b = ensure_session(db, "a"), ensure_session(db, "b")
    ca = save_corpus(db, a, make_corpus(["same text"]))
    save_corpus(db, b, make_corpus(["same text"]))
    save_matrix(db, np.ones((1, 4), np.float32), cache_key="e", kind="embedding", content_hash=ca.content_hash)
    delete_session(db, "a")
    assert find_matrix(db, "e") is not None
    delete_session(db, "b")
    assert find_matrix(db, "e") is None


def test_bookmarks_round_trip(db):
    sid, info = stored_corpus(db, ["one", "two", "three"], ["x", "y", "x"])
    assert add_bookmarks(db, sid, info.id, [0, 2], tag="check", note="first look") == 2
    add_bookmarks(db, sid, info.id, [1], tag="")
    add_bookmarks(db, sid, info.id, [0], tag="check", note="updated")  # same (doc, tag): the note changes
    assert bookmark_tags(db, sid, info.id) == ["", "check"]
    assert list_bookmarks(db, sid, info.id, tag="check") == [{"idx": 0, "tag": "check", "note": "updated"},
                                                              {"idx": 2, "tag": "check", "note": "first look"}]
    assert len(list_bookmarks(db, sid, info.id)) == 3
    delete_bookmark(db, sid, info.id, 0, "check")
    assert [b["idx"] for b in list_bookmarks(db, sid, info.id, tag="check")] == [2]
