"""The CLI contract (DESIGN §3): commands, exit codes, one-line errors that change nothing."""
from __future__ import annotations

import io
import json
import os
import random
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, db: Path, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "embedlab", *args, "--db", str(db)], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def fingerprint(db: Path) -> tuple:
    """What must not change after a refused input: the listing, the integrity check and every table's count."""
    if not db.exists():
        return ("absent",)
    conn = sqlite3.connect(db)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
    counts = tuple((t, conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0]) for t in tables)
    integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    conn.close()
    return counts, integrity


@pytest.fixture
def seeded_db(tmp_path) -> Path:
    db = tmp_path / "cli.sqlite"
    src = tmp_path / "seed.csv"
    src.write_text("text,label\nhello world,a\nsecond document,b\n")
    assert cli("ingest", str(src), "--session", "keep", db=db).returncode == 0
    return db


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(5):
            zf.writestr(f"doc{i}.txt", f"document {i} " * 200)
    return buf.getvalue()


BAD_INPUTS = {
    "unterminated.csv": b'text,label\n"this quote never ends,a\nmore,b\n',
    "empty.csv": b"",
    "random.bin": random.Random(0).randbytes(4096),
    "numbers.csv": b"a,b\n1,2\n3,4\n",
    "broken.jsonl": b'{"text": "fine", "label": "x"}\n{"text": "broken\n{"text": "also fine"}\n',
    "nul.txt": b"line one\nline\x00two\n",
    "truncated.zip": _zip_bytes()[:300],
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_exit_2_one_line_nothing_written(tmp_path, seeded_db, name):
    path = tmp_path / name
    path.write_bytes(BAD_INPUTS[name])
    before_list = cli("sessions", "list", db=seeded_db).stdout
    before = fingerprint(seeded_db)
    result = cli("ingest", str(path), "--session", "new-session", db=seeded_db)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert name in lines[0]
    assert fingerprint(seeded_db) == before
    assert cli("sessions", "list", db=seeded_db).stdout == before_list


def test_error_messages_name_row_and_column(tmp_path, seeded_db):
    path = tmp_path / "broken.jsonl"
    path.write_bytes(BAD_INPUTS["broken.jsonl"])
    r = cli("ingest", str(path), "--session", "s", db=seeded_db)
    assert r.returncode == 2 and r.stderr.startswith("error: broken.jsonl, row 2: line 2 is not valid JSON"), r.stderr
    path = tmp_path / "t.csv"
    path.write_text("text,label\nhello,a\n")
    r = cli("ingest", str(path), "--session", "s", "--label-col", "nope", db=seeded_db)
    assert r.returncode == 2 and r.stderr.startswith("error: t.csv, column 'nope': no such column"), r.stderr
    assert "(named as the label column)" in r.stderr and "the columns are: 'text', 'label'" in r.stderr


def test_unknown_corpus_and_session_are_clear(seeded_db):
    r = cli("embed", "--session", "keep", "--corpus", "missing", "--model", "tfidf-svd", db=seeded_db)
    assert r.returncode == 2 and "no corpus named 'missing'" in r.stderr and "seed" in r.stderr
    r = cli("embed", "--session", "ghost", "--corpus", "x", db=seeded_db)
    assert r.returncode == 2 and "no session named 'ghost'" in r.stderr
    assert "ghost" not in cli("sessions", "list", db=seeded_db).stdout


def test_argparse_errors_exit_2(seeded_db):
    r = cli("project", "--session", "keep", "--corpus", "seed", "--method", "magic", db=seeded_db)
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_ingest_embed_and_list_with_baseline(tmp_path):
    db = tmp_path / "x.sqlite"
    src = tmp_path / "docs.csv"
    src.write_text("id,text,label,year\n" + "".join(f"d{i},text about topic {i % 3} number {i},t{i % 3},{2000 + i}\n"
                                                   for i in range(30)))
    r = cli("ingest", str(src), "--session", "demo", "--name", "docs", db=db)
    assert r.returncode == 0 and "ingested 30 documents" in r.stdout
    r = cli("embed", "--session", "demo", "--corpus", "docs", "--model", "tfidf-svd", db=db)
    assert r.returncode == 0 and "30 x" in r.stdout, r.stderr
    assert cli("sessions", "list", db=db).stdout.strip() == "demo\tcorpora=1\tdocuments=30\tembeddings=1\truns=0"
    r = cli("project", "--session", "demo", "--corpus", "docs", "--model", "tfidf-svd", "--method", "pca", db=db)
    assert r.returncode == 0 and "30 x 2" in r.stdout, r.stderr


def test_datasets_lists_samples(tmp_path):
    out = cli("datasets", db=tmp_path / "d.sqlite").stdout
    assert "ag-news-sample" in out and "clinc150-sample" in out


@pytest.mark.slow
def test_ag_news_300_rows_embed_then_a_second_embed_is_a_cache_hit(tmp_path, shared_data):
    import csv

    rows = list(csv.reader(open(shared_data / "ag-news-test" / "test.csv", encoding="utf-8")))[:300]
    src = tmp_path / "ag300.csv"
    with open(src, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["label", "title", "text"])
        w.writerows(rows)
    db = tmp_path / "ag.sqlite"
    assert cli("ingest", str(src), "--session", "ag", "--name", "ag300", db=db).returncode == 0
    first = cli("embed", "--session", "ag", "--corpus", "ag300", db=db)
    assert first.returncode == 0 and "300 x 384" in first.stdout, first.stderr
    second = cli("embed", "--session", "ag", "--corpus", "ag300", db=db)
    assert second.returncode == 0 and "cached" in second.stderr      # (its time: bench/embed_throughput.py)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM matrices WHERE kind='embedding'").fetchone()[0] == 1
    assert json.loads(conn.execute("SELECT params_json FROM matrices").fetchone()[0])["model"] == "all-MiniLM-L6-v2"


@pytest.mark.slow
def test_kill_9_during_embed_then_resume(tmp_path, shared_data):
    """kill -9 mid-embedding: integrity ok, the job shows interrupted, embed again completes the rest."""
    import signal
    import time

    data = json.load(open(shared_data / "clinc150" / "data_full.json"))
    src = tmp_path / "clinc.csv"
    import csv

    with open(src, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows(data["train"][:1500])
    db = tmp_path / "k.sqlite"
    env = {"EMBEDLAB_CHUNK_ROWS": "100"}
    assert cli("ingest", str(src), "--session", "k", "--name", "c", db=db).returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "embedlab", "embed", "--session", "k", "--corpus", "c",
                             "--db", str(db)], cwd=ROOT, env={**os.environ, **env, "HF_HUB_OFFLINE": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    chunks = 0
    while time.time() < deadline and chunks < 3:
        time.sleep(0.2)
        try:
            conn = sqlite3.connect(db, timeout=5)
            chunks = conn.execute("SELECT COUNT(*) FROM matrix_chunks").fetchone()[0]
            conn.close()
        except sqlite3.OperationalError:
            pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 3 <= chunks < 15, "the kill should land mid-job"
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = conn.execute("SELECT COUNT(*) FROM matrix_chunks").fetchone()[0]
    conn.close()
    from embedlab.jobs import list_jobs
    from storage import connect

    assert list_jobs(connect(db))[0].status == "interrupted"
    again = cli("embed", "--session", "k", "--corpus", "c", db=db, env=env)
    assert again.returncode == 0 and "1500 x 384" in again.stdout, again.stderr
    assert "resuming" in again.stderr and f"{stored * 100}/1500" in again.stderr
