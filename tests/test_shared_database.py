"""Two processes share one database (issue 20, class 0): the server's connection pattern (a new connection per rerun,
several open at once, a background job writing) goes on while other processes open, read and close the same file
(`sessions list`, a plain `sqlite3` reader, a header peek). Afterwards a fresh process must see every write, the job
done, and `integrity_check` ok.

The bug this guards against: closing any descriptor of the database file drops every POSIX lock the process holds
on it, so another process could take the last-user path, checkpoint and delete the live WAL while this process's
connections went on writing into the deleted file.
"""
from __future__ import annotations

import ast
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from embedlab.jobs import get_job, job_kind, submit_job, wait_for
from storage import connect
from storage.db import transaction
from storage.sessions import ensure_session

ROOT = Path(__file__).resolve().parents[1]

READER = """
import sqlite3, subprocess, sys, time
path, stop, kind = sys.argv[1], sys.argv[2], sys.argv[3]
import os
n = 0
while not os.path.exists(stop):
    if kind == "sqlite3":            # what `sqlite3 lab.sqlite "select ..."` does: open, read, close
        c = sqlite3.connect(path)
        c.execute("SELECT COUNT(*) FROM sessions").fetchone()
        c.close()
    elif kind == "peek":             # another program reading the header with plain file I/O
        with open(path, "rb") as fh:
            fh.read(100)
    n += 1
    time.sleep(0.02)
print(n)
"""

WRITES_PER_JOB = 40


@job_kind("test-shared-writes")
def _writing_job(db, params, ctx):
    """A long job: one session per step, each in its own transaction, with progress between them."""
    for i in range(params["n"]):
        with transaction(db) as conn:
            conn.execute("INSERT INTO sessions (name, created_at, updated_at, notes) VALUES (?, '', '', '')",
                         [f"job-{i:03d}"])
        ctx.progress((i + 1) / params["n"], f"step {i + 1}")
        threading.Event().wait(0.02)
    return f"wrote:{params['n']}"


def _fresh_process_view(path: Path) -> dict:
    code = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
            "print(repr({'sessions': sorted(r[0] for r in c.execute('SELECT name FROM sessions')), "
            "'jobs': c.execute('SELECT status, result_ref FROM jobs').fetchall(), "
            "'integrity': c.execute('PRAGMA integrity_check').fetchone()[0]}))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    return ast.literal_eval(out.stdout.strip())


def test_writes_survive_other_processes_opening_and_closing_the_database(tmp_path: Path) -> None:
    path = tmp_path / "lab.sqlite"
    stop = tmp_path / "stop"
    first = connect(path)                    # the server's first connection stays open all along
    ensure_session(first, "before")
    readers = [subprocess.Popen([sys.executable, "-c", READER, str(path), str(stop), kind], stdout=subprocess.PIPE,
                                text=True) for kind in ("sqlite3", "peek")]
    cli_runs = 0
    try:
        job_id = submit_job(path, "test-shared-writes", {"n": WRITES_PER_JOB})
        expected = {"before"}
        for i in range(8):
            rerun = connect(path)            # each Streamlit rerun opens a connection of its own
            ensure_session(rerun, f"rerun-{i}")
            expected.add(f"rerun-{i}")
            listing = subprocess.run([sys.executable, "-m", "embedlab", "--db", str(path), "sessions", "list"],
                                     cwd=ROOT, capture_output=True, text=True, timeout=120)
            assert listing.returncode == 0, listing.stderr
            cli_runs += 1
            ensure_session(first, f"first-{i}")   # the long-lived connection writes after the other process left
            expected.add(f"first-{i}")
            rerun.close()
        job = wait_for(first, job_id, timeout=300)
        assert job.status == "done", job.message
    finally:
        stop.touch()
        counts = [int(r.communicate(timeout=60)[0].strip() or 0) for r in readers]
    assert all(c > 0 for c in counts), counts     # the readers really ran beside the writes
    assert cli_runs == 8
    expected |= {f"job-{i:03d}" for i in range(WRITES_PER_JOB)}
    seen = _fresh_process_view(path)
    assert seen["integrity"] == "ok"
    assert set(seen["sessions"]) == expected
    assert seen["jobs"] == [("done", f"wrote:{WRITES_PER_JOB}")]
    assert get_job(first, job_id).status == "done"
    first.close()


def test_no_python_open_of_the_database_in_a_process_holding_connections(tmp_path: Path, monkeypatch) -> None:
    """`connect` reads nothing of the file outside SQLite: a second and third connect while one is open never call
    `open()` on the database, its -wal or its -shm (the header check goes through SQLite)."""
    import builtins
    import io
    import os

    path = tmp_path / "lab.sqlite"
    first = connect(path)
    ensure_session(first, "a")
    watched = {str(path), f"{path}-wal", f"{path}-shm"}
    opened: list[str] = []
    real_open, real_io_open, real_os_open = builtins.open, io.open, os.open

    def spy(real):
        def wrapper(file, *args, **kwargs):
            if isinstance(file, (str, os.PathLike)) and os.path.abspath(os.fspath(file)) in watched:
                opened.append(os.fspath(file))
            return real(file, *args, **kwargs)
        return wrapper

    monkeypatch.setattr(builtins, "open", spy(real_open))
    monkeypatch.setattr(io, "open", spy(real_io_open))
    monkeypatch.setattr(os, "open", spy(real_os_open))
    second = connect(path)
    third = connect(path, migrate=False)
    ensure_session(second, "b")
    monkeypatch.undo()
    assert opened == []
    for c in (first, second, third):
        c.close()


@pytest.mark.parametrize("content", [b"hello, not a database\n" * 10, b"\x00" * 4096, b"SQLite format 2\x00" + b"x" * 200])
def test_a_file_that_is_not_sqlite_is_still_refused_unchanged(tmp_path: Path, content: bytes) -> None:
    from storage.db import StorageError

    path = tmp_path / "other.bin"
    path.write_bytes(content)
    with pytest.raises(StorageError, match="not a valid EmbedLab database"):
        connect(path)
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.bin"]
