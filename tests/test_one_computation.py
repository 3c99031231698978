"""Two asks for the same embedding share one computation (issue 20, class 8): a second process (or a second job
thread of the server) waits for the first and reads its matrix; a process that died while holding the lease is taken
over, and the work resumes from the stored chunks."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from embedlab.embedding.cache import compute_embedding, embedding_key
from storage import connect
from storage.db import transaction
from storage.leases import holder, try_acquire
from tests.builders import stored_corpus
from tests.fakes import FakeEmbedder

ROOT = Path(__file__).resolve().parents[1]
TEXTS = [f"document number {i} about things" for i in range(30)]

WORKER = """
import sys, time
from pathlib import Path
sys.path[:0] = [sys.argv[4], sys.argv[4] + "/tests"]
from tests.fakes import FakeEmbedder
from embedlab.embedding.cache import compute_embedding, embedding_key
from storage import connect
from storage.corpora import get_corpus, load_texts

class GatedFake(FakeEmbedder):
    def encode(self, texts, *, batch_size=None, progress=None):
        print("encoding", flush=True)
        while not Path(sys.argv[3]).exists():
            time.sleep(0.05)
        return super().encode(texts, batch_size=batch_size, progress=progress)

db = connect(sys.argv[1])
info = get_corpus(db, int(sys.argv[2]))
fake = GatedFake()
said = []
def progress(fraction, message):
    if "another process" in message and not said:
        said.append(message)
        print("waiting", flush=True)
meta = compute_embedding(db, load_texts(db, info.id), fake, content_hash=info.content_hash, corpus_id=info.id,
                         progress=progress)
print("result", meta.id, fake.encoded, flush=True)
"""


def _read_until(proc: subprocess.Popen, word: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip() == word:
            return
        if not line and proc.poll() is not None:
            raise AssertionError(f"worker ended before saying {word!r}: {proc.stderr.read()}")
    raise AssertionError(f"worker did not say {word!r} in {timeout} s")


def test_two_processes_embedding_the_same_corpus_share_one_computation(tmp_path: Path) -> None:
    path = tmp_path / "lab.sqlite"
    db = connect(path)
    _, info = stored_corpus(db, TEXTS, name="papers")
    gate = tmp_path / "go"
    args = [sys.executable, "-c", WORKER, str(path), str(info.id), str(gate), str(ROOT)]
    first = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _read_until(first, "encoding")                      # the first holds the lease and is computing
    second = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _read_until(second, "waiting")                      # the second sees it and waits instead of computing
    gate.touch()
    results = []
    for proc in (first, second):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(out.split("result", 1)[1].split())
    (first_id, first_encoded), (second_id, second_encoded) = results
    assert first_id == second_id
    assert (int(first_encoded), int(second_encoded)) == (len(TEXTS), 0)
    assert db.execute("SELECT COUNT(*) FROM matrices WHERE kind = 'embedding'").fetchone()[0] == 1
    assert db.execute("SELECT COUNT(*) FROM leases").fetchone()[0] == 0     # released when done
    db.close()


def test_two_threads_of_one_server_share_one_computation(db) -> None:
    _, info = stored_corpus(db, TEXTS, name="papers")
    started, gate = threading.Event(), threading.Event()

    class GatedFake(FakeEmbedder):
        def encode(self, texts, **kwargs):
            started.set()
            gate.wait(30)
            return super().encode(texts, **kwargs)

    fakes, results, waited = [GatedFake(), GatedFake()], [None, None], threading.Event()

    def run(i: int) -> None:
        own = connect(db.conn.execute("PRAGMA database_list").fetchone()[2])
        results[i] = compute_embedding(own, TEXTS, fakes[i], content_hash=info.content_hash, corpus_id=info.id,
                                       progress=lambda f, m: waited.set() if "another process" in m else None).id
        own.close()

    a = threading.Thread(target=run, args=(0,))
    a.start()
    assert started.wait(30)
    b = threading.Thread(target=run, args=(1,))
    b.start()
    assert waited.wait(30)
    gate.set()
    a.join(60)
    b.join(60)
    assert results[0] == results[1] is not None
    assert (fakes[0].encoded, fakes[1].encoded) == (len(TEXTS), 0)


def test_a_lease_of_a_dead_process_is_taken_over_and_the_work_resumes(db, monkeypatch) -> None:
    monkeypatch.setenv("EMBEDLAB_CHUNK_ROWS", "10")
    _, info = stored_corpus(db, TEXTS, name="papers")
    fake = FakeEmbedder()
    key = embedding_key(db, fake, info.content_hash, info.id)
    dead = f"{__import__('socket').gethostname()}:{2**22 + 777}#1"
    with transaction(db) as conn:
        conn.execute("INSERT INTO leases (key, owner, heartbeat_at) VALUES (?, ?, ?)", [key, dead, time.time()])
    assert holder(db, key) is None                      # its process is gone
    meta = compute_embedding(db, TEXTS, fake, content_hash=info.content_hash, corpus_id=info.id)
    assert meta.complete and fake.encoded == len(TEXTS)
    assert db.execute("SELECT COUNT(*) FROM leases").fetchone()[0] == 0


def test_a_live_lease_of_another_host_is_respected_until_its_heartbeat_is_stale(db) -> None:
    with transaction(db) as conn:
        conn.execute("INSERT INTO leases (key, owner, heartbeat_at) VALUES ('k', 'elsewhere:12#3', ?)",
                     [time.time()])
    assert try_acquire(db, "k") is None and holder(db, "k") == "elsewhere:12"
    with transaction(db) as conn:
        conn.execute("UPDATE leases SET heartbeat_at = ?", [time.time() - 3600])
    assert try_acquire(db, "k") is not None


@pytest.mark.parametrize("stop_after", [1, 3])
def test_a_waiter_asked_to_stop_gives_up_without_computing(db, stop_after: int) -> None:
    from embedlab.errors import Cancelled

    _, info = stored_corpus(db, TEXTS, name="papers")
    fake = FakeEmbedder()
    key = embedding_key(db, fake, info.content_hash, info.id)
    with transaction(db) as conn:
        conn.execute("INSERT INTO leases (key, owner, heartbeat_at) VALUES (?, 'elsewhere:12#3', ?)",
                     [key, time.time()])
    asked = iter([False] * (stop_after - 1) + [True])
    with pytest.raises(Cancelled, match="waiting for another process"):
        compute_embedding(db, TEXTS, fake, content_hash=info.content_hash, corpus_id=info.id,
                          should_stop=lambda: next(asked))
    assert fake.encoded == 0
