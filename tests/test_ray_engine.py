"""`embed --engine ray` on a local two-CPU Ray cluster matches the in-process path row by row."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_ray_embedding_matches_in_process(db, monkeypatch, shared_data):
    ray = pytest.importorskip("ray")
    import json

    from embedlab.corpus import Corpus
    from embedlab.embedders import DEFAULT_MODEL, get_embedder
    from embedlab.ray_engine import embed_corpus_ray, init_ray
    from storage.corpora import save_corpus
    from storage.matrices import load_matrix, stored_chunks
    from storage.sessions import ensure_session

    monkeypatch.setenv("EMBEDLAB_CHUNK_ROWS", "64")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    texts = [t for t, _ in json.load(open(shared_data / "clinc150" / "data_full.json"))["test"][:300]]
    info = save_corpus(db, ensure_session(db, "r"), Corpus(name="c", source="t", texts=texts,
                                                            doc_ids=[str(i) for i in range(len(texts))]))
    init_ray(num_cpus=2)
    try:
        assert ray.cluster_resources()["CPU"] == 2
        seen = []
        meta = embed_corpus_ray(db, info.id, DEFAULT_MODEL, actors=2, batch_size=50,
                                progress=lambda f, m: seen.append(f))
    finally:
        ray.shutdown()
    assert meta.complete and meta.rows == 300 and stored_chunks(db, meta.id) == set(range(5))
    assert seen[-1] == 1.0
    on_ray = load_matrix(db, meta)
    local = get_embedder(DEFAULT_MODEL).encode(texts)
    cos = np.sum(on_ray * local, axis=1)
    assert cos.min() >= 0.9999, cos.min()
