"""Trust, round two (issue 13): imports that cannot poison other sessions, ingestion that never alters data, every
command bounded, one clear line and exit 2 when the input is at fault, and nothing written on refusal.

Each refusal is checked the same way (`refused`): exit code 2, exactly one line on stderr without a traceback, a
time bound, `PRAGMA integrity_check` ok and the rest of the database unchanged (every table's rows, compared by a
dump, taken before and after).
"""
from __future__ import annotations

import gzip
import io
import json
import os
import socket
import sqlite3
import struct
import subprocess
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from trust_support import PYTHON, ROOT, assert_one_line, clean_env, cli, db_state, refused, run_module

from tests.builders import write_beir


@pytest.fixture
def seeded(tmp_path) -> Path:
    """A database with a session 'keep': a 3-document corpus, its tfidf-svd embedding and PCA map, and a run."""
    import embedlab.tasks  # noqa: F401 - job kinds
    from embedlab.embedding.space import EmbeddingSpace
    from embedlab.jobs import run_job
    from storage import connect
    from storage.sessions import save_run
    from tests.builders import stored_corpus

    path = tmp_path / "seed.sqlite"
    db = connect(path)
    sid, info = stored_corpus(db, ["apples and pears grow on trees", "the river flows to the sea",
                                   "stars shine over the mountains"], ["a", "b", "c"], session="keep", name="three")
    EmbeddingSpace.for_corpus(db, info.id, "tfidf-svd").ensure()
    run_job(db, "project", {"corpus_id": info.id, "model": "tfidf-svd", "method": "pca"}, session_id=sid)
    save_run(db, sid, "retrieval", {"k": 1}, {"ndcg@10": 0.5})
    db.close()
    return path


# ============================================================ 1. imports cannot poison another session's cache


def _export(tmp_path: Path, texts: list[str], name: str = "shared", *, project: bool = True) -> Path:
    """A genuine export of a session holding one corpus of `texts` with its tfidf-svd embedding (and PCA map)."""
    import embedlab.tasks  # noqa: F401
    from embedlab.embedding.space import EmbeddingSpace
    from embedlab.jobs import run_job
    from storage import connect
    from storage.transfer import export_session
    from tests.builders import stored_corpus

    db = connect(tmp_path / f"{name}-src.sqlite")
    sid, info = stored_corpus(db, texts, session=name, name=name)
    EmbeddingSpace.for_corpus(db, info.id, "tfidf-svd").ensure()
    if project:
        run_job(db, "project", {"corpus_id": info.id, "model": "tfidf-svd", "method": "pca"}, session_id=sid)
    out = export_session(db, name, tmp_path / f"{name}.sqlite")
    db.close()
    return out


def _edit(path: Path, sql: str, *params) -> None:
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute(sql, params)
    raw.close()


SEED_TEXTS = ["apples and pears grow on trees", "the river flows to the sea", "stars shine over the mountains"]


def _victim_lookup(db_path: Path) -> tuple[int, int]:
    from embedlab.embedding.space import EmbeddingSpace
    from storage import connect
    from storage.corpora import find_corpus
    from storage.sessions import require_session

    db = connect(db_path)
    try:
        info = find_corpus(db, require_session(db, "keep"), "three")
        meta = EmbeddingSpace.for_corpus(db, info.id, "tfidf-svd").stored()
        return None if meta is None else (meta.rows, meta.cols)
    finally:
        db.close()


@pytest.mark.parametrize("victim_embedded", [False, True])
def test_import_of_an_embedding_cut_to_one_row_is_refused(capsys, seeded, tmp_path, victim_embedded):
    """The issue's attack: a genuine export of the same texts, its embedding cut to 1 row, the cache key kept; the
    other session's corpus not embedded yet (the file's matrix would have been the first under that key), or
    embedded."""
    if not victim_embedded:
        _edit(seeded, "DELETE FROM matrices")
    out = _export(tmp_path, SEED_TEXTS, project=False)
    raw = sqlite3.connect(out, isolation_level=None)
    mid, cols = raw.execute("SELECT id, cols FROM matrices WHERE kind = 'embedding'").fetchone()
    raw.execute("DELETE FROM matrix_chunks WHERE matrix_id = ? AND chunk_no > 0", [mid])
    raw.execute("UPDATE matrix_chunks SET data = substr(data, 1, ?) WHERE matrix_id = ?", [cols * 4, mid])
    raw.execute("UPDATE matrices SET rows = 1 WHERE id = ?", [mid])
    raw.close()
    before = _victim_lookup(seeded)
    line = refused(capsys, seeded, "sessions", "import", out, contains=("has 1 rows", "3 documents"))
    assert "embedding:" in line
    assert _victim_lookup(seeded) == before
    assert before is None if not victim_embedded else before[0] == 3


def test_import_with_a_forged_content_hash_is_refused(capsys, seeded, tmp_path):
    """A one-document corpus that claims the 3-document corpus's content hash (and an embedding keyed for it)."""
    from embedlab.corpus import content_hash

    out = _export(tmp_path, ["a single document here"], project=False)
    victim = content_hash(SEED_TEXTS)
    _edit(out, "UPDATE corpora SET content_hash = ?", victim)
    _edit(out, "UPDATE matrices SET content_hash = ?", victim)
    refused(capsys, seeded, "sessions", "import", out, contains=("content hash does not match its documents",))
    assert _victim_lookup(seeded)[0] == 3


