"""The router method: routes each query to the expert that did best on its nearest training queries."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from builders import write_beir
from embedlab.cli import main
from embedlab.retrieval.comparison import compare_methods
from embedlab.retrieval.registry import create_method

TOPICS = ["vaccine patient doctor fever clinic dose", "goal striker referee penalty match league",
          "rain cloud storm thunder forecast wind", "stock market bank shares investor profit"]


def routed_beir(root: Path) -> Path:
    """Documents of four topics. Half the queries quote a document's rare id word (BM25 finds it, the SVD space
    blurs it); the other half paraphrase a topic (dense finds the topic's documents). Train and test alike."""
    rng = np.random.default_rng(3)
    docs, queries, qrels = [], [], {"train": [], "test": []}
    for t, topic in enumerate(TOPICS):
        words = topic.split()
        for j in range(8):
            tag = f"zq{t}x{j}"
            docs.append({"_id": f"d{t}-{j}", "title": "", "text": " ".join([*rng.choice(words, 6), tag, tag])})
    n = 0
    for split in ("train", "test"):
        for t, topic in enumerate(TOPICS):
            for j in range(8 if split == "train" else 4):
                qid = f"{split}{n}"
                n += 1
                if j % 2 == 0:   # exact-word query: one document
                    queries.append({"_id": qid, "text": f"zq{t}x{j}"})
                    qrels[split].append((qid, f"d{t}-{j}", 1))
                else:            # topical query: every document of the topic
                    queries.append({"_id": qid, "text": " ".join(rng.choice(topic.split(), 3, replace=False))})
                    qrels[split] += [(qid, f"d{t}-{i}", 1) for i in range(8)]
    return write_beir(root, docs, queries, qrels["test"], other_splits={"train": qrels["train"]})


def test_router_is_between_its_best_expert_and_the_oracle(tmp_path):
    beir = routed_beir(tmp_path / "beir")
    params = {"router": {"experts": "bm25,dense", "k": 3}}
    result = compare_methods(None, {"source": "beir", "beir_dir": str(beir), "model": "tfidf-svd",
                                    "methods": ["router", "bm25", "dense"], "params": params})
    router, bm25, dense = (result.results[n] for n in ("router", "bm25", "dense"))
    entry = router.summary()
    per_query = [max(bm25.per_query["ndcg@10"][q], dense.per_query["ndcg@10"][q]) for q in bm25.per_query["ndcg@10"]]
    assert entry["oracle_ndcg@10"] == pytest.approx(np.mean(per_query), abs=1e-9)     # computed independently
    assert sum(entry["routed"].values()) == 16 and set(entry["routed"]) == {"bm25", "dense"}
    best = max(bm25.metrics["ndcg@10"], dense.metrics["ndcg@10"])
    assert best - 0.01 <= entry["ndcg@10"] <= entry["oracle_ndcg@10"] + 1e-9
    assert entry["routed"]["bm25"] > 0 and entry["routed"]["dense"] > 0                 # both kinds were routed


def test_routing_votes_over_the_nearest_training_queries_and_breaks_ties_by_overall_skill():
    router = create_method("router", experts="bm25,dense", k=2)
    router._bank = np.eye(4, dtype=np.float32)
    router._gains = np.array([[1.0, 0.0], [1.0, 0.2], [0.0, 1.0], [0.5, 0.5]], np.float32)
    router._overall = np.array([0.2, 0.4], np.float32)
    q = np.array([[1, 1, 0, 0], [0, 0, 1, 0.9], [0, 0, 0, 1]], np.float32)
    # q0: nearest 0 and 1 -> bm25; q1: nearest 2 and 3 -> dense (0.75 vs 0.25); q2: 3 then a tie at 0 -> overall
    assert router.route(q).tolist() == [0, 1, 1]


def test_without_training_queries_the_router_refuses_with_one_line(tmp_path, capsys):
    beir = write_beir(tmp_path / "b", [{"_id": "d1", "title": "", "text": "rain"},
                                      {"_id": "d2", "title": "", "text": "goal"}],
                      [{"_id": "q1", "text": "rain"}], [("q1", "d1", 1)])
    code = main(["--db", str(tmp_path / "x.sqlite"), "bench-retrieval", "--beir", str(beir), "--model",
                 "all-MiniLM-L6-v2", "--methods", "router", "--json", str(tmp_path / "o.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "router needs training queries with judgements" in err[0]
    assert not (tmp_path / "o.json").exists()
