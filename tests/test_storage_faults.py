"""Storage under faults: concurrent processes, read-only files, a full disk, a killed writer; the matrix codec."""
from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing as mp
import os
import shutil
import signal
import sqlite3
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import sqlite_utils
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from storage import StorageError, connect
from storage import matrices as M
from storage.db import explain_sqlite_error
from storage.sessions import ensure_session, list_sessions, save_run

SPAWN = mp.get_context("spawn")
N_RUNS = 200


def _integrity(db) -> list:
    return db.execute("PRAGMA integrity_check").fetchall()


# ------------------------------------------------------------------------------------------- child processes
# (top level: the spawn start method imports this module in the child)

def _write_runs(path: str, session: str, worker: int, n: int, ready, results) -> None:
    db = connect(path)
    sid = ensure_session(db, session)
    ready.wait(60)
    t0 = time.time()
    for i in range(n):
        save_run(db, sid, f"worker-{worker}", {"worker": worker, "i": i}, {"value": i / 7})
        time.sleep(0.0005)  # a little work between writes, so the writers take turns rather than run in bulk
    results.put(("writer", worker, t0, time.time()))
    db.close()


def _read_while_writing(path: str, session: str, ready, stop, results) -> None:
    db = connect(path)
    last, reads, problems = -1, 0, []
    ready.wait(60)
    while not stop.is_set() or reads == 0:
        try:
            db.execute("BEGIN")  # one snapshot for both reads
            n = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
            lines = [s.line() for s in list_sessions(db)]
            db.execute("COMMIT")
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            problems.append(repr(exc))
            break
        if n < last:
            problems.append(f"count went back from {last} to {n}")
        if lines != [f"{session}\tcorpora=0\tdocuments=0\tembeddings=0\truns={n}"]:
            problems.append(f"list_sessions disagrees with the count: {lines!r} vs {n}")
        last, reads = n, reads + 1
    results.put(("reader", reads, last, problems))
    db.close()


def _block(chunk_no: int, chunk_rows: int, rows: int, cols: int) -> np.ndarray:
    n = min(chunk_rows, rows - chunk_no * chunk_rows)
    return (np.arange(n * cols, dtype="<f4").reshape(n, cols) + chunk_no * 1000.5).astype("<f4")


def _write_chunks_until_killed(path: str, key: str, rows: int, cols: int, chunk_rows: int) -> None:
    db = connect(path)
    meta = M.create_matrix(db, cache_key=key, kind="embedding", rows=rows, cols=cols, chunk_rows=chunk_rows,
                           content_hash="h")
    for no in range(meta.n_chunks):
        M.write_chunk(db, meta, no, _block(no, chunk_rows, rows, cols), complete=no == meta.n_chunks - 1)
        time.sleep(0.003)


def _open_read_only_as_nobody(path: str) -> dict:
    """Drop root (root ignores file permissions), then open the read-only database the way the app does."""
    out = {}
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    try:
        with open(path, "r+b"):
            out["open_rw"] = "opened for writing?!"
    except OSError as exc:
        out["open_rw"] = exc.strerror
    try:
        db = connect(path)
        out["connect"] = [s.line() for s in list_sessions(db)]
    except Exception as exc:  # noqa: BLE001
        out["connect"] = f"{type(exc).__name__}: {exc}"
    else:
        try:
            save_run(db, 1, "k", {}, {})
            out["write"] = "written?!"
        except Exception as exc:  # noqa: BLE001
            out["write"] = f"{type(exc).__name__}: {exc}"
    try:
        raw = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        out["mode_ro"] = raw.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    except sqlite3.Error as exc:
        out["mode_ro"] = f"{type(exc).__name__}: {exc}"
    try:
        raw = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        out["immutable"] = raw.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    except sqlite3.Error as exc:
        out["immutable"] = f"{type(exc).__name__}: {exc}"
    return out


