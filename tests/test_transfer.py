"""Session export/import (storage.transfer): round trips, and hostile files refused with nothing changed."""
from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from storage import StorageError, connect, transaction
from storage import matrices as M
from storage.corpora import keyword_search, list_corpora, load_documents, save_corpus
from storage.sessions import MAX_NAME_LEN, ensure_session, list_sessions, require_session, save_run
from embedlab.session_files import import_session_file as import_session
from storage.transfer import IMPORTABLE_VERSIONS, ImportRefused, export_session

SUPPORTED = f"{IMPORTABLE_VERSIONS[0]} to {IMPORTABLE_VERSIONS[-1]}"   # the versions an import accepts

HOSTILE_TEXTS = [
    "plain alpha text about embeddings and maps",
    "O'Brien said \"hello\"; DROP TABLE documents; --",
    "NEAR(alpha beta) OR gamma* AND \"quoted\" -minus ^caret {col}: x",
    "שלום עולם مرحبا بالعالم \u200fRTL\u200e mark",
    "emoji 🧪🚀👩\u200d👩\u200d👧 zero\u200bwidth",
    "tabs\tand\nnewlines\r\nand \\backslashes\\ and %s %d {0}",
    "<script>alert('x')</script> &amp; ../../etc/passwd",
    "long " + "lorem ipsum dolor " * 2000,  # overflow pages
    "nul \x00 inside, and a lone \x7f",
    "cafe\u0301 naïve ﬁ ligature",
]

NAMES = ["O'Brien \"quoted\" `back`", "'; DROP TABLE sessions; --", "../../etc/passwd",
         "שלום \u202eRTL override مرحبا", "🧪 embeddings 🚀 👩\u200d👩\u200d👧"]


@dataclass
class FakeCorpus:
    name: str
    texts: list[str]
    labels: list[str | None] | None = None
    source: str = "test.csv"
    text_col: str | None = "text"
    label_col: str | None = "label"
    id_col: str | None = "id"
    meta_cols: list[str] = field(default_factory=lambda: ["lang"])
    n_skipped: int = 1
    doc_ids: list[str] = field(default_factory=list)
    metas: list[dict] = field(default_factory=list)

    def __post_init__(self):
        self.doc_ids = self.doc_ids or [f"{self.name}-{i}" for i in range(len(self.texts))]
        self.metas = self.metas or [{"lang": "x", "i": i, "q": "'\"\\"} for i in range(len(self.texts))]

    @property
    def content_hash(self) -> str:
        return hashlib.sha256("\x1f".join(self.texts).encode()).hexdigest()


def build_session(db, name: str = "demo") -> dict:
    """Two corpora (hostile texts), a multi-chunk embedding (unit rows, one all zero), a float16 projection, an
    unfinished matrix (not exported), two runs and bookmarks; plus another session that must not leak into the
    export. (Its matrices sit under keys no lookup computes: an import keeps them private to their corpus.)"""
    sid = ensure_session(db, name)
    a = save_corpus(db, sid, FakeCorpus("alpha", HOSTILE_TEXTS, labels=[f"L{i % 3}" for i in range(10)]))
    b = save_corpus(db, sid, FakeCorpus("beta", [f"beta document {i} with words" for i in range(7)], labels=None))
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((a.n_docs, 8)).astype("<f4")
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    emb[3] = 0.0
    proj = rng.standard_normal((b.n_docs, 2)).astype("<f2")
    with mock.patch.object(M, "CHUNK_BYTES", 64):  # several chunks per matrix
        M.save_matrix(db, emb, cache_key=f"emb:{a.content_hash}", kind="embedding", model="m", params={"n": 1},
                      corpus_id=a.id, content_hash=a.content_hash)
        M.save_matrix(db, proj, cache_key=f"proj:{b.content_hash}", kind="projection", dtype="float16",
                      corpus_id=b.id, content_hash=b.content_hash)
    M.create_matrix(db, cache_key="unfinished", kind="embedding", rows=7, cols=3, content_hash=b.content_hash,
                    corpus_id=b.id)
    save_run(db, sid, "retrieval", {"methods": ["bm25", "dense"], "q": "'; --"}, {"ndcg@10": 0.5})
    save_run(db, sid, "ood", {"k": 5}, {"auroc": float("nan")}, {"per_class": [1, 2]})
    with transaction(db) as conn:
        conn.executemany("INSERT INTO bookmarks (session_id, corpus_id, idx, tag, note) VALUES (?,?,?,?,?)",
                         [(sid, a.id, 1, "star", "O'Brien"), (sid, b.id, 6, "", "last 🧪")])
    other = ensure_session(db, "zz other")
    save_corpus(db, other, FakeCorpus("gamma", ["other session text"]))
    return dict(sid=sid, alpha=a, beta=b, emb=emb, proj=proj)


