"""One comparison pipeline: `bench-retrieval` and the Retrieval page's job give the same metrics on the same input,
and a corpus-fitted model (tfidf-svd) embeds the queries with the corpus's fit (issue 10)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from builders import write_beir

from embedlab.runs import RetrievalRun, load_run

TOPICS = {
    "astronomy": "planet star orbit telescope galaxy comet nebula asteroid",
    "baking": "bread flour oven dough yeast crust pastry butter",
    "music": "guitar chord melody rhythm drum piano song tempo",
    "ocean": "wave tide coral reef whale current shore surf",
    "cars": "engine wheel brake gearbox exhaust clutch tyre piston",
    "garden": "tulip soil compost seed hedge lawn rose shovel",
    "finance": "stock bond dividend market investor equity loan bank",
    "medicine": "vaccine patient doctor fever clinic dose symptom therapy",
    "football": "goal striker referee penalty match league keeper pitch",
    "weather": "rain cloud storm thunder forecast wind snow humidity",
}
QUALITY = ("ndcg@10", "recall@10", "recall@100", "mrr@10", "map@100", "index_bytes")


def tiny_beir(root: Path, docs_per_topic: int = 5, seed: int = 0) -> Path:
    """50 documents (5 per topic: 9 words of their topic, 3 of another), 10 queries (3 words of a topic) judged
    against their topic's documents, the first one graded 2."""
    rng = np.random.default_rng(seed)
    names = list(TOPICS)
    docs, queries, qrels = [], [], []
    for t, name in enumerate(names):
        words = TOPICS[name].split()
        for j in range(docs_per_topic):
            other = TOPICS[names[(t + 1 + j) % len(names)]].split()
            body = list(rng.choice(words, 9)) + list(rng.choice(other, 3))
            rng.shuffle(body)
            docs.append({"_id": f"{name}-{j}", "title": f"note {t * docs_per_topic + j}", "text": " ".join(body)})
            qrels.append((f"q-{name}", f"{name}-{j}", 2 if j == 0 else 1))
        queries.append({"_id": f"q-{name}", "text": " ".join(rng.choice(words, 3, replace=False))})
    order = rng.permutation(len(docs))                  # topics interleaved in the corpus
    return write_beir(root, [docs[i] for i in order], queries, qrels)


def cli_bench(beir: Path, db: Path, out: Path, model: str, methods: str) -> dict:
    from embedlab.cli import main

    code = main(["--db", str(db), "bench-retrieval", "--beir", str(beir), "--json", str(out), "--model", model,
                 "--methods", methods])
    assert code == 0
    return json.loads(out.read_text())


def page_job(beir: Path, db_path: Path, model: str, methods: list[str]) -> RetrievalRun:
    """The page's `retrieval` job, run as the page submits it (validated params, source "beir")."""
    from embedlab.jobs import run_job
    from embedlab.retrieval.params import validate_params
    from storage import connect
    from storage.sessions import ensure_session

    db = connect(db_path)
    try:
        sid = ensure_session(db, "s")
        params = validate_params({"session_id": sid, "source": "beir", "beir_dir": str(beir), "split": "test",
                                  "model": model, "methods": methods})
        ref = run_job(db, "retrieval", params, session_id=sid)
        return load_run(db, int(ref.split(":")[1]))
    finally:
        db.close()


def assert_same_metrics(cli: dict, run: RetrievalRun, methods: list[str]) -> None:
    assert list(cli["methods"]) == list(run.metrics) == methods
    for m in methods:
        a, b = cli["methods"][m], run.metrics[m]
        assert set(a) == set(b), m
        for key in QUALITY:
            assert a[key] == b[key], (m, key, a[key], b[key])
    d = run.details
    assert (cli["n_docs"], cli["n_queries"], cli["dataset"]) == (d["n_docs"], d["n_queries"], d["dataset"])
    assert run.dataset == cli["dataset"] == "tiny"


@pytest.fixture
def beir(tmp_path):
    return tiny_beir(tmp_path / "beir-tiny")


def test_cli_and_page_job_agree_tfidf(beir, tmp_path):
    methods = ["bm25", "dense"]
    cli = cli_bench(beir, tmp_path / "cli.sqlite", tmp_path / "out.json", "tfidf-svd", ",".join(methods))
    run = page_job(beir, tmp_path / "page.sqlite", "tfidf-svd", methods)
    assert cli["n_docs"] == 50 and cli["n_queries"] == 10 and cli["model"] == "tfidf-svd"
    assert_same_metrics(cli, run, methods)
    assert cli["methods"]["dense"]["ndcg@10"] > 0.5       # the queries land in the documents' space