def _in_forked_child(fn, *args) -> dict:
    """Run `fn` in a forked child (everything already imported: after dropping root, /root is out of reach)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(r)
            os.write(w, json.dumps(fn(*args)).encode())
        except BaseException as exc:  # noqa: BLE001
            os.write(w, json.dumps({"child_error": repr(exc)}).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def _collect(results, n: int, timeout: float = 60) -> list:
    return [results.get(timeout=timeout) for _ in range(n)]


# ------------------------------------------------------------------------------------------- concurrency

def test_concurrent_writer_processes_and_a_reader(db_path, db):
    """Two writer processes store 200 runs each into one session at the same time while a third process reads."""
    n_writers = 2
    ensure_session(db, "shared")
    ready, stop, results = SPAWN.Barrier(n_writers + 2), SPAWN.Event(), SPAWN.Queue()
    writers = [SPAWN.Process(target=_write_runs, args=(str(db_path), "shared", w, N_RUNS, ready, results))
               for w in range(n_writers)]
    reader = SPAWN.Process(target=_read_while_writing, args=(str(db_path), "shared", ready, stop, results))
    for p in [*writers, reader]:
        p.start()
    ready.wait(60)  # everyone connected: start together
    t0 = time.time()
    spans = [_collect(results, 1)[0][2:] for _ in writers]
    elapsed = time.time() - t0
    stop.set()
    (_, reads, last, problems), = _collect(results, 1)
    for p in [*writers, reader]:
        p.join(30)
        assert p.exitcode == 0
    assert problems == []
    assert reads > 0 and 0 <= last <= n_writers * N_RUNS

    sid = ensure_session(db, "shared")
    counts = dict(db.execute("SELECT kind, COUNT(*) FROM runs WHERE session_id = ? GROUP BY kind", [sid]))
    assert counts == {f"worker-{w}": N_RUNS for w in range(n_writers)}
    for w in range(n_writers):  # every row of every writer, each exactly once, in its order
        seq = [r[0] for r in db.execute("SELECT json_extract(params_json, '$.i') FROM runs WHERE kind = ? "
                                        "ORDER BY id", [f"worker-{w}"])]
        assert seq == list(range(N_RUNS))
    assert _integrity(db) == [("ok",)]
    assert [s.line() for s in list_sessions(db)] == \
        [f"shared\tcorpora=0\tdocuments=0\tembeddings=0\truns={n_writers * N_RUNS}"]
    kinds = [r[0] for r in db.execute("SELECT kind FROM runs ORDER BY id")]
    switches = sum(a != b for a, b in zip(kinds, kinds[1:]))
    overlap = max(0.0, min(e for _, e in spans) - max(s for s, _ in spans))
    print(f"\n{n_writers} writer processes x {N_RUNS} runs = {n_writers * N_RUNS} rows in {elapsed:.2f} s "
          f"(writers overlapped {overlap:.2f} s, {switches} hand-overs of the write lock); "
          f"reader: {reads} consistent snapshots")


# ------------------------------------------------------------------------------------------- read-only

def test_read_only_database_file_is_read_and_writes_are_refused_clearly():
    """chmod 0444 on the file and 0555 on its folder; as root, the check runs in a forked child that drops to nobody
    (root ignores permissions)."""
    folder = Path(tempfile.mkdtemp(prefix="embedlab-ro-"))
    try:
        folder.chmod(0o755)
        path = folder / "ro.sqlite"
        db = connect(path)
        sid = ensure_session(db, "kept")
        save_run(db, sid, "ood", {"k": 1}, {"auroc": 0.9})
        lines = [s.line() for s in list_sessions(db)]
        db.close()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        names = sorted(os.listdir(folder))
        path.chmod(0o444)
        folder.chmod(0o555)

        out = _in_forked_child(_open_read_only_as_nobody, str(path))

        assert out["open_rw"] == "Permission denied"  # the setup really is read-only for the child
        assert out["connect"] == lines          # reading works: listing, reports, exports
        assert out["write"] == f"StorageError: the database is read-only ({path}): nothing was changed"
        assert out["immutable"] == 1  # the way import opens files: works even here
        # Note for connect(): a plain `mode=ro` open of a WAL database in a read-only folder cannot even read
        # (no -shm can be created): out["mode_ro"] is an error. See the report to the lead.
        assert sorted(os.listdir(folder)) == names  # no -wal/-shm/-journal appeared
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
        raw = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert raw.execute("SELECT name FROM sessions").fetchall() == [("kept",)]
        raw.close()
        assert lines == ["kept\tcorpora=0\tdocuments=0\tembeddings=0\truns=1"]
    finally:
        folder.chmod(0o755)
        for p in folder.iterdir():
            p.chmod(0o644)
        shutil.rmtree(folder)


def _read_only_handle(path: Path) -> sqlite_utils.Database:
    return sqlite_utils.Database(sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None))


def test_import_into_a_read_only_database_says_so(db_path, db, tmp_path):
    from embedlab.session_files import import_session_file as import_session
    from storage.transfer import export_session

    sid = ensure_session(db, "kept")
    save_run(db, sid, "ood", {}, {})
    out = export_session(db, "kept", tmp_path / "kept.sqlite")
    before = [s.line() for s in list_sessions(db)]
    ro = _read_only_handle(db_path)
    with pytest.raises(StorageError) as err:
        import_session(ro, out)
    assert str(err.value) == f"the database is read-only ({db_path}): nothing was changed"
    assert not ro.conn.in_transaction
    ro.close()
    assert [s.line() for s in list_sessions(db)] == before
    assert _integrity(db) == [("ok",)]


def test_write_path_on_read_only_database_raises_storage_error(db_path, db):
    sid = ensure_session(db, "kept")
    ro = _read_only_handle(db_path)
    try:
        with pytest.raises(StorageError, match="read-only"):
            save_run(ro, sid, "ood", {}, {})
    finally:
        ro.close()


def test_write_path_on_read_only_database_changes_nothing(db_path, db):
    """A write through a read-only handle: one clear StorageError line, nothing changed."""
    sid = ensure_session(db, "kept")
    save_run(db, sid, "ood", {}, {})
    ro = _read_only_handle(db_path)
    with pytest.raises(StorageError) as err:
        save_run(ro, sid, "ood", {"x": 1}, {})
    assert str(err.value).startswith("the database is read-only") and "nothing was changed" in str(err.value)
    assert isinstance(err.value.__cause__, sqlite3.OperationalError)
    assert not ro.conn.in_transaction
    ro.close()
    assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1


# ------------------------------------------------------------------------------------------- full disk

def _limit_pages(db, extra: int) -> None:
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages + extra}")


def test_full_disk_rolls_back_and_explains(db_path, db):
    sid = ensure_session(db, "kept")
    save_run(db, sid, "ood", {"k": 1}, {"auroc": 0.9})
    before = (db.execute("SELECT * FROM runs").fetchall(), [s.line() for s in list_sessions(db)])
    _limit_pages(db, 20)
    big = np.random.default_rng(0).standard_normal((4000, 64)).astype("<f4")  # ~1 MB, far over 20 pages
    with pytest.raises(StorageError) as err:
        with mock.patch.object(M, "CHUNK_BYTES", 16 * 1024):  # several chunks: fails part-way through
            M.save_matrix(db, big, cache_key="big", kind="embedding", content_hash="h")
    assert str(err.value) == f"the disk is full ({db_path}): nothing was changed, free some space and retry"
    assert explain_sqlite_error(err.value.__cause__) == \
        "the disk is full: nothing was changed, free some space and retry"
    assert not db.conn.in_transaction
    assert db.execute("SELECT COUNT(*) FROM matrices").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM matrix_chunks").fetchone()[0] == 0
    assert (db.execute("SELECT * FROM runs").fetchall(), [s.line() for s in list_sessions(db)]) == before
    assert _integrity(db) == [("ok",)]
    # with space again, the same write goes through
    db.execute("PRAGMA max_page_count = 1073741823")
    meta = M.save_matrix(db, big, cache_key="big", kind="embedding", content_hash="h")
    assert M.load_matrix(db, meta).tobytes() == big.tobytes()


def test_full_disk_during_import_changes_nothing(db_path, db, tmp_path):
    from storage.corpora import save_corpus
    from embedlab.session_files import import_session_file as import_session
    from storage.transfer import export_session
    from test_transfer import FakeCorpus, fingerprint

    sid = ensure_session(db, "big")
    save_corpus(db, sid, FakeCorpus("docs", [f"document {i} " + "words " * 200 for i in range(300)]))
    out = export_session(db, "big", tmp_path / "big.sqlite")
    before = fingerprint(db)
    _limit_pages(db, 30)
    with pytest.raises(StorageError) as err:
        import_session(db, out)
    assert str(err.value) == f"the disk is full ({db_path}): nothing was changed, free some space and retry"
    assert fingerprint(db) == before
    db.execute("INSERT INTO documents_fts(documents_fts) VALUES ('integrity-check')")


# ------------------------------------------------------------------------------------------- killed writer

def test_writer_killed_mid_matrix_leaves_a_resumable_database(db_path, db):
    rows, cols, chunk_rows, key = 100_000, 32, 50, "killed"
    n_chunks = rows // chunk_rows
    child = SPAWN.Process(target=_write_chunks_until_killed, args=(str(db_path), key, rows, cols, chunk_rows))
    child.start()
    deadline, stored = time.monotonic() + 60, 0
    while time.monotonic() < deadline:
        stored = db.execute("SELECT COUNT(*) FROM matrix_chunks").fetchone()[0]
        if stored >= 20:
            break
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.join(30)
    assert child.exitcode == -signal.SIGKILL
    assert stored >= 20, "the child never got going"

    assert _integrity(db) == [("ok",)]
    meta = M.find_matrix(db, key, complete_only=False)
    assert meta is not None and not meta.complete
    done = M.stored_chunks(db, meta.id)
    assert 20 <= len(done) < n_chunks
    assert done == set(range(len(done)))  # chunks are written in order, each in its own commit
    for no, data in db.execute("SELECT chunk_no, data FROM matrix_chunks WHERE matrix_id = ?", [meta.id]):
        assert np.array_equal(M.decode_chunk(data, meta.dtype, cols), _block(no, chunk_rows, rows, cols))
    assert M.find_matrix(db, key) is None  # not offered as a finished cache entry
    # resume: the same key and shape gives back the unfinished matrix; write what is missing
    again = M.create_matrix(db, cache_key=key, kind="embedding", rows=rows, cols=cols, chunk_rows=chunk_rows,
                            content_hash="h")
    assert again.id == meta.id and not again.complete
    missing = [no for no in range(again.n_chunks) if no not in M.stored_chunks(db, again.id)]
    for no in missing:
        M.write_chunk(db, again, no, _block(no, chunk_rows, rows, cols), complete=no == missing[-1])
    full = M.load_matrix(db, again.id)
    assert M.find_matrix(db, key).complete
    expected = np.concatenate([_block(no, chunk_rows, rows, cols) for no in range(n_chunks)])
    assert full.tobytes() == expected.tobytes()
    print(f"\nkilled after {len(done)} of {n_chunks} chunks; resumed {len(missing)}")


# ------------------------------------------------------------------------------------------- matrix codec

FLOAT_VIEWS = {"float32": ("<u4", "<f4"), "float16": ("<u2", "<f2")}


@st.composite
def float_arrays(draw):
    """2-D float32/float16 arrays of any bit pattern: NaNs with payloads, ±inf, -0.0, subnormals."""
    dtype = draw(st.sampled_from(sorted(FLOAT_VIEWS)))
    bits, floats = FLOAT_VIEWS[dtype]
    shape = draw(st.tuples(st.integers(0, 33), st.integers(1, 17)))
    if draw(st.booleans()):
        array = draw(hnp.arrays(np.dtype(bits), shape)).view(floats)
    else:
        array = draw(hnp.arrays(np.dtype(floats), shape, elements=hnp.from_dtype(np.dtype(floats))))
    return dtype, array


@settings(max_examples=150, deadline=None)
@given(float_arrays(), st.booleans())
def test_chunk_codec_round_trips_bit_for_bit(case, big_endian):
    dtype, array = case
    bits, floats = FLOAT_VIEWS[dtype]
    source = array.astype(array.dtype.newbyteorder(">")) if big_endian else array
    data = M.encode_chunk(source, dtype)
    assert isinstance(data, bytes) and len(data) == array.size * array.itemsize
    assert data == np.ascontiguousarray(array, dtype=floats).tobytes()  # stored little-endian
    back = M.decode_chunk(data, dtype, array.shape[1])
    assert back.shape == array.shape
    assert np.array_equal(back.view(bits), array.view(bits))  # bitwise: NaN payloads kept
    assert not back.flags.writeable


_keys = itertools.count()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(float_arrays(), st.sampled_from([1, 2, 7, 16, 64, 100, 1000, 4 * 1024 * 1024]), st.data())
def test_save_and_load_matrix_across_chunk_boundaries(case, chunk_bytes, data):
    dtype, array = case
    bits, _ = FLOAT_VIEWS[dtype]
    db = connect(":memory:")
    try:
        with mock.patch.object(M, "CHUNK_BYTES", chunk_bytes):
            meta = M.save_matrix(db, array, cache_key=f"k{next(_keys)}", kind="embedding", dtype=dtype)
        assert meta.complete and (meta.rows, meta.cols) == array.shape
        assert meta.chunk_rows == max(1, chunk_bytes // (array.shape[1] * array.itemsize))
        n = db.execute("SELECT COUNT(*) FROM matrix_chunks WHERE matrix_id = ?", [meta.id]).fetchone()[0]
        assert n == meta.n_chunks == -(-array.shape[0] // meta.chunk_rows)
        loaded = M.load_matrix(db, meta)
        assert loaded.dtype.isnative and loaded.shape == array.shape
        assert np.array_equal(loaded.view(bits), array.view(bits))
        prefix = data.draw(st.integers(0, array.shape[0]))
        assert np.array_equal(M.load_matrix(db, meta, rows=prefix).view(bits), array[:prefix].view(bits))
        # saving again under the key is a cache hit: nothing rewritten
        again = M.save_matrix(db, np.zeros((1, 1)), cache_key=meta.cache_key, kind="embedding", dtype=dtype)
        assert again.id == meta.id
    finally:
        db.close()


def test_save_matrix_one_dimensional(db):
    vector = np.array([1.5, np.nan, -np.inf, 0.0], dtype="<f4")
    with mock.patch.object(M, "CHUNK_BYTES", 4):
        meta = M.save_matrix(db, vector, cache_key="vec", kind="projection")
    assert (meta.rows, meta.cols, meta.n_chunks) == (4, 1, 4)
    assert M.load_matrix(db, meta).reshape(-1).tobytes() == vector.tobytes()
