"""`embed --engine ray` on a local two-CPU Ray cluster matches the in-process path row by row.

Ray runs in a CLI subprocess: its driver threads (progress bars among them) end with that process instead of
lingering in the test process.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def test_ray_embedding_matches_in_process(tmp_path, shared_data):
    pytest.importorskip("ray")
    from embedlab.embedding.embedders import DEFAULT_MODEL, get_embedder
    from storage import connect
    from storage.corpora import find_corpus
    from storage.matrices import find_matrix, load_matrix, stored_chunks
    from storage.sessions import require_session

    texts = [t for t, _ in json.load(open(shared_data / "clinc150" / "data_full.json"))["test"][:300]]
    src = tmp_path / "clinc.csv"
    with open(src, "w", newline="") as fh:
        csv.writer(fh).writerows([["text"], *[[t] for t in texts]])
    db_path = tmp_path / "ray.sqlite"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "EMBEDLAB_CHUNK_ROWS": "64"}
    env.pop("RAY_ADDRESS", None)  # a local cluster

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "embedlab", *args, "--db", str(db_path)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=600)

    assert cli("ingest", str(src), "--session", "r", "--name", "c").returncode == 0
    result = cli("embed", "--session", "r", "--corpus", "c", "--engine", "ray")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "300 x 384" in result.stdout and "on Ray" in result.stderr

    db = connect(db_path)
    info = find_corpus(db, require_session(db, "r"), "c")
    meta = db.execute("SELECT cache_key FROM matrices WHERE kind = 'embedding'").fetchone()[0]
    meta = find_matrix(db, meta)
    assert meta.complete and meta.rows == 300 and meta.content_hash == info.content_hash
    assert stored_chunks(db, meta.id) == set(range(5))
    on_ray = load_matrix(db, meta)
    local = get_embedder(DEFAULT_MODEL).encode(texts)
    cos = np.sum(on_ray * local, axis=1)
    assert cos.min() >= 0.9999, cos.min()
    # the Ray result is the cache entry of the local path: embedding again locally is a hit
    again = cli("embed", "--session", "r", "--corpus", "c")
    assert again.returncode == 0 and "cached" in again.stderr
