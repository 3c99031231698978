"""SciFact (issue 25's acceptance): the corpus ingested as BEIR embeds it (title + text), SciFact's 300 test queries
imported as judgments, and `bench-retrieval --judgments` giving the nDCG@10 of `bench-retrieval --beir` per method
(unjudged documents count as not relevant in both)."""
from __future__ import annotations

import json

import pytest

from storage import connect
from storage.corpora import list_corpora, load_documents
from storage.sessions import require_session
from tests.trust_support import cli


@pytest.mark.slow
def test_scifact_judgments_reproduce_the_beir_bench(capsys, db_path, shared_data, tmp_path):
    scifact = shared_data / "beir-scifact"
    rc, err, out, _ = cli(capsys, "--db", db_path, "ingest", scifact / "corpus.jsonl.gz", "--session", "S",
                          "--id-col", "_id")
    assert rc == 0 and "text column 'title + text'" in out, err
    db = connect(db_path)
    info, = list_corpora(db, require_session(db, "S"))
    first = load_documents(db, info.id, [0])[0]
    assert info.n_docs == 5183 and first["doc_id"] == "4983"
    assert first["text"].startswith("Microstructural development of human newborn cerebral white matter assessed "
                                     "in vivo by diffusion tensor magnetic resonance imaging. Alterations of")
    db.close()
    rc, err, out, _ = cli(capsys, "--db", db_path, "judgments", "import", scifact / "qrels" / "test.tsv", "--session",
                          "S", "--corpus", info.name, "--queries", scifact / "queries.jsonl", "--judge", "scifact")
    assert rc == 0 and "imported 339 judgments of 300 queries (0 of them documents" in out, err
    args = ["--methods", "bm25,dense", "--model", "tfidf-svd"]
    rc, err, out, _ = cli(capsys, "--db", db_path, "bench-retrieval", "--judgments", f"S:{info.name}", *args)
    assert rc == 0, err
    judged = json.loads(out)
    rc, err, out, _ = cli(capsys, "--db", db_path, "bench-retrieval", "--beir", scifact, "--split", "test", *args)
    assert rc == 0, err
    beir = json.loads(out)
    assert judged["n_queries"] == beir["n_queries"] == 300 and judged["n_docs"] == beir["n_docs"] == 5183
    for method in ("bm25", "dense"):
        assert abs(judged["methods"][method]["ndcg@10"] - beir["methods"][method]["ndcg@10"]) <= 0.001, method
    assert judged["methods"]["bm25"]["ndcg@10"] > 0.6          # BEIR's BM25 on SciFact: 0.665 (Lucene); ours 0.679
    assert set(judged["condensed"]) == {"bm25", "dense"}