def test_cli_run_kept_in_a_session_is_the_page_run(beir, tmp_path):
    """`bench-retrieval --session` and the page's job store a run through one writer: the same validated params
    (the session is the run's, not a param), the same drill-down details (per-query nDCG, rankings, judgements), so
    the Retrieval page's drill-down and the Atlas's map views read a CLI run as they read a page's. A CLI run stored
    before issue 21 (raw argparse values) reads, migrated, with the same params."""
    from embedlab.cli import main
    from embedlab.runs import list_runs, load_run
    from storage import connect

    db_path = tmp_path / "both.sqlite"
    assert main(["--db", str(db_path), "bench-retrieval", "--beir", str(beir), "--model", "tfidf-svd",
                 "--methods", "bm25,dense", "--session", "s"]) == 0
    page = page_job(beir, db_path, "tfidf-svd", ["bm25", "dense"])
    db = connect(db_path)
    cli_run = load_run(db, next(r.id for r in list_runs(db, page.session_id, "retrieval") if r.id != page.id))
    assert cli_run.params == page.params and "session_id" not in page.params
    assert page.params == {"source": "beir", "beir_dir": str(beir), "split": "test", "model": "tfidf-svd",
                           "methods": ["bm25", "dense"], "params": {}, "baseline": "bm25", "max_docs": None,
                           "max_queries": None, "dataset": "tiny"}
    for key in ("per_query", "rankings", "qrels", "n_relevant", "queries", "significance", "baseline"):
        assert cli_run.details[key] == page.details[key], key
    assert set(cli_run.details) == set(page.details) and cli_run.schema == page.schema == 2
    assert set(cli_run.details["per_query"]["dense"]) == {f"q-{t}" for t in TOPICS}
    # the CLI's run as the code before issue 21 stored it (its argparse values and its JSON beside the details)
    old_params = {"command": "bench-retrieval", "beir": str(beir), "split": "test", "model": "tfidf-svd",
                  "methods": "bm25,dense", "session": "s"}
    old_details = {k: v for k, v in cli_run.details.items() if k not in ("embed_s", "schema")}
    old_details.update(split="test", model="tfidf-svd", methods=cli_run.metrics)
    db.execute("INSERT INTO runs (session_id, kind, params_json, metrics_json, details_json, created_at) "
               "VALUES (?, 'retrieval', ?, ?, ?, 'then')",
               [page.session_id, json.dumps(old_params), json.dumps(cli_run.metrics), json.dumps(old_details)])
    db.conn.commit()
    old = load_run(db, max(r.id for r in list_runs(db, page.session_id)))
    db.close()
    assert old.schema == 1 and old.params == page.params and set(old.details) == set(page.details) - {"embed_s"}


@pytest.mark.slow
def test_cli_and_page_job_agree_minilm(beir, tmp_path):
    methods = ["bm25", "dense", "maxsim"]
    cli = cli_bench(beir, tmp_path / "cli.sqlite", tmp_path / "out.json", "all-MiniLM-L6-v2", ",".join(methods))
    run = page_job(beir, tmp_path / "page.sqlite", "all-MiniLM-L6-v2", methods)
    assert_same_metrics(cli, run, methods)
    assert cli["methods"]["dense"]["ndcg@10"] > 0.5 and cli["methods"]["maxsim"]["ndcg@10"] > 0.5


