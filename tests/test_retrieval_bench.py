"""run_retrieval_bench end to end: fast with fake encoders, slow on a SciFact subset with the real model."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from embedlab.errors import InputError
from embedlab.retrieval import bench
from embedlab.retrieval.bench import run_retrieval_bench

DESIGN_KEYS = {"ndcg@10", "recall@100", "mrr@10", "ms_per_query", "index_bytes"}


def _vec(text: str, dim: int = 160) -> np.ndarray:
    v = np.random.default_rng(int(hashlib.md5(text.encode()).hexdigest()[:8], 16)).normal(size=dim)
    return v / np.linalg.norm(v)


def fake_encoders(model, db=None, *, progress=None):
    """Word-hash vectors: a text is the normalised sum of its words; tokens are its words' vectors."""
    def words(t):
        return t.lower().split() or ["empty"]

    def embed(texts):
        out = np.stack([sum(_vec(w) for w in words(t)) for t in texts]).astype(np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def embed_tokens(texts):
        mats = [np.stack([_vec(w) for w in words(t)]).astype(np.float32) for t in texts]
        return np.concatenate(mats), np.concatenate([[0], np.cumsum([len(m) for m in mats])]).astype(np.int64)

    return embed, embed_tokens


@pytest.fixture
def toy_beir(tmp_path):
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(60)]
    root = tmp_path / "beir-toy"
    (root / "qrels").mkdir(parents=True)
    docs, queries, qrels = [], [], ["query-id\tcorpus-id\tscore"]
    for i in range(150):
        docs.append({"_id": f"d{i}", "title": f"t{i % 7}", "text": " ".join(rng.choice(vocab, 12))})
    for j in range(30):
        src = docs[j * 4]["text"].split()
        queries.append({"_id": f"q{j}", "text": " ".join(src[:4])})
        qrels.append(f"q{j}\td{j * 4}\t1")
    queries.append({"_id": "q30", "text": "a training query"})
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n")
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq30\td116\t1\n")
    return root


def test_bench_all_ten_methods_design_json(toy_beir, monkeypatch):
    monkeypatch.setattr(bench, "encoders", fake_encoders)
    seen = []
    out = run_retrieval_bench(beir_dir=toy_beir, progress=lambda f, m: seen.append((f, m)))
    assert list(out) == ["dataset", "split", "model", "n_docs", "n_queries", "methods"]
    assert out["dataset"] == "toy" and out["split"] == "test" and out["model"] == "all-MiniLM-L6-v2"
    assert out["n_docs"] == 150 and out["n_queries"] == 30           # q30 is a training query
    assert list(out["methods"]) == ["bm25", "dense", "hnsw", "int8-rescore", "binary-rescore", "matryoshka-128",
                                    "hybrid-rrf", "maxsim", "muvera", "invgc"]
    json.dumps(out)
    for name, entry in out["methods"].items():
        assert DESIGN_KEYS <= set(entry), name
        assert 0 <= entry["ndcg@10"] <= 1 and entry["index_bytes"] > 0 and entry["ms_per_query"] > 0
    # Queries are four words of their document: lexical and token methods find them.
    assert out["methods"]["bm25"]["ndcg@10"] > 0.8
    assert out["methods"]["maxsim"]["ndcg@10"] > 0.8
    fracs = [f for f, _ in seen]
    assert fracs == sorted(fracs) and fracs[-1] == pytest.approx(1.0)


def test_bench_subset_and_method_list(toy_beir, monkeypatch):
    monkeypatch.setattr(bench, "encoders", fake_encoders)
    out = run_retrieval_bench(beir_dir=toy_beir, methods="dense,matryoshka-8", max_docs=40)
    assert out["n_docs"] == 40 and out["n_queries"] == 30
    assert list(out["methods"]) == ["dense", "matryoshka-8"]
    with pytest.raises(InputError, match="valid methods"):
        run_retrieval_bench(beir_dir=toy_beir, methods="dense,nope")
    with pytest.raises(InputError, match="splits found: test, train"):
        run_retrieval_bench(beir_dir=toy_beir, split="dev", methods="dense")


@pytest.mark.slow
def test_scifact_subset_dense_and_bm25_real_model(shared_data):
    beir = shared_data / "beir-scifact"
    if not beir.exists():
        pytest.skip("SciFact is not in shared/data")
    out = run_retrieval_bench(beir_dir=beir, methods="dense,bm25", max_docs=1000)
    assert out["n_docs"] == 1000 and 250 <= out["n_queries"] <= 300
    dense, bm25 = out["methods"]["dense"], out["methods"]["bm25"]
    # A 1,000-document corpus that holds every relevant document is easier than the full 5,183.
    assert 0.64 <= dense["ndcg@10"] <= 0.95 and 0.65 <= bm25["ndcg@10"] <= 0.95
    assert dense["recall@100"] >= 0.9 and dense["index_bytes"] == 1000 * 384 * 4