def test_import_with_a_key_that_does_not_match_its_identity_is_refused(capsys, seeded, tmp_path):
    """The embedding claims another embedder identity while keeping the key: it could answer for other data."""
    out = _export(tmp_path, SEED_TEXTS, project=False)
    raw = sqlite3.connect(out, isolation_level=None)
    params = json.loads(raw.execute("SELECT params_json FROM matrices WHERE kind = 'embedding'").fetchone()[0])
    params["n_components"] = 999
    raw.execute("UPDATE matrices SET params_json = ? WHERE kind = 'embedding'", [json.dumps(params)])
    raw.close()
    refused(capsys, seeded, "sessions", "import", out, contains=("cache key does not match",))


def test_import_with_a_projection_key_of_other_parameters_is_refused(capsys, seeded, tmp_path):
    out = _export(tmp_path, SEED_TEXTS)
    raw = sqlite3.connect(out, isolation_level=None)
    params = json.loads(raw.execute("SELECT params_json FROM matrices WHERE kind = 'projection'").fetchone()[0])
    params["method"] = "umap"           # claims to be a UMAP map under the PCA map's key
    raw.execute("UPDATE matrices SET params_json = ? WHERE kind = 'projection'", [json.dumps(params)])
    raw.close()
    refused(capsys, seeded, "sessions", "import", out, contains=("projection parameters",))


def test_import_of_a_matrix_of_another_corpus_is_refused(capsys, seeded, tmp_path):
    """Two corpora in the file: the first corpus's embedding re-pointed at the second (other texts)."""
    from storage import connect
    from storage.corpora import save_corpus
    from storage.sessions import require_session
    from storage.transfer import export_session
    from tests.builders import make_corpus

    src_path = tmp_path / "two-src.sqlite"
    _export(tmp_path, SEED_TEXTS, name="two", project=False)
    db = connect(src_path)
    save_corpus(db, require_session(db, "two"), make_corpus(["other words entirely", "more of them", "and a third"],
                                                            name="other"))
    out = export_session(db, "two", tmp_path / "two-b.sqlite")
    db.close()
    raw = sqlite3.connect(out, isolation_level=None)
    other = raw.execute("SELECT id FROM corpora WHERE name = 'other'").fetchone()[0]
    raw.execute("UPDATE matrices SET corpus_id = ?", [other])
    raw.close()
    refused(capsys, seeded, "sessions", "import", out, contains=("computed for other texts",))


def test_import_of_a_corpus_without_documents_is_refused(capsys, seeded, tmp_path):
    out = _export(tmp_path, ["just one document"], project=False)
    raw = sqlite3.connect(out, isolation_level=None)
    raw.execute("DELETE FROM matrix_chunks")
    raw.execute("DELETE FROM matrices")
    raw.execute("DELETE FROM documents")
    raw.execute("UPDATE corpora SET n_docs = 0")
    raw.close()
    refused(capsys, seeded, "sessions", "import", out, contains=("has no documents",))


def test_import_of_bad_token_offsets_is_refused(capsys, seeded, tmp_path):
    """Token embeddings with offsets that do not run from 0 to the token count."""
    from embedlab.corpus import content_hash
    from storage import connect
    from storage.matrices import save_matrix
    from storage.sessions import require_session  # noqa: F401
    from storage.cache_keys import identity_cache_key
    from storage.transfer import export_session
    from tests.builders import stored_corpus

    db = connect(tmp_path / "tok-src.sqlite")
    _, info = stored_corpus(db, ["one doc", "two doc"], session="tok", name="tok")
    identity = {"embedder": "fake", "version": 1}
    key = identity_cache_key(identity, content_hash(["one doc", "two doc"]), "tokens")
    save_matrix(db, np.ones((5, 4), np.float32), cache_key=key, kind="tokens", dtype="float16", params=identity,
                content_hash=info.content_hash, corpus_id=info.id)
    save_matrix(db, np.array([[0], [3], [4]], np.int64), cache_key=key + ":offsets", kind="token_offsets",
                dtype="int64", params=identity, content_hash=info.content_hash, corpus_id=info.id)
    out = export_session(db, "tok", tmp_path / "tok.sqlite")
    db.close()
    line = refused(capsys, seeded, "sessions", "import", out)
    assert "token offsets do not run from 0 to the 5 token rows" in line


def test_an_export_made_before_the_label_names_migration_still_imports(capsys, seeded, tmp_path):
    out = _export(tmp_path, ["an older export", "made at schema version 1"], project=False)
    raw = sqlite3.connect(out, isolation_level=None)
    raw.execute("DROP TABLE IF EXISTS label_names")
    raw.execute("PRAGMA user_version = 1")
    raw.close()
    rc, lines, out_text, _ = cli(capsys, "--db", seeded, "sessions", "import", out)
    assert rc == 0 and lines == [] and "imported session 'shared'" in out_text
    _edit(out, "PRAGMA user_version = 7")
    refused(capsys, seeded, "sessions", "import", out, contains=("schema version 7 is not supported",))


