"""`bench-retrieval` end to end (the shared comparison, DESIGN's JSON): fast with a word-hash embedder, slow on a
SciFact subset with the real model."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from embedlab.cli import main
from embedlab.retrieval.comparison import compare_methods

DESIGN_KEYS = {"ndcg@10", "recall@100", "mrr@10", "ms_per_query", "index_bytes"}
FAKE = "word-hash"


def _vec(text: str, dim: int = 160) -> np.ndarray:
    v = np.random.default_rng(int(hashlib.md5(text.encode()).hexdigest()[:8], 16)).normal(size=dim)
    return v / np.linalg.norm(v)


def _words(t: str) -> list[str]:
    return t.lower().split() or ["empty"]


class WordHashEmbedder:
    """A pretrained-like embedder without a model: a text is the normalised sum of its words' hash vectors; its
    tokens are its words' vectors."""
    name = FAKE
    fitted_on_corpus = False
    has_tokens = True

    def identity(self) -> dict:
        return {"embedder": FAKE, "dim": 160}

    def dimension(self) -> int:
        return 160

    def fit(self, corpus):
        return self

    calls: list[tuple[str, int]] = []            # (which pass, how many texts), for every instance

    def encode(self, texts, *, batch_size=None, progress=None) -> np.ndarray:
        WordHashEmbedder.calls.append(("encode", len(texts)))
        out = np.stack([sum(_vec(w) for w in _words(t)) for t in texts]).astype(np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def encode_with_tokens(self, texts, *, batch_size=32, progress=None):
        WordHashEmbedder.calls.append(("tokens", len(texts)))
        sentences = self.encode(texts)
        WordHashEmbedder.calls.pop()
        return sentences, [np.stack([_vec(w) for w in _words(t)]).astype(np.float32) for t in texts]


@pytest.fixture
def word_hash(monkeypatch):
    """Model name "word-hash" opens a WordHashEmbedder in every EmbeddingSpace."""
    from embedlab.embedding import space

    real = space.get_embedder
    monkeypatch.setattr(space, "get_embedder", lambda model, **kw: WordHashEmbedder() if model == FAKE
                        else real(model, **kw))
    return FAKE


def bench(beir, tmp_path, *args: str) -> dict:
    out = tmp_path / "bench.json"
    assert main(["--db", str(tmp_path / "bench.sqlite"), "bench-retrieval", "--beir", str(beir), "--json",
                 str(out), *args]) == 0
    return json.loads(out.read_text())


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


def test_bench_all_ten_methods_design_json(toy_beir, tmp_path, word_hash, capsys):
    out = bench(toy_beir, tmp_path, "--model", word_hash)
    assert json.loads(capsys.readouterr().out) == out                # the JSON is printed as well
    assert list(out) == ["dataset", "split", "model", "n_docs", "n_queries", "methods"]
    assert out["dataset"] == "toy" and out["split"] == "test" and out["model"] == word_hash
    assert out["n_docs"] == 150 and out["n_queries"] == 30           # q30 is a training query
    assert list(out["methods"]) == ["bm25", "dense", "hnsw", "int8-rescore", "binary-rescore", "matryoshka-128",
                                    "hybrid-rrf", "maxsim", "muvera", "invgc"]
    for name, entry in out["methods"].items():
        assert DESIGN_KEYS <= set(entry), name
        assert list(entry)[:5] == ["ndcg@10", "recall@100", "mrr@10", "ms_per_query", "index_bytes"]
        assert {"recall@10", "map@100", "build_s"} <= set(entry)
        assert 0 <= entry["ndcg@10"] <= 1 and entry["index_bytes"] > 0 and entry["ms_per_query"] > 0
    assert "rescore_bytes" in out["methods"]["binary-rescore"]
    # Queries are four words of their document: lexical and token methods find them.
    assert out["methods"]["bm25"]["ndcg@10"] > 0.8
    assert out["methods"]["maxsim"]["ndcg@10"] > 0.8


def test_progress_runs_forward_to_the_end(toy_beir, word_hash):
    seen = []
    done = compare_methods(None, {"source": "beir", "beir_dir": str(toy_beir), "model": word_hash,
                                  "methods": ["dense", "maxsim", "invgc"]}, progress=lambda f, m: seen.append((f, m)))
    assert set(done.metrics) == {"dense", "maxsim", "invgc"}
    fracs = [f for f, _ in seen]
    assert fracs == sorted(fracs) and fracs[-1] == pytest.approx(1.0)
    # token embeddings come first (one model pass stores the sentence embeddings with them)
    stages = [m.split(":")[0] for _, m in seen if "embeddings:" in m]
    assert stages.index("document token embeddings") < stages.index("document embeddings")


def test_one_model_pass_gives_documents_tokens_and_embeddings(toy_beir, tmp_path, word_hash, db):
    WordHashEmbedder.calls.clear()
    done = compare_methods(db, {"source": "beir", "beir_dir": str(toy_beir), "model": word_hash,
                                "methods": ["dense", "maxsim"]})
    assert set(done.metrics) == {"dense", "maxsim"}
    # the 150 documents pass through the model once (tokens first stores the sentence embeddings with them)
    assert WordHashEmbedder.calls.count(("tokens", 150)) == 1 and ("encode", 150) not in WordHashEmbedder.calls


def test_bench_subset_and_method_list(toy_beir, tmp_path, word_hash, capsys):
    out = bench(toy_beir, tmp_path, "--model", word_hash, "--methods", "dense,matryoshka-8", "--max-docs", "40")
    assert out["n_docs"] == 40 and out["n_queries"] == 30
    assert list(out["methods"]) == ["dense", "matryoshka-8"]
    capsys.readouterr()
    for args, message in ((["--methods", "dense,nope"], "valid methods"),
                          (["--methods", "dense", "--split", "dev"], "splits found: test, train")):
        assert main(["--db", str(tmp_path / "bench.sqlite"), "bench-retrieval", "--beir", str(toy_beir),
                     "--model", word_hash, *args]) == 2
        assert message in capsys.readouterr().err


@pytest.mark.slow
def test_scifact_subset_dense_and_bm25_real_model(shared_data, tmp_path):
    beir = shared_data / "beir-scifact"
    if not beir.exists():
        pytest.skip("SciFact is not in shared/data")
    out = bench(beir, tmp_path, "--methods", "dense,bm25", "--max-docs", "1000")
    assert out["n_docs"] == 1000 and 250 <= out["n_queries"] <= 300
    dense, bm25 = out["methods"]["dense"], out["methods"]["bm25"]
    # A 1,000-document corpus that holds every relevant document is easier than the full 5,183.
    assert 0.64 <= dense["ndcg@10"] <= 0.95 and 0.65 <= bm25["ndcg@10"] <= 0.95
    assert dense["recall@100"] >= 0.9 and dense["index_bytes"] == 1000 * 384 * 4