def _ndcg_at_10(ranked: list[str], judged: dict[str, int]) -> float:
    """trec_eval's nDCG@10: gain = graded relevance, discount log2(rank + 1)."""
    dcg = sum(judged.get(d, 0) / np.log2(r + 2) for r, d in enumerate(ranked[:10]))
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:10]
    idcg = sum(g / np.log2(r + 2) for r, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def test_tfidf_dense_matches_the_hand_recipe(beir, tmp_path):
    """TF-IDF + SVD fitted once on the documents, the queries transformed with that same fit, cosine: the
    pipeline must give the same nDCG@10 (a refit on the queries gave 0.0033 instead of 0.4957 on SciFact)."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    from embedlab.retrieval.beir import load_beir

    ds = load_beir(beir, "test")
    docs = ds.corpus_texts                                   # title + " " + text, as BEIR embeds them
    vec = TfidfVectorizer(sublinear_tf=True, stop_words="english", max_features=50_000)
    X = vec.fit_transform(docs)
    k = min(256, len(docs) - 1, len(vec.vocabulary_) - 1)   # tfidf-svd's 256 dimensions, capped by a tiny corpus
    svd = TruncatedSVD(n_components=k, random_state=0)
    D = svd.fit_transform(X)
    Q = svd.transform(vec.transform(ds.queries))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    scores = Q @ D.T
    by_hand = np.mean([_ndcg_at_10([ds.doc_ids[i] for i in np.argsort(-scores[qi], kind="stable")], ds.qrels[q])
                       for qi, q in enumerate(ds.query_ids)])
    assert by_hand > 0.5

    out = cli_bench(beir, tmp_path / "db.sqlite", tmp_path / "out.json", "tfidf-svd", "dense")
    assert out["methods"]["dense"]["ndcg@10"] == pytest.approx(by_hand, abs=1e-6)
    run = page_job(beir, tmp_path / "db.sqlite", "tfidf-svd", ["dense"])     # documents now from the cache
    assert run.metrics["dense"]["ndcg@10"] == pytest.approx(by_hand, abs=1e-6)


def test_labels_queries_use_the_corpus_space_documents(db, session_id):
    """Queries drawn from a corpus's labels are its documents' rows in the corpus space (no second embedding)."""
    from builders import stored_corpus

    from embedlab.embedding.space import EmbeddingSpace
    from embedlab.retrieval.comparison import compare_methods

    texts = [f"{TOPICS[n]} item{i}" for i, n in enumerate(list(TOPICS)[:3] * 6)]
    labels = [n for n in list(TOPICS)[:3] * 6]
    _, info = stored_corpus(db, texts, labels, name="small")
    done = compare_methods(db, {"source": "labels", "corpus_id": info.id, "n_queries": 6, "seed": 0,
                                "model": "tfidf-svd", "methods": ["dense"]})
    comp = done.comparison
    docs = EmbeddingSpace.for_corpus(db, info.id, "tfidf-svd").documents()
    assert np.array_equal(comp.queries.embeddings(), docs[comp.query_rows])
    assert done.metrics["dense"]["ndcg@10"] > 0.9


def test_bad_input_exits_2_with_one_line_and_writes_nothing(beir, tmp_path, capsys):
    from embedlab.cli import main

    out = tmp_path / "out.json"
    cases = [(["--model", "tfidf-svd", "--methods", "maxsim"], "token embeddings"),
             (["--methods", "bm25,nope"], "unknown retrieval method"),
             (["--methods", "bm25", "--split", "dev"], "splits found: test"),
             (["--methods", "bm25", "--max-docs", "0"], "--max-docs")]
    for extra, message in cases:
        code = main(["--db", str(tmp_path / "db.sqlite"), "bench-retrieval", "--beir", str(beir), "--json", str(out),
                     *extra])
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert code == 2 and len(errors) == 1 and message in errors[0], (extra, err)
        assert not out.exists()


def test_default_methods_leave_out_token_methods_for_tfidf(beir):
    from embedlab.retrieval.params import validate_comparison
    from embedlab.retrieval.registry import parse_method_list

    p = validate_comparison({"source": "beir", "beir_dir": str(beir), "model": "tfidf-svd", "methods": None})
    assert "maxsim" not in p["methods"] and "muvera" not in p["methods"] and "dense" in p["methods"]
    p = validate_comparison({"source": "beir", "beir_dir": str(beir), "model": "all-MiniLM-L6-v2"})
    assert p["methods"] == parse_method_list(None) and p["dataset"] == "tiny"


def test_typed_query_is_encoded_with_the_corpus_fit(db, session_id):
    """The typed query goes through the corpus's space: tfidf-svd scores are the hand recipe's cosines, and the
    dense-like methods of one corpus and model share one space (one fit)."""
    from builders import stored_corpus
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    from embedlab.retrieval import typed_query

    texts = [f"{TOPICS[n]} {TOPICS[m].split()[i % 8]} item{i}"
             for i, (n, m) in enumerate(zip(list(TOPICS) * 3, list(TOPICS)[1:] * 3 + list(TOPICS)[:1]))]
    _, info = stored_corpus(db, texts, name="typed")
    typed_query.clear_index_cache()
    out = typed_query.rank_typed_query(db, info.id, "tfidf-svd", "coral reef whale", ["dense", "hnsw"], k=5)
    vec = TfidfVectorizer(sublinear_tf=True, stop_words="english", max_features=50_000)
    X = vec.fit_transform(texts)
    svd = TruncatedSVD(n_components=min(256, len(texts) - 1, len(vec.vocabulary_) - 1), random_state=0)
    D = svd.fit_transform(X)
    q = svd.transform(vec.transform(["coral reef whale"]))[0]
    cos = D @ q / (np.linalg.norm(D, axis=1) * np.linalg.norm(q))
    rows = [row for row, _, _ in out["dense"]]
    assert rows == list(np.argsort(-cos, kind="stable")[:5])
    assert [s for _, _, s in out["dense"]] == pytest.approx(cos[rows], abs=1e-5)
    assert all(texts[r].startswith(TOPICS["ocean"]) for r in rows[:3])
    spaces = {id(entry.space) for entry in typed_query._INDEXES.values()}
    assert len(typed_query._INDEXES) == 2 and len(spaces) == 1