def test_import_keys_are_recomputed_and_existing_matrices_kept(capsys, seeded, tmp_path):
    """By construction: every imported matrix sits under the key recomputed from its identity and its corpus's
    recomputed texts; a key the target holds already keeps the target's matrix (same id, same bytes)."""
    from embedlab.embedding.cache import cache_key
    from embedlab.embedding.embedders import get_embedder
    from embedlab.tasks import projection_key
    from storage import connect
    from storage.matrices import list_matrices, load_matrix
    from storage.sessions import list_sessions
    from storage.cache_keys import identity_cache_key, projection_cache_key

    out = _export(tmp_path, SEED_TEXTS)
    db = connect(seeded)
    before = {r[0]: r[1] for r in db.execute("SELECT cache_key, id FROM matrices")}
    before_bytes = {m.cache_key: load_matrix(db, m).tobytes()
                    for m in list_matrices(db, db.execute("SELECT content_hash FROM corpora").fetchone()[0])}
    db.close()
    rc, lines, stdout, _ = cli(capsys, "--db", seeded, "sessions", "import", out)
    assert rc == 0 and lines == [] and "imported session 'shared'" in stdout
    db = connect(seeded)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert {r[0]: r[1] for r in db.execute("SELECT cache_key, id FROM matrices")} == before  # nothing new
        for m in list_matrices(db, db.execute("SELECT content_hash FROM corpora LIMIT 1").fetchone()[0]):
            assert load_matrix(db, m).tobytes() == before_bytes[m.cache_key]
        for cid, h in db.execute("SELECT id, content_hash FROM corpora").fetchall():
            emb_key = cache_key(get_embedder("tfidf-svd"), h)
            for m in list_matrices(db, h):
                if m.kind == "embedding":
                    assert m.cache_key == identity_cache_key(m.params, h, "embedding") == emb_key
                else:  # the importer's projection key is the one the Atlas and the CLI look up
                    assert m.cache_key == projection_cache_key(emb_key, m.params) == \
                        projection_key(db, cid, "tfidf-svd", m.params)
        assert [s.line() for s in list_sessions(db)][0].startswith("keep\t")
    finally:
        db.close()


# ============================================================ 2. ids kept exactly as written