def snapshot(db, name: str) -> dict:
    """Everything of a session that must survive a round trip (ids left out)."""
    sid = require_session(db, name)
    out = {"notes": db.execute("SELECT notes, created_at FROM sessions WHERE id = ?", [sid]).fetchone()}
    for c in list_corpora(db, sid):
        out[c.name] = (c.source, c.n_docs, c.text_col, c.label_col, c.id_col, c.meta_cols, c.n_skipped,
                       c.content_hash, c.created_at, load_documents(db, c.id))
        out[c.name + ":matrices"] = [   # what the corpus sees, by shared key (an import's may be private)
            (m.kind, m.model, m.params, m.dtype, m.rows, m.cols, m.chunk_rows, M.shared_key_of(m.cache_key),
             M.load_matrix(db, m).tobytes()) for m in M.list_matrices(db, c.content_hash, corpus_id=c.id)]
    out["runs"] = db.execute("SELECT kind, params_json, metrics_json, details_json, created_at FROM runs "
                             "WHERE session_id = ? ORDER BY id", [sid]).fetchall()
    out["bookmarks"] = db.execute("SELECT c.name, b.idx, b.tag, b.note FROM bookmarks b JOIN corpora c "
                                  "ON c.id = b.corpus_id WHERE b.session_id = ? ORDER BY 1, 2", [sid]).fetchall()
    return out


def fingerprint(db) -> tuple:
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return ([s.line() for s in list_sessions(db)],
            {t: db.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables},
            db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall(),
            db.execute("SELECT COALESCE(SUM(length(data)), 0) FROM matrix_chunks").fetchone(),
            db.execute("PRAGMA integrity_check").fetchall())


@pytest.fixture(scope="module")
def valid_export(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("export")
    db = connect(folder / "source.sqlite")
    build_session(db)
    out = export_session(db, "demo", folder / "demo.sqlite")
    db.close()
    return out


@pytest.fixture
def target(tmp_path):
    """A target database that already holds a session of its own."""
    db = connect(tmp_path / "target.sqlite")
    sid = ensure_session(db, "existing")
    save_corpus(db, sid, FakeCorpus("mine", ["my own text"]))
    save_run(db, sid, "ood", {}, {})
    yield db
    db.close()


# ------------------------------------------------------------------------------------------------ round trips

def test_round_trip_identical(db, tmp_path):
    info = build_session(db)
    out = export_session(db, "demo", tmp_path / "out" / "demo.sqlite")
    assert out == tmp_path / "out" / "demo.sqlite"
    assert sorted(os.listdir(out.parent)) == ["demo.sqlite"]  # no -wal, -shm or temp file left
    assert open(out, "rb").read(20)[18:20] == b"\x01\x01"  # rollback-journal file format, not WAL

    fresh = connect(tmp_path / "fresh.sqlite")
    assert import_session(fresh, out) == "demo"
    [line] = [s.line() for s in list_sessions(fresh)]
    assert line == next(s.line() for s in list_sessions(db) if s.name == "demo")
    assert line == "demo\tcorpora=2\tdocuments=17\tembeddings=1\truns=2"
    assert snapshot(fresh, "demo") == snapshot(db, "demo")
    # bit-for-bit matrices, the zero row included; under keys no lookup computes, so private to their corpus
    a = next(c for c in list_corpora(fresh, require_session(fresh, "demo")) if c.name == "alpha")
    [emb] = M.list_matrices(fresh, a.content_hash, "embedding", corpus_id=a.id)
    assert M.load_matrix(fresh, emb).tobytes() == info["emb"].tobytes()
    assert emb.corpus_id == a.id
    assert emb.cache_key == M.private_key(f"emb:{a.content_hash}", a.id)
    assert M.status_label(emb.cache_key) == "imported, not verified"
    assert M.list_matrices(fresh, a.content_hash) == []   # no other corpus of these texts sees it
    assert M.find_matrix(fresh, "unfinished", complete_only=False) is None  # unfinished caches stay home
    assert fresh.execute("SELECT COUNT(*) FROM sessions WHERE name = 'zz other'").fetchone()[0] == 0
    # keyword search works in the copy: the FTS index was filled by our triggers
    for word in ("O'Brien", "RTL", "emoji", "ligature", "gamma"):
        hits = [h["idx"] for h in keyword_search(fresh, a.id, word)]
        assert hits and hits == [h["idx"] for h in keyword_search(db, info["alpha"].id, word)], word
    assert fresh.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    fresh.execute("INSERT INTO documents_fts(documents_fts) VALUES ('integrity-check')")
    # the exported file itself is a clean database with a consistent FTS index
    raw = sqlite3.connect(f"file:{out}?mode=ro", uri=True)
    assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert raw.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0
    raw.close()
    fresh.close()


def test_import_twice_keeps_both(db, tmp_path):
    build_session(db)
    out = export_session(db, "demo", tmp_path / "demo.sqlite")
    fresh = connect(tmp_path / "fresh.sqlite")
    assert import_session(fresh, out) == "demo"
    n_matrices = fresh.execute("SELECT COUNT(*), SUM(length(data)) FROM matrix_chunks").fetchone()
    assert import_session(fresh, out) == "demo (2)"
    assert import_session(fresh, out) == "demo (3)"
    lines = [s.line() for s in list_sessions(fresh)]
    assert lines == [lines[0].replace("demo", n, 1) for n in ("demo", "demo (2)", "demo (3)")]
    assert snapshot(fresh, "demo (2)") == snapshot(fresh, "demo")
    # unverified matrices are private to each imported corpus: each import keeps its own copy
    count, size = n_matrices
    assert fresh.execute("SELECT COUNT(*), SUM(length(data)) FROM matrix_chunks").fetchone() == (3 * count, 3 * size)
    # importing back into the source works the same way: the source's own (shared) matrices stay as they were
    assert import_session(db, out) == "demo (2)"
    assert db.execute("SELECT COUNT(*) FROM matrices").fetchone()[0] == 3 + 2
    assert db.execute("SELECT COUNT(*) FROM matrices WHERE cache_key LIKE 'private:%'").fetchone()[0] == 2
    fresh.close()


def test_import_replaces_an_unfinished_matrix_of_the_same_key(db, tmp_path):
    """A verified embedding (tfidf-svd: it re-encodes here) goes under its shared key, replacing an unfinished one
    (a matrix under a key no lookup computes would stay private instead: see the round trip)."""
    from embedlab.embedding.space import EmbeddingSpace

    sid = ensure_session(db, "demo")
    info = save_corpus(db, sid, FakeCorpus("alpha", HOSTILE_TEXTS))
    done = EmbeddingSpace.for_corpus(db, info.id, "tfidf-svd").ensure()
    out = export_session(db, "demo", tmp_path / "demo.sqlite")
    fresh = connect(tmp_path / "fresh.sqlite")
    meta = M.create_matrix(fresh, cache_key=done.cache_key, kind="embedding", rows=done.rows, cols=done.cols,
                           chunk_rows=2)
    M.write_chunk(fresh, meta, 0, np.zeros((2, done.cols), "f4"))
    import_session(fresh, out)
    got = M.find_matrix(fresh, done.cache_key)
    assert got is not None and got.complete
    assert M.load_matrix(fresh, got).tobytes() == M.load_matrix(db, done).tobytes()
    fresh.close()


@pytest.mark.parametrize("name", NAMES)
def test_awkward_names_survive(db, tmp_path, name):
    sid = ensure_session(db, name)
    save_corpus(db, sid, FakeCorpus(name, ["text one", "text two"]))
    out = export_session(db, name, tmp_path / "x.sqlite")
    fresh = connect(tmp_path / "fresh.sqlite")
    assert import_session(fresh, out) == name
    assert [s.line() for s in list_sessions(fresh)] == [s.line() for s in list_sessions(db)]
    assert [c.name for c in list_corpora(fresh, require_session(fresh, name))] == [name]
    assert fresh.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'sessions'").fetchone()[0] == 1
    fresh.close()


def test_long_name_suffix_stays_within_the_limit(db, tmp_path):
    name = "n" * MAX_NAME_LEN
    ensure_session(db, name)
    out = export_session(db, name, tmp_path / "long.sqlite")
    second = import_session(db, out)
    assert len(second) <= MAX_NAME_LEN and second.endswith(" (2)")
    require_session(db, second)  # usable: it passes clean_name


def test_export_refuses_to_overwrite(db, tmp_path):
    build_session(db)
    out = tmp_path / "demo.sqlite"
    out.write_bytes(b"precious")
    with pytest.raises(StorageError, match="exists already"):
        export_session(db, "demo", out)
    assert out.read_bytes() == b"precious"
    assert sorted(os.listdir(tmp_path)) == sorted(["demo.sqlite", "embedlab.sqlite", "embedlab.sqlite-wal",
                                                   "embedlab.sqlite-shm"])
    with pytest.raises(StorageError, match="is a folder"):
        export_session(db, "demo", tmp_path, overwrite=True)
    assert export_session(db, "demo", out, overwrite=True) == out
    fresh = connect(tmp_path / "fresh.sqlite")
    assert import_session(fresh, out) == "demo"
    with pytest.raises(StorageError, match="that is the database"):
        export_session(db, "demo", tmp_path / "embedlab.sqlite", overwrite=True)
    assert [s.name for s in list_sessions(db)] == ["demo", "zz other"]
    with pytest.raises(StorageError, match="no session named 'nope'"):
        export_session(db, "nope", tmp_path / "nope.sqlite")
    assert not (tmp_path / "nope.sqlite").exists()


def test_file_name_with_uri_characters(db, tmp_path):
    build_session(db)
    out = export_session(db, "demo", tmp_path / "we?ird #name% &mode=rw.sqlite")
    fresh = connect(tmp_path / "fresh.sqlite")
    assert import_session(fresh, out) == "demo"
    assert not (tmp_path / "we").exists()


def test_foreign_triggers_and_views_are_never_copied_or_run(target, tmp_path, valid_export):
    path = tmp_path / "evil.sqlite"
    shutil.copy(valid_export, path)
    with sqlite3.connect(path) as raw:
        raw.executescript("""
            CREATE TRIGGER evil AFTER INSERT ON sessions BEGIN DELETE FROM sessions; END;
            CREATE TRIGGER evil_docs BEFORE INSERT ON documents BEGIN SELECT RAISE(ABORT, 'pwned'); END;
            CREATE TRIGGER evil_read AFTER UPDATE ON runs BEGIN UPDATE sessions SET name = 'pwned'; END;
            CREATE VIEW evil_view AS SELECT name FROM sessions;
            CREATE TABLE extra_stuff (x);
            INSERT INTO extra_stuff VALUES ('ignored');
        """)
    raw.close()
    before = {r[0] for r in target.execute("SELECT name FROM sqlite_master")}
    assert import_session(target, path) == "demo"
    after = {r[0] for r in target.execute("SELECT name FROM sqlite_master")}
    assert after == before
    assert target.execute("SELECT COUNT(*) FROM sqlite_master WHERE type IN ('trigger', 'view') AND name LIKE "
                          "'evil%'").fetchone()[0] == 0
    assert [s.name for s in list_sessions(target)] == ["demo", "existing"]
    # our own triggers are still the only ones
    assert {r[0] for r in target.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")} == \
        {"documents_ai", "documents_ad", "documents_au"}


# ------------------------------------------------------------------------------------------------ hostile files

def _mutate(valid: Path, tmp: Path, sql: str) -> Path:
    path = tmp / "case.sqlite"
    shutil.copy(valid, path)
    raw = sqlite3.connect(path, isolation_level=None)
    raw.executescript(sql)
    raw.close()
    return path


def _write(tmp: Path, data: bytes) -> Path:
    path = tmp / "case.sqlite"
    path.write_bytes(data)
    return path


def _fresh_sqlite(tmp: Path, sql: str) -> Path:
    path = tmp / "case.sqlite"
    raw = sqlite3.connect(path, isolation_level=None)
    raw.executescript(sql)
    raw.close()
    return path


def _corrupt_middle_btree_page(valid: Path, tmp: Path) -> Path:
    """Flip the header and cell pointers of the b-tree page nearest the middle of the file."""
    path = tmp / "case.sqlite"
    data = bytearray(valid.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    n = len(data) // page
    btree = [p for p in range(1, n)
             if data[p * page] in (2, 5, 10, 13) and data[p * page + 1:p * page + 5] != b"\0" * 4]
    assert btree, "the export has b-tree pages past page 1"
    p = min(btree, key=lambda p: abs(p - n // 2))
    for i in range(p * page + 1, p * page + 24):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def _corrupt_table_page(valid: Path, tmp: Path, table: str = "corpora") -> Path:
    """Scramble the cell pointers of a table's root page (page 1, the schema, stays intact)."""
    path = tmp / "case.sqlite"
    raw = sqlite3.connect(f"file:{valid}?mode=ro", uri=True)
    root = raw.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", [table]).fetchone()[0]
    raw.close()
    data = bytearray(valid.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    start = (root - 1) * page
    header = 12 if data[start] in (2, 5) else 8
    for i in range(start + header, start + header + 16):  # the first cell pointers
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    return path


def _corrupt_index_entry(valid: Path, tmp: Path) -> Path:
    """Change one byte of a key inside the corpora name index: pages stay well-formed, the index goes wrong."""
    path = tmp / "case.sqlite"
    raw = sqlite3.connect(f"file:{valid}?mode=ro", uri=True)
    root = raw.execute("SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_autoindex_corpora_1'").fetchone()[0]
    raw.close()
    data = bytearray(valid.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    at = data.index(b"alpha", (root - 1) * page, root * page)
    data[at + 4] = ord("b")
    path.write_bytes(bytes(data))
    return path


def _case_truncated(valid, tmp):
    data = valid.read_bytes()
    return _write(tmp, data[: len(data) // 2]), f"the file is truncated ({len(data) // 2:,} of {len(data):,} bytes)"


def _case_too_big(valid, tmp):
    size = valid.stat().st_size
    return valid, f"file is {f'{size / 1024:.1f}'.removesuffix('.0')} KB, over the 1000 bytes import limit"


OUR_TABLES = """
CREATE TABLE sessions (id INTEGER PRIMARY KEY, title TEXT, owner TEXT);
INSERT INTO sessions VALUES (1, 'not ours', 'x');
PRAGMA user_version = 1;
"""

HOSTILE = {
    "random bytes": (lambda v, t: _write(t, np.random.default_rng(1).bytes(8192)),
                     "not an SQLite database (bad header)"),
    "empty file": (lambda v, t: _write(t, b""), "not an SQLite database (empty file)"),
    "text file": (lambda v, t: _write(t, "name,text\nx,y\n".encode() * 100), "not an SQLite database (bad header)"),
    "header only": (lambda v, t: _write(t, b"SQLite format 3\x00"), "not an SQLite database (truncated header)"),
    "header then garbage": (lambda v, t: _write(t, b"SQLite format 3\x00" + bytes(range(256)) * 64),
                            "not a valid SQLite database (file is not a database)"),
    "truncated half": (_case_truncated, None),
    "foreign sessions table": (lambda v, t: _fresh_sqlite(t, OUR_TABLES), "table 'sessions' lacks column 'name'"),
    "missing table": (lambda v, t: _mutate(v, t, "DROP TABLE runs;"), "the file has no table 'runs'"),
    "missing column": (lambda v, t: _mutate(v, t, "ALTER TABLE sessions DROP COLUMN notes;"),
                       "table 'sessions' lacks column 'notes'"),
    "a view instead of a table": (
        lambda v, t: _mutate(v, t, "DROP TABLE runs; CREATE VIEW runs AS SELECT 1 AS id;"),
        "'runs' in the file is a view, not a table"),
    "a virtual table instead of a table": (
        lambda v, t: _mutate(v, t, "DROP TABLE bookmarks; CREATE VIRTUAL TABLE bookmarks USING "
                                   "fts5(session_id, corpus_id, idx, tag, note);"),
        "'bookmarks' in the file is a virtual table, not a table"),
    "wrong column type": (
        lambda v, t: _mutate(v, t, "DROP TABLE bookmarks; CREATE TABLE bookmarks (session_id TEXT, "
                                   "corpus_id INTEGER, idx INTEGER, tag TEXT, note TEXT);"),
        "table 'bookmarks' column 'session_id' has type 'TEXT', expected 'INTEGER'"),
    "a blob where text belongs": (lambda v, t: _mutate(v, t, "UPDATE documents SET text = x'00ff' WHERE idx = 3;"),
                                  "documents.text holds a blob value (expected text)"),
    "user_version 99": (lambda v, t: _mutate(v, t, "PRAGMA user_version = 99;"),
                        f"schema version 99 is not supported (expected {SUPPORTED})"),
    "user_version 0 with our tables": (lambda v, t: _mutate(v, t, "PRAGMA user_version = 0;"),
                                       f"schema version 0 is not supported (expected {SUPPORTED})"),
    "two sessions": (lambda v, t: _mutate(v, t, "INSERT INTO sessions (name, created_at, updated_at) "
                                                "VALUES ('second', 't', 't');"),
                     "the file holds 2 sessions, expected exactly 1"),
    "no session": (lambda v, t: _mutate(v, t, "DELETE FROM sessions;"),
                   "the file holds 0 sessions, expected exactly 1"),
    "corpus of another session": (lambda v, t: _mutate(v, t, "UPDATE corpora SET session_id = 99 WHERE id = 2;"),
                                  "corpus 2 belongs to another session (session_id 99)"),
    "run of another session": (lambda v, t: _mutate(v, t, "UPDATE runs SET session_id = 5 WHERE id = 1;"),
                               "run 1 belongs to another session (session_id 5)"),
    "bookmark on no document": (lambda v, t: _mutate(v, t, "UPDATE bookmarks SET idx = 999 WHERE tag = 'star';"),
                                "bookmark on corpus 1 idx 999 points at no document"),
    "document idx gap": (lambda v, t: _mutate(v, t, "DELETE FROM documents WHERE corpus_id = 1 AND idx = 2;"),
                         "corpus 'alpha': documents must have idx 0..9 without gaps (found 9 documents, idx 0..9)"),
    "document idx shifted": (lambda v, t: _mutate(v, t, "UPDATE documents SET idx = 1000 WHERE corpus_id = 2 "
                                                        "AND idx = 6;"),
                             "corpus 'beta': documents must have idx 0..6 without gaps (found 7 documents, "
                             "idx 0..1000)"),
    "documents of a corpus not in the file": (
        lambda v, t: _mutate(v, t, "UPDATE documents SET corpus_id = 42 WHERE corpus_id = 2 AND idx = 0;"),
        "documents belong to corpus 42, which is not in the file's session"),
    "chunk bytes do not match rows x cols": (
        lambda v, t: _mutate(v, t, "UPDATE matrix_chunks SET data = substr(data, 1, length(data) - 4) "
                                   "WHERE matrix_id = 1 AND chunk_no = 0;"),
        "matrix 'emb:{alpha}': its chunks hold 316 bytes, expected 10×8×4 = 320"),
    "a chunk missing": (lambda v, t: _mutate(v, t, "DELETE FROM matrix_chunks WHERE matrix_id = 1 AND chunk_no = 4;"),
                        "matrix 'emb:{alpha}' has 4 chunks, expected 5"),
    "unknown dtype": (lambda v, t: _mutate(v, t, "UPDATE matrices SET dtype = 'complex128' WHERE id = 1;"),
                      "matrix 'emb:{alpha}' has unknown dtype 'complex128'"),
    "huge rows": (lambda v, t: _mutate(v, t, "UPDATE matrices SET rows = 1000000000000 WHERE id = 1;"),
                  "matrix 'emb:{alpha}' has 1000000000000 rows, outside the limit of 0..100000000"),
    "huge cols": (lambda v, t: _mutate(v, t, "UPDATE matrices SET cols = 123456789 WHERE id = 2;"),
                  "matrix 'proj:{beta}' has 123456789 columns, outside the limit of 1..1000000"),
    "matrix of no corpus": (lambda v, t: _mutate(v, t, "UPDATE matrices SET content_hash = 'other' WHERE id = 2;"),
                            "matrix 'proj:{beta}' belongs to no corpus of the session"),
    "invalid JSON in params_json": (lambda v, t: _mutate(v, t, "UPDATE runs SET params_json = '{oops' WHERE id = 1;"),
                                    "runs.params_json of run 1 is not valid JSON"),
    "deeply nested JSON": (lambda v, t: _mutate(v, t, "UPDATE runs SET metrics_json = '{\"a\":' || "
                                                      "printf('%.*c', 200000, '[') || printf('%.*c', 200000, ']') "
                                                      "|| '}' WHERE id = 2;"),
                           "runs.metrics_json of run 2 is not valid JSON"),
    "invalid JSON in meta_json": (lambda v, t: _mutate(v, t, "UPDATE documents SET meta_json = 'NaN]' WHERE "
                                                             "corpus_id = 1 AND idx = 3;"),
                                  "documents.meta_json of corpus 'alpha' idx 3 is not valid JSON"),
    "meta_json not an object": (lambda v, t: _mutate(v, t, "UPDATE documents SET meta_json = '[1]' WHERE "
                                                           "corpus_id = 2 AND idx = 0;"),
                                "documents.meta_json of corpus 'beta' idx 0 is not a JSON object"),
    "invalid JSON in matrix params": (lambda v, t: _mutate(v, t, "UPDATE matrices SET params_json = '' WHERE id = 1;"),
                                      "matrices.params_json of matrix 'emb:{alpha}' is not valid JSON"),
    "control character in session name": (
        lambda v, t: _mutate(v, t, "UPDATE sessions SET name = 'bad' || char(7) || 'name';"),
        "invalid session name in the file: session name contains a control character ('\\x07')"),
    "empty corpus name": (lambda v, t: _mutate(v, t, "UPDATE corpora SET name = '   ' WHERE id = 1;"),
                          "invalid corpus name in the file: corpus name is empty"),
    "over a tiny size limit": (_case_too_big, None),
    "corrupted page in the middle": (_corrupt_middle_btree_page, "integrity check failed: "),
    "corrupted table page": (_corrupt_table_page, "integrity check failed: "),
    "index out of step with its table": (
        _corrupt_index_entry, "integrity check failed: row 1 missing from index sqlite_autoindex_corpora_1"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_file_refused_and_nothing_changed(case, target, tmp_path, valid_export):
    build, expected = HOSTILE[case]
    made = build(valid_export, tmp_path)
    path, expected = made if isinstance(made, tuple) else (made, expected)
    raw = sqlite3.connect(f"file:{valid_export}?mode=ro", uri=True)
    hashes = dict(raw.execute("SELECT name, content_hash FROM corpora").fetchall())
    raw.close()
    expected = expected.replace("{alpha}", hashes["alpha"]).replace("{beta}", hashes["beta"])
    before, file_bytes = fingerprint(target), path.read_bytes()
    max_bytes = 1000 if case == "over a tiny size limit" else 2 * 1024**3
    with pytest.raises(ImportRefused) as err:
        import_session(target, path, max_bytes=max_bytes)
    message = str(err.value)
    if case.startswith("corrupted"):
        assert message.startswith(expected), message
    else:
        assert message == expected
    assert "\n" not in message
    assert fingerprint(target) == before
    assert path.read_bytes() == file_bytes  # the file was read, never written
    assert not [p for p in os.listdir(path.parent) if p.startswith(path.name + "-")]  # no -wal/-shm/-journal


def test_hostile_cases_reach_many_different_checks(target, tmp_path, valid_export):
    """The hostile files are refused by many different checks of the importer, not all by one: each refusal is
    traced to the `raise` in the storage/transfer package that made it."""
    import traceback

    sites: dict[tuple[str, int], list[str]] = {}
    for i, (case, (build, _)) in enumerate(HOSTILE.items()):
        folder = tmp_path / f"case{i}"
        folder.mkdir()
        made = build(valid_export, folder)
        path = made[0] if isinstance(made, tuple) else made
        with pytest.raises(ImportRefused) as err:
            import_session(target, path, max_bytes=1000 if case == "over a tiny size limit" else 2 * 1024**3)
        where = traceback.extract_tb(err.value.__traceback__)[-1]
        sites.setdefault((Path(where.filename).name, where.lineno), []).append(case)
        assert Path(where.filename).parent.name == "transfer", where
    assert len(sites) >= 30, sites  # 40 cases reach 31 different refusals here


def test_file_over_the_default_limit(target, tmp_path):
    path = tmp_path / "big.sqlite"
    with open(path, "wb") as fh:
        fh.truncate(int(3.1 * 1024**3))  # sparse: no disk used
    before = fingerprint(target)
    with pytest.raises(ImportRefused, match=r"^file is 3\.1 GB, over the 2 GB import limit$"):
        import_session(target, path)
    assert fingerprint(target) == before


def test_live_database_with_a_write_ahead_log(target, tmp_path):
    """A database still in use (WAL mode, changes only in its -wal): refused rather than read without them."""
    live_path = tmp_path / "live.sqlite"
    live = connect(live_path)
    live.conn.execute("PRAGMA wal_autocheckpoint = 0")
    build_session(live)
    assert (tmp_path / "live.sqlite-wal").stat().st_size > 0
    before = fingerprint(target)
    with pytest.raises(ImportRefused, match=r"^the file has unsaved changes in live\.sqlite-wal: "):
        import_session(target, live_path)
    assert fingerprint(target) == before
    live.close()  # checkpoints and removes the -wal: now it imports (it has two sessions, though)
    with pytest.raises(ImportRefused, match="^the file holds 2 sessions, expected exactly 1$"):
        import_session(target, live_path)


def test_not_a_file(target, tmp_path):
    with pytest.raises(ImportRefused, match="^no such file: "):
        import_session(target, tmp_path / "missing.sqlite")
    with pytest.raises(ImportRefused, match="^not a regular file: "):
        import_session(target, tmp_path)
    fifo = tmp_path / "fifo.sqlite"
    os.mkfifo(fifo)
    with pytest.raises(ImportRefused, match="^not a regular file: "):
        import_session(target, fifo)  # never opened: opening a FIFO would block


def test_import_is_one_transaction(target, tmp_path, valid_export, monkeypatch):
    """A failure half-way through copying (here: in the last step) leaves the target as it was."""
    import storage.transfer.import_copy as T

    before = fingerprint(target)

    def boom(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(T, "_copy_matrix", boom)
    with pytest.raises(StorageError, match="^the disk is full"):
        import_session(target, valid_export)
    assert fingerprint(target) == before
    assert not target.conn.in_transaction


def test_label_names_travel_with_an_export_and_bad_ones_are_refused(tmp_path):
    from builders import make_corpus
    from storage.corpora import list_corpora, save_corpus
    from storage.label_names import get_label_names, set_label_names
    from storage.sessions import ensure_session

    db = connect(tmp_path / "a.sqlite")
    sid = ensure_session(db, "news")
    info = save_corpus(db, sid, make_corpus(["a match", "a market", "a storm"], ["2", "3", "1"], name="ag"))
    set_label_names(db, info.id, {"1": "World", "2": "Sports"})
    out = export_session(db, "news", tmp_path / "news.sqlite")
    other = connect(tmp_path / "b.sqlite")
    name = import_session(other, out)
    (imported,) = list_corpora(other, require_session(other, name))
    assert get_label_names(other, imported.id) == {"1": "World", "2": "Sports"}
    bad = sqlite3.connect(out)
    bad.execute("UPDATE label_names SET name = ? WHERE label = '1'", ["x" * 5000])
    bad.commit()
    bad.close()
    with pytest.raises(ImportRefused, match="label names"):
        import_session(other, out)