def _stored_ids(db: Path, session: str = "s") -> list[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [r[0] for r in conn.execute(
            "SELECT d.doc_id FROM documents d JOIN corpora c ON c.id = d.corpus_id JOIN sessions s "
            "ON s.id = c.session_id WHERE s.name = ? ORDER BY d.idx", [session])]
    finally:
        conn.close()


def test_jsonl_19_digit_ids_with_a_missing_value_stay_exact(capsys, tmp_path):
    ids = [1234567890123456789, 9007199254740993, 999999999999999999]
    lines = [json.dumps({"id": i, "text": f"document {n}"}) for n, i in enumerate(ids)]
    lines.insert(1, json.dumps({"id": None, "text": ""}))        # skipped: no text, no id
    (tmp_path / "ids.jsonl").write_text("\n".join(lines) + "\n")
    db = tmp_path / "db.sqlite"
    rc, err, out, _ = cli(capsys, "--db", db, "ingest", tmp_path / "ids.jsonl", "--session", "s", "--id-col", "id")
    assert rc == 0 and err == []
    assert _stored_ids(db) == [str(i) for i in ids]
    assert db_state(db)["integrity"] == [("ok",)]


def test_parquet_and_json_ids_keep_their_literal_form(capsys, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": pa.array([1234567890123456789, None, 3], pa.int64()), "text": ["a b", None, "c d"]})
    pq.write_table(table, tmp_path / "ids.parquet")
    (tmp_path / "ids.json").write_text('[{"id": 1.50, "text": "x y"}, {"id": 1e3, "text": "z w"},'
                                       ' {"id": "007", "text": "v u"}]')
    db = tmp_path / "db.sqlite"
    for name, session in (("ids.parquet", "p"), ("ids.json", "j")):
        rc, err, _, _ = cli(capsys, "--db", db, "ingest", tmp_path / name, "--session", session, "--id-col", "id")
        assert rc == 0 and err == []
    assert _stored_ids(db, "p") == ["1234567890123456789", "3"]
    assert _stored_ids(db, "j") == ["1.50", "1e3", "007"]


def test_csv_ids_are_the_cells_as_written_and_an_empty_id_is_refused(capsys, tmp_path):
    (tmp_path / "ids.csv").write_text("id,text\n007,first doc\n1e3,second doc\n12345678901234567890123,third\n")
    db = tmp_path / "db.sqlite"
    rc, err, _, _ = cli(capsys, "--db", db, "ingest", tmp_path / "ids.csv", "--session", "s")
    assert rc == 0 and err == []
    assert _stored_ids(db) == ["007", "1e3", "12345678901234567890123"]
    (tmp_path / "bad.csv").write_text("id,text\n1,first doc\n,second doc\n")
    refused(capsys, db, "ingest", tmp_path / "bad.csv", "--session", "new", contains=("bad.csv, row 2", "id is empty"))


# ============================================================ 3. encodings: detected, or refused naming them


def _stored_texts(db: Path, session: str = "s") -> list[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [r[0] for r in conn.execute(
            "SELECT d.text FROM documents d JOIN corpora c ON c.id = d.corpus_id JOIN sessions s "
            "ON s.id = c.session_id WHERE s.name = ? ORDER BY d.idx", [session])]
    finally:
        conn.close()


LEGACY = {
    "cp1251": ["Привет мир, как дела у тебя сегодня?", "Это тестовый документ на русском языке"],
    "gbk": ["你好世界，这是一个测试文档。", "我们正在测试编码检测，这很重要。"],
    "shift_jis": ["こんにちは世界、これはテスト文書です。", "エンコーディングの検出をテストしています。"],
    "cp1252": ["Le café est très bon à Noël", "Où est la bibliothèque? Ça va “bien” – merci"],
    "cp1250": ["Přes řeku vede most, čeština je krásná", "Příliš žluťoučký kůň úpěl ďábelské ódy"],
}


@pytest.mark.parametrize("encoding", list(LEGACY))
def test_legacy_encodings_are_detected_not_garbled(capsys, tmp_path, encoding):
    texts = LEGACY[encoding]
    path = tmp_path / f"{encoding}.csv"
    path.write_bytes(("id,text\n" + "".join(f'{i},"{t}"\n' for i, t in enumerate(texts))).encode(encoding))
    db = tmp_path / "db.sqlite"
    rc, err, _, _ = cli(capsys, "--db", db, "ingest", path, "--session", "s")
    assert rc == 0 and err == []
    assert _stored_texts(db) == texts


def test_ambiguous_encoding_is_refused_naming_the_file_and_candidates(capsys, tmp_path):
    path = tmp_path / "short.csv"
    path.write_bytes("text\nПривет мир\n".encode("cp1251"))
    db = tmp_path / "db.sqlite"
    line = refused(capsys, db, "ingest", path, "--session", "s", contains=("short.csv", "cp1251", "--encoding"))
    assert "save it as UTF-8" in line
    assert not db.exists() or db_state(db)["counts"]["sessions"] == 0
    rc, err, _, _ = cli(capsys, "--db", db, "ingest", path, "--session", "s", "--encoding", "cp1251")
    assert rc == 0 and err == [] and _stored_texts(db) == ["Привет мир"]


def test_valid_utf8_stays_utf8_and_a_wrong_named_encoding_is_refused(capsys, tmp_path):
    text = "Ã© looks like mojibake but is what the file says, café ✓"
    path = tmp_path / "u.csv"
    path.write_text(f'text\n"{text}"\n', encoding="utf-8")
    db = tmp_path / "db.sqlite"
    rc, err, _, _ = cli(capsys, "--db", db, "ingest", path, "--session", "s")
    assert rc == 0 and err == [] and _stored_texts(db) == [text]
    bad = tmp_path / "bad.csv"
    bad.write_bytes("text\n中文\n".encode("utf-8"))
    refused(capsys, db, "ingest", bad, "--session", "t", "--encoding", "ascii", contains=("bad.csv", "not valid ascii"))
    refused(capsys, db, "ingest", bad, "--session", "t", "--encoding", "klingon", contains=("unknown encoding",))


# ============================================================ 4. a foreign SQLite file is never rewritten


def _foreign(path: Path, user_version: int = 0) -> Path:
    raw = sqlite3.connect(path, isolation_level=None)
    raw.executescript("CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT); "
                      "INSERT INTO contacts (name) VALUES ('Ada'), ('Grace'); CREATE INDEX by_name ON contacts(name);"
                      f"PRAGMA user_version = {user_version};")
    raw.close()
    return path


@pytest.mark.parametrize("user_version", [0, 1])
def test_read_only_command_on_a_foreign_sqlite_file_changes_nothing(capsys, tmp_path, user_version):
    path = _foreign(tmp_path / "other-app.sqlite", user_version)
    data = path.read_bytes()
    refused(capsys, path, "sessions", "list", contains=("not a valid EmbedLab database", "left unchanged"))
    assert path.read_bytes() == data                          # no schema objects, no WAL switch
    assert sorted(os.listdir(tmp_path)) == ["other-app.sqlite"]   # no -wal / -shm
    raw = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    raw.close()


def test_write_command_on_foreign_or_non_sqlite_files_changes_nothing(capsys, tmp_path):
    path = _foreign(tmp_path / "app.db")
    (tmp_path / "a.csv").write_text("text\nhello world\n")
    data = path.read_bytes()
    refused(capsys, path, "ingest", tmp_path / "a.csv", "--session", "s")
    assert path.read_bytes() == data
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes, not a database\n" * 50)
    before = notes.read_bytes()
    rc, lines, _, _ = cli(capsys, "--db", notes, "sessions", "list")
    assert_one_line(lines, rc, contains=("not a valid EmbedLab database",))
    assert notes.read_bytes() == before
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")                                    # an empty file is ours to set up
    rc, lines, _, _ = cli(capsys, "--db", empty, "sessions", "list")
    assert rc == 0 and lines == []


# ============================================================ 5. bounds: columns, metadata keys, non-regular files


def test_a_csv_of_100000_columns_is_refused_fast(capsys, seeded, tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(100_000)) + "\n" + ",".join("x" * 20) + "\n")
    refused(capsys, seeded, "ingest", path, "--session", "keep",
            contains=("wide.csv", "100,000 columns", "limit of 1,000"))


def test_sparse_jsonl_keys_and_too_many_metadata_columns_are_refused(capsys, seeded, tmp_path):
    path = tmp_path / "sparse.jsonl"
    path.write_text("".join(json.dumps({"text": f"doc {i}", f"k{2 * i}": i, f"k{2 * i + 1}": "v"}) + "\n"
                            for i in range(5_000)))
    refused(capsys, seeded, "ingest", path, "--session", "keep",
            contains=("sparse.jsonl", "distinct keys", "1,000"))
    wide = tmp_path / "sixty.csv"
    wide.write_text("text," + ",".join(f"m{i}" for i in range(60)) + "\n" +
                    "".join(f"doc number {r}," + ",".join(str(r) for _ in range(60)) + "\n" for r in range(5)))
    refused(capsys, seeded, "ingest", wide, "--session", "keep", contains=("60 metadata columns", "limit of 50"))
    rc, lines, _, _ = cli(capsys, "--db", seeded, "ingest", wide, "--session", "keep", "--meta-cols", "m1,m2")
    assert rc == 0 and lines == []


def test_fifo_device_and_folder_are_refused_unopened(capsys, seeded, tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    # in a child process: were the FIFO opened, the command would wait for a writer forever
    rc, lines, elapsed = run_module(["--db", seeded, "ingest", fifo, "--session", "keep"],
                                    clean_env(HOME=str(tmp_path), HF_HUB_OFFLINE="1"), timeout=60)
    assert_one_line(lines, rc, contains=("pipe.csv", "FIFO"))
    refused(capsys, seeded, "ingest", "/dev/zero", "--session", "keep", contains=("device",))
    refused(capsys, seeded, "ingest", tmp_path, "--session", "keep", contains=("folder",))


# ============================================================ 6. --max-mb bounds decoded content in every reader


def test_parquet_that_expands_past_max_mb_is_refused(capsys, seeded, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    for name, column in (("dict.parquet", pa.array(["x" * 3000] * 100_000).dictionary_encode()),
                         ("plain.parquet", pa.array(["y" * 3000] * 100_000))):
        pq.write_table(pa.table({"text": column}), tmp_path / name, compression="zstd")
        assert (tmp_path / name).stat().st_size < 200_000
        refused(capsys, seeded, "ingest", tmp_path / name, "--session", "keep", "--max-mb", "5",
                contains=(name, "decoded", "5 MB"))


def _lying_zip(size: int) -> bytes:
    """One .txt member of `size` bytes whose headers (local and central) say it is 10 bytes."""
    buf = io.BytesIO()
    block = b"a" * (1 << 20)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("a.txt", "w", force_zip64=True) as member:
        for _ in range(size // len(block)):
            member.write(block)
    data = bytearray(buf.getvalue())
    struct.pack_into("<I", data, data.rfind(b"PK\x01\x02") + 24, 10)
    struct.pack_into("<I", data, data.find(b"PK\x03\x04") + 22, 10)
    return bytes(data)


def test_zip_whose_headers_lie_is_refused_in_bounded_memory(tmp_path, seeded):
    (tmp_path / "lie.zip").write_bytes(_lying_zip(1_000_000_000))   # ~1 MB on disk, 1 GB inflated
    # many honest members whose real total is over the limit: counted as they are inflated
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(8):
            zf.writestr(f"d{i}.txt", b"word " * 300_000)
    (tmp_path / "many.zip").write_bytes(buf.getvalue())
    code = ("import re, sys\nfrom embedlab.cli import main\nrc = main(sys.argv[1:])\n"   # peak RSS of this process
            "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\nsys.exit(rc)\n")
    for name, limit_mb in (("lie.zip", 200), ("many.zip", 5)):
        before = db_state(seeded)
        proc = subprocess.run([PYTHON, "-c", code, "--db", str(seeded), "ingest", str(tmp_path / name), "--session",
                               "keep", "--max-mb", str(limit_mb)], cwd=ROOT, capture_output=True, text=True,
                              timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        lines = proc.stderr.splitlines()
        assert_one_line(lines, proc.returncode, contains=(name,))
        assert int(proc.stdout.split()[-1]) < 700 * 1024, proc.stdout     # peak RSS in KB: never the 1 GB
        assert db_state(seeded) == before


def test_gzip_over_max_mb_and_max_mb_values_refused(capsys, seeded, tmp_path):
    (tmp_path / "big.csv.gz").write_bytes(gzip.compress(b"text\n" + b"many words here\n" * 700_000))
    refused(capsys, seeded, "ingest", tmp_path / "big.csv.gz", "--session", "keep", "--max-mb", "5",
            contains=("decompressed",))
    (tmp_path / "ok.csv").write_text("text\nhello world\n")
    for value in ("nan", "inf", "-1", "0", "abc", "-inf", "1e-9"):
        refused(capsys, seeded, "ingest", tmp_path / "ok.csv", "--session", "keep", f"--max-mb={value}",
                contains=("--max-mb",))


# ============================================================ 7. a locked database: busy said, and bounded


HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
if len(sys.argv) > 3:   # pose as a running EmbedLab job of this process
    import os, socket
    conn.execute("INSERT INTO jobs (kind, status, owner, started_at) VALUES ('embed', 'running', ?, 't')",
                 [f"{socket.gethostname()}:{os.getpid()}"])
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


LOCK_WAIT_S = 5.0      # the documented bound: "gave up after 5 s"


def _hold_lock(db: Path, seconds: float, as_job: bool = False) -> subprocess.Popen:
    proc = subprocess.Popen([PYTHON, "-c", HOLD_LOCK, str(db), str(seconds), *(["job"] if as_job else [])],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


@pytest.mark.parametrize("as_job, wait_s", [(False, None), (True, 1)])   # the default wait, and a configured one
def test_locked_database_says_busy_and_who_within_bounds(capsys, seeded, tmp_path, monkeypatch, as_job, wait_s):
    if wait_s is not None:
        monkeypatch.setenv("EMBEDLAB_LOCK_WAIT_S", str(wait_s))
    wait = wait_s or LOCK_WAIT_S
    (tmp_path / "a.csv").write_text("text\nhello world\n")
    holder = _hold_lock(seeded, 60, as_job)
    try:
        before = db_state(seeded)         # a WAL reader is not blocked by the writer
        rc, lines, _, elapsed = cli(capsys, "--db", seeded, "ingest", tmp_path / "a.csv", "--session", "new")
        line = assert_one_line(lines, rc,
                               contains=("database is busy", f"pid {holder.pid}", f"gave up after {wait:g} s"))
        assert elapsed >= wait - 0.1, elapsed     # it waited (how long at most: the message says)
        if as_job:
            assert "running EmbedLab job" in line and "(embed)" in line
        rc, lines, out, _ = cli(capsys, "--db", seeded, "sessions", "list")   # reads go on meanwhile (not busy)
        assert rc == 0 and lines == [] and out.startswith("keep\t")
        assert db_state(seeded) == before
    finally:
        holder.kill()
        holder.wait()


def test_lock_released_in_time_lets_the_command_finish_and_wait_is_configurable(capsys, seeded, tmp_path,
                                                                                monkeypatch):
    (tmp_path / "a.csv").write_text("text\nhello world\n")
    holder = _hold_lock(seeded, 1.5)
    try:
        rc, lines, out, _ = cli(capsys, "--db", seeded, "ingest", tmp_path / "a.csv", "--session", "new")
        assert rc == 0 and lines == [] and "ingested 1 documents" in out    # waited for the lock, within its 5 s
    finally:
        holder.wait()
    monkeypatch.setenv("EMBEDLAB_LOCK_WAIT_S", "1")
    holder = _hold_lock(seeded, 60)
    try:
        before = db_state(seeded)
        rc, lines, _, elapsed = cli(capsys, "--db", seeded, "ingest", tmp_path / "a.csv", "--session", "other")
        assert_one_line(lines, rc, contains=("database is busy", "gave up after 1 s"))
        assert elapsed >= 0.9, elapsed            # the configured wait was waited
        assert db_state(seeded) == before
    finally:
        holder.kill()
        holder.wait()


# ============================================================ 8. a hub model without network fails fast, one line


class _BlackHole:
    """A TCP server that accepts connections and never answers (a black-holed proxy)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_hub_model_without_network_fails_within_10_s(seeded, tmp_path):
    """As a user's shell runs it (`env -i`): no HF_HUB_OFFLINE from a Makefile, an empty Hugging Face cache."""
    before = db_state(seeded)
    env = clean_env(HOME=str(tmp_path))
    rc, lines, elapsed = run_module(["--db", seeded, "embed", "--session", "keep", "--corpus", "three", "--model",
                                     "someorg/not-a-cached-model"], env, timeout=60)
    assert_one_line(lines, rc, contains=("not available offline", "EMBEDLAB_ALLOW_DOWNLOAD=1"))
    assert db_state(seeded) == before          # not even a failed job row (a hang: run_module's 60 s timeout)


def test_bundled_model_still_loads_offline_in_a_bare_shell(tmp_path):
    """The default model is a local folder: it loads under `env -i` (offline), quietly (no progress bars)."""
    db = tmp_path / "db.sqlite"
    (tmp_path / "a.csv").write_text("text\nhello world\nsecond document here\n")
    env = clean_env(HOME=str(tmp_path))
    assert run_module(["--db", db, "ingest", tmp_path / "a.csv", "--session", "s"], env)[0] == 0
    rc, lines, _ = run_module(["--db", db, "embed", "--session", "s", "--corpus", "a"], env, timeout=300)
    assert rc == 0, lines
    assert all(ln.startswith("embed: ") for ln in lines), lines      # progress only: no warnings, no bars


@pytest.mark.parametrize("proxy", ["refused", "black hole"])
def test_hub_model_with_downloads_allowed_but_no_hub_fails_within_10_s(seeded, tmp_path, proxy):
    hole = _BlackHole() if proxy == "black hole" else None
    port = hole.port if hole else _free_port()
    try:
        before = db_state(seeded)
        url = f"http://127.0.0.1:{port}"
        env = clean_env(HOME=str(tmp_path), EMBEDLAB_ALLOW_DOWNLOAD="1", HTTPS_PROXY=url, https_proxy=url,
                        HTTP_PROXY=url, http_proxy=url)
        rc, lines, elapsed = run_module(["--db", seeded, "embed", "--session", "keep", "--corpus", "three",
                                         "--model", "someorg/not-a-cached-model"], env, timeout=90)
        assert_one_line(lines, rc, contains=("did not answer within 5 s",))
        # the 5 s probe gave up (the message says so); a hang would end at run_module's timeout
        assert db_state(seeded) == before
    finally:
        if hole:
            hole.close()


# ============================================================ 9. parser failures: exit 2 naming file and row


def test_deep_json_huge_integer_and_lone_surrogate_name_file_and_row(capsys, seeded, tmp_path):
    cases = {
        "deep.json": ("[" * 100_000 + "]" * 100_000, ("deep.json", "nested too deeply")),
        "deep.jsonl": ('{"text": "a"}\n{"text": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
                       ("deep.jsonl, row 2", "nested too deeply")),
        "bigint.jsonl": ('{"text": "a"}\n{"text": "b", "n": ' + "7" * 5000 + "}\n",
                         ("bigint.jsonl, row 2", "5,000 digits")),
        "bigint.json": ('[{"text": "a"},\n{"text": "b", "n": ' + "7" * 5000 + "}]",
                        ("bigint.json", "line 2", "5,000 digits")),
        "surrogate.jsonl": ('{"text": "fine"}\n{"text": "broken \\ud800 here"}\n',
                            ("surrogate.jsonl, row 2", "lone surrogate")),
    }
    for name, (body, contains) in cases.items():
        (tmp_path / name).write_text(body)
        refused(capsys, seeded, "ingest", tmp_path / name, "--session", "keep", contains=contains)
    (tmp_path / "pair.jsonl").write_text('{"text": "a pair \\ud83d\\ude00 is fine"}\n')
    rc, lines, _, _ = cli(capsys, "--db", seeded, "ingest", tmp_path / "pair.jsonl", "--session", "keep")
    assert rc == 0 and lines == [] and "a pair 😀 is fine" in _stored_texts(seeded, "keep")


@pytest.mark.parametrize("score", ["inf", "nan", "1e400"])
def test_infinite_qrels_score_is_refused_naming_file_and_row(capsys, seeded, tmp_path, score):
    docs = [{"_id": f"d{i}", "title": "", "text": f"document {i} about topic {i % 3}"} for i in range(6)]
    queries = [{"_id": f"q{i}", "text": f"topic {i}"} for i in range(3)]
    beir = write_beir(tmp_path / "beir", docs, queries, f"query-id\tcorpus-id\tscore\nq0\td0\t1\nq1\td1\t{score}\n")
    before = db_state(seeded)
    rc, lines, _, _ = cli(capsys, "--db", seeded, "bench-retrieval", "--beir", beir, "--methods", "bm25",
                                "--model", "tfidf-svd", "--session", "keep")
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert rc == 2 and len(errors) == 1 and not any("Traceback" in ln for ln in lines), lines
    assert "qrels/test.tsv, row 3" in errors[0]
    assert db_state(seeded) == before


# ============================================================ 10. the job runner: one line, no traceback


def test_stop_word_only_corpus_with_tfidf_is_refused_without_traceback(capsys, seeded, tmp_path):
    (tmp_path / "stop.csv").write_text("text\nthe and of\nit is the\nwe are to\n")
    rc, lines, _, _ = cli(capsys, "--db", seeded, "ingest", tmp_path / "stop.csv", "--session", "keep")
    assert rc == 0
    refused(capsys, seeded, "embed", "--session", "keep", "--corpus", "stop", "--model", "tfidf-svd",
            contains=("empty vocabulary",))
    refused(capsys, seeded, "project", "--session", "keep", "--corpus", "stop", "--model", "tfidf-svd",
            contains=("empty vocabulary",))


def test_invalid_projection_options_are_refused_before_any_job(capsys, seeded):
    refused(capsys, seeded, "project", "--session", "keep", "--corpus", "three", "--seed", "-1",
            contains=("seed",))
    refused(capsys, seeded, "project", "--session", "keep", "--corpus", "three", "--seed", str(2**40),
            contains=("seed",))


def _one_column_corpus(capsys, db: Path, tmp_path: Path) -> None:
    words = ["alpha", "beta", "alpha beta", "alpha alpha", "beta beta", "alpha beta beta", "beta alpha alpha",
             "alpha", "beta", "alpha beta alpha"]
    (tmp_path / "one.csv").write_text("text\n" + "\n".join(words) + "\n")
    assert cli(capsys, "--db", db, "ingest", tmp_path / "one.csv", "--session", "keep")[0] == 0
    rc, lines, out, _ = cli(capsys, "--db", db, "embed", "--session", "keep", "--corpus", "one", "--model",
                            "tfidf-svd")
    assert rc == 0 and " x 1 " in out


def test_tsne_on_a_one_column_embedding_succeeds_quietly(capsys, seeded, tmp_path):
    _one_column_corpus(capsys, seeded, tmp_path)
    rc, lines, out, _ = cli(capsys, "--db", seeded, "project", "--session", "keep", "--corpus", "one", "--model",
                            "tfidf-svd", "--method", "tsne")
    assert rc == 0, lines     # t-SNE starts at random below 2 input dimensions
    assert not any("Traceback" in ln or ln.startswith("error: ") for ln in lines), lines
    assert "projected corpus 'one' with tsne: 10 x 2 " in out


@pytest.mark.parametrize("when", [0.25, 0.5])
def test_session_deleted_while_its_embedding_job_runs(capsys, seeded, monkeypatch, when):
    """The job ends as cancelled with one clear line (an IntegrityError or a vanished job row underneath)."""
    import embedlab.tasks  # noqa: F401
    from embedlab.errors import Cancelled
    from embedlab.jobs import run_job
    from storage import connect
    from storage.corpora import save_corpus
    from storage.sessions import delete_session, ensure_session
    from tests.builders import make_corpus

    monkeypatch.setenv("EMBEDLAB_CHUNK_ROWS", "2")
    db = connect(seeded)
    sid = ensure_session(db, "doomed")
    info = save_corpus(db, sid, make_corpus([f"document {i} about things number {i}" for i in range(8)],
                                            name="doomed"))
    other = connect(seeded)

    def progress(fraction: float, message: str) -> None:
        # 0.25: while the first chunk is embedded (nothing stored yet); 0.5: after the first chunk was stored
        if fraction >= when and other.execute("SELECT 1 FROM sessions WHERE name = 'doomed'").fetchone():
            delete_session(other, "doomed")

    with pytest.raises(Cancelled, match="its session was deleted while it ran"):
        run_job(db, "embed", {"corpus_id": info.id, "model": "tfidf-svd"}, session_id=sid, progress=progress)
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert db.execute("SELECT COUNT(*) FROM sessions WHERE name = 'doomed'").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM matrices WHERE corpus_id IS NULL AND complete = 0").fetchone()[0] == 0
    other.close()
    db.close()


# ============================================================ 11. Excel-for-Mac CSV: CR line ends, ';'


def test_excel_for_mac_csv_with_cr_line_ends_and_semicolons(capsys, tmp_path):
    rows = [("hello, world", "a"), ("second, with a comma", "b"), ("third; quoted", "c")]
    body = "text;label\r" + "".join(f'"{t}";{lab}\r' if ";" in t else f"{t};{lab}\r" for t, lab in rows)
    (tmp_path / "mac.csv").write_bytes(body.encode("cp1252"))
    (tmp_path / "mac-utf8.csv").write_bytes("id;text\r1;café, crème\r2;naïve, déjà vu\r".encode())
    db = tmp_path / "db.sqlite"
    rc, lines, out, _ = cli(capsys, "--db", db, "ingest", tmp_path / "mac.csv", "--session", "s")
    assert rc == 0 and lines == [] and "label column 'label'" in out
    assert _stored_texts(db) == [t for t, _ in rows]
    rc, lines, _, _ = cli(capsys, "--db", db, "ingest", tmp_path / "mac-utf8.csv", "--session", "m")
    assert rc == 0 and lines == []
    assert _stored_texts(db, "m") == ["café, crème", "naïve, déjà vu"] and _stored_ids(db, "m") == ["1", "2"]


# ============================================================ 12. nothing written on refusal


def test_refused_ingest_leaves_no_new_session(capsys, seeded, tmp_path):
    (tmp_path / "a.csv").write_text("text\nhello world\n")
    refused(capsys, seeded, "ingest", tmp_path / "a.csv", "--session", "brand new", "--name", "bad\x07name",
            contains=("control character",))
    (tmp_path / "empty.csv").write_text("text\n")
    refused(capsys, seeded, "ingest", tmp_path / "empty.csv", "--session", "brand new", contains=("no documents",))
    refused(capsys, seeded, "ingest", tmp_path / "a.csv", "--session", " ", contains=("session name is empty",))


def test_refused_save_rolls_back_the_new_session(seeded):
    from storage import StorageError, connect
    from storage.corpora import save_corpus_in_session
    from tests.builders import make_corpus

    before = db_state(seeded)
    db = connect(seeded)
    bad = make_corpus(["fine text", "broken \ud800 text"], name="c")
    with pytest.raises(StorageError, match="not valid Unicode"):
        save_corpus_in_session(db, "brand new", bad)
    db.close()
    assert db_state(seeded) == before


def test_output_paths_are_checked_before_any_work(capsys, seeded, tmp_path):
    docs = [{"_id": f"d{i}", "title": "", "text": f"document {i} about topic {i % 3}"} for i in range(6)]
    beir = write_beir(tmp_path / "beir", docs, [{"_id": "q0", "text": "topic 0"}], [("q0", "d0", 1)])
    afile = tmp_path / "afile.txt"
    afile.write_text("x")
    for target, why in ((tmp_path, "is a folder"), (afile / "out.json", "is a file, not a folder")):
        refused(capsys, seeded, "bench-retrieval", "--beir", beir, "--methods", "bm25", "--model", "tfidf-svd",
                "--session", "keep", "--json", target, contains=(why,))
        refused(capsys, seeded, "diagnostics", "--session", "keep", "--corpus", "three", "--model", "tfidf-svd",
                "--json", target, contains=(why,))
    refused(capsys, seeded, "sessions", "export", "keep", tmp_path, contains=("is a folder",))
