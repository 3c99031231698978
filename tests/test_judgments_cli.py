"""`judgments import | export | agreement` and `bench-retrieval --judgments` (issue 25): BEIR's files accepted as
they are, a round trip between sessions, hostile qrels files refused in one line with nothing written, and the same
numbers as `bench-retrieval --beir` on the same collection."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from embedlab import judgments as J
from storage import connect
from storage.corpora import list_corpora, load_documents
from storage.sessions import require_session
from tests.builders import write_beir
from tests.test_judgments import GRADES_A, GRADES_B
from tests.trust_support import cli, refused

TOPICS = ["volcano", "glacier", "desert", "reef", "forest", "tundra", "canyon", "delta"]
DOCS = [{"_id": f"d{i}", "title": f"{t.title()} note {i}",
         "text": f"the {t} {w} shapes the land and the {t} changes slowly"}
        for i, (t, w) in enumerate((t, w) for t in TOPICS for w in ("wind", "water", "ice"))]        # 24 documents
QUERIES = [{"_id": f"q{i}", "text": f"how does the {t} change"} for i, t in enumerate(TOPICS)]
QRELS = [(f"q{i}", f"d{3 * i + j}", 1 + (j == 0)) for i in range(len(TOPICS)) for j in range(2)]


@pytest.fixture
def beir(tmp_path) -> Path:
    root = write_beir(tmp_path / "beir-toy", DOCS, QUERIES, QRELS)
    (root / "qrels" / "test.tsv").write_text((root / "qrels" / "test.tsv").read_text() + "d5\td6\t1\n")
    return root                                                   # the last judgment's query is a document


def ingest(capsys, db: Path, beir: Path, session: str = "S", *extra: str) -> None:
    rc, err, _, _ = cli(capsys, "--db", db, "ingest", beir / "corpus.jsonl", "--session", session, "--id-col", "_id",
                        *extra)
    assert rc == 0, err


def import_qrels(capsys, db: Path, beir: Path, *extra: str) -> str:
    rc, err, out, _ = cli(capsys, "--db", db, "judgments", "import", beir / "qrels" / "test.tsv", "--session", "S",
                          "--corpus", "corpus", "--queries", beir / "queries.jsonl", *extra)
    assert rc == 0, err
    return out


def stored(db_path: Path, session: str = "S") -> list[tuple]:
    db = connect(db_path)
    try:
        sid = require_session(db, session)
        return [(r.query, r.doc_idx, r.grade, r.judge) for r in J.judgments(db, sid)]
    finally:
        db.close()


def test_a_beir_corpus_is_ingested_as_title_and_text(capsys, db_path, beir):
    ingest(capsys, db_path, beir)
    ingest(capsys, db_path, beir, "T", "--text-col", "text")
    db = connect(db_path)
    joined, = list_corpora(db, require_session(db, "S"))
    body, = list_corpora(db, require_session(db, "T"))
    assert joined.text_col == "title + text" and "text" not in joined.meta_cols and "title" in joined.meta_cols
    first = load_documents(db, joined.id)[0]
    assert first["text"] == f"{DOCS[0]['title']} {DOCS[0]['text']}" and first["doc_id"] == "d0"
    assert body.text_col == "text" and load_documents(db, body.id)[0]["text"] == DOCS[0]["text"]


def test_beir_qrels_import_with_document_and_typed_queries(capsys, db_path, beir):
    ingest(capsys, db_path, beir)
    out = import_qrels(capsys, db_path, beir, "--judge", "beir")
    assert "imported 17 judgments of 9 queries (1 of them documents of the corpus)" in out
    rows = stored(db_path)
    assert rows[0] == (J.Query.typed(QUERIES[0]["text"]), 0, 2, "beir") and rows[1][1:3] == (1, 1)
    assert rows[-1] == (J.Query.document(5), 6, 1, "beir")        # "d5" is a document of the corpus: its query


def test_export_then_import_into_another_session_gives_identical_judgments(capsys, db_path, beir, tmp_path):
    ingest(capsys, db_path, beir)
    ingest(capsys, db_path, beir, "T")
    db = connect(db_path)
    sid = require_session(db, "S")
    cid = list_corpora(db, sid)[0].id
    J.record_many(db, sid, cid, [J.NewJudgment(J.Query.document(4), 7, 2, "ann"),
                                 J.NewJudgment(J.Query.document(4), 12, 0, "ann"),
                                 J.NewJudgment(J.Query.typed("ice on the glacier\tmelts"), 3, 1, "ann"),
                                 J.NewJudgment(J.Query.typed("reef 🐠 «quoted»"), 9, 3, "ann")])
    db.close()
    rc, err, _, _ = cli(capsys, "--db", db_path, "judgments", "export", "--session", "S", "--corpus", "corpus",
                        "--out", tmp_path / "out")
    assert rc == 0, err
    qrels = (tmp_path / "out" / "qrels.tsv").read_text().splitlines()
    assert qrels[:2] == ["d4\t0\td7\t2", "d4\t0\td12\t0"] and len(qrels) == 4
    queries = [json.loads(line) for line in (tmp_path / "out" / "queries.jsonl").read_text().splitlines()]
    assert queries[0] == {"_id": "d4", "text": DOCS[4]["title"] + " " + DOCS[4]["text"]}
    assert queries[1]["text"] == "ice on the glacier\tmelts" and queries[1]["_id"].startswith("q-")
    rc, err, _, _ = cli(capsys, "--db", db_path, "judgments", "import", tmp_path / "out" / "qrels.tsv", "--session",
                        "T", "--corpus", "corpus", "--queries", tmp_path / "out" / "queries.jsonl", "--judge", "ann")
    assert rc == 0, err
    assert stored(db_path, "T") == stored(db_path, "S") and len(stored(db_path, "S")) == 4


def _hostile(tmp_path: Path, name: str) -> tuple[Path, Path, tuple[str, ...]]:
    """(qrels, queries, words the refusal must hold) of one hostile case."""
    qrels, queries = tmp_path / "qrels.tsv", tmp_path / "queries.jsonl"
    queries.write_text("".join(json.dumps(q) + "\n" for q in QUERIES))
    header = "query-id\tcorpus-id\tscore\n"
    if name == "unknown doc id":
        qrels.write_text(header + "q0\td1\t1\nq1\tnot-a-doc\t1\nq2\talso-missing\t2\n")
        return qrels, queries, ("2 doc id(s) not in the corpus", "'not-a-doc'", "line 3")
    if name == "queries file missing a query":
        qrels.write_text(header + "q0\td1\t1\nq99\td2\t1\n")
        return qrels, queries, ("'q99'", "neither in the queries file nor a document")
    if name == "grade 7":
        qrels.write_text("q0 0 d1 1\nq1 0 d2 7\n")
        return qrels, queries, ("row 2", "grade '7'", "0 to 3")
    if name == "negative grade":
        qrels.write_text(header + "q0\td1\t-1\n")
        return qrels, queries, ("grade '-1'",)
    if name == "200 MB":
        with open(qrels, "wb") as fh:                # sparse: no 200 MB written to disk
            fh.truncate(200 * 1024 * 1024)
        return qrels, queries, ("200 MB", "over the limit of 100 MB")
    if name == "binary junk":
        qrels.write_bytes(os.urandom(4096) + b"\x00")
        return qrels, queries, ("binary",)
    if name == "not UTF-8":
        qrels.write_bytes(b"q0\t0\td1\t1\n\xff\xfe caf\xe9\n")
        return qrels, queries, ("not UTF-8",)
    if name == "3 columns without a header":
        qrels.write_text("q0\td1\t1\nq1\td2\t1\n")
        return qrels, queries, ("header", "row 1")
    if name == "mixed layouts":
        qrels.write_text("q0 0 d1 1\nq1\td2\t1\n")
        return qrels, queries, ("one layout per file",)
    if name == "conflicting grades":
        qrels.write_text("q0 0 d1 1\nq0 0 d1 2\n")
        return qrels, queries, ("graded 1 on line 1 and 2 here",)
    if name == "queries file not JSON":
        qrels.write_text(header + "q0\td1\t1\n")
        queries.write_text('{"_id": "q0", "text": "fine"}\n{not json\n')
        return qrels, queries, ("queries.jsonl", "row 2", "not valid JSON")
    if name == "no judgments":
        qrels.write_text(header)
        return qrels, queries, ("no judgments",)
    raise AssertionError(name)


HOSTILE = ["unknown doc id", "queries file missing a query", "grade 7", "negative grade", "200 MB", "binary junk",
           "not UTF-8", "3 columns without a header", "mixed layouts", "conflicting grades", "queries file not JSON",
           "no judgments"]


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_qrels_refused_in_one_line_with_nothing_written(capsys, db_path, beir, tmp_path, case):
    ingest(capsys, db_path, beir)
    import_qrels(capsys, db_path, beir, "--judge", "first")           # something there that must stay as it is
    qrels, queries, words = _hostile(tmp_path, case)
    refused(capsys, db_path, "judgments", "import", qrels, "--session", "S", "--corpus", "corpus", "--queries",
            queries, contains=words)


def test_refusals_of_the_other_commands(capsys, db_path, beir, tmp_path):
    ingest(capsys, db_path, beir)
    refused(capsys, db_path, "judgments", "export", "--session", "S", "--corpus", "corpus", "--out", tmp_path / "x",
            contains=("no judgments",))
    assert not (tmp_path / "x").exists()
    refused(capsys, db_path, "judgments", "agreement", "--session", "S", "--corpus", "corpus", "--judges", "a",
            contains=("two judges",))
    refused(capsys, db_path, "judgments", "import", beir / "qrels" / "test.tsv", "--session", "S", "--corpus",
            "nope", "--queries", beir / "queries.jsonl", contains=("no corpus named 'nope'",))
    refused(capsys, db_path, "judgments", "import", db_path, "--session", "S", "--corpus", "corpus", "--queries",
            beir / "queries.jsonl", contains=("that is the database",))
    refused(capsys, db_path, "bench-retrieval", "--judgments", "S", "--model", "tfidf-svd",
            contains=("no corpus with judgments",))
    refused(capsys, db_path, "bench-retrieval", "--judgments", "nobody:corpus", "--model", "tfidf-svd",
            contains=("no session of that name",))


def test_agreement_json_matches_the_hand_computed_kappa(capsys, db_path, beir, tmp_path):
    ingest(capsys, db_path, beir)
    db = connect(db_path)
    sid = require_session(db, "S")
    cid = list_corpora(db, sid)[0].id
    q = J.Query.typed("desert wind")
    J.record_many(db, sid, cid, [J.NewJudgment(q, d, g, judge) for judge, grades in (("ann", GRADES_A),
                                                                                      ("bob", GRADES_B))
                                 for d, g in enumerate(grades)])
    db.close()
    rc, err, out, _ = cli(capsys, "--db", db_path, "judgments", "agreement", "--session", "S", "--corpus", "corpus",
                          "--judges", "ann,bob", "--json", tmp_path / "a.json")
    assert rc == 0, err
    p_o, p_e = 0.7, 0.36                                           # see test_judgments: 7 of 10 equal
    expected = {"pairs": 10, "agreement": p_o, "kappa": round((p_o - p_e) / (1 - p_e), 6)}
    assert json.loads(out) == expected == json.loads((tmp_path / "a.json").read_text())


def test_bench_on_judgments_gives_the_numbers_of_the_beir_bench(capsys, db_path, beir, tmp_path):
    (beir / "qrels" / "test.tsv").write_text("\n".join(["query-id\tcorpus-id\tscore",
                                                        *(f"{q}\t{d}\t{s}" for q, d, s in QRELS)]) + "\n")
    ingest(capsys, db_path, beir)
    import_qrels(capsys, db_path, beir)
    args = ["--model", "tfidf-svd", "--methods", "bm25,dense"]
    rc, err, out, _ = cli(capsys, "--db", db_path, "bench-retrieval", "--beir", beir, *args)
    assert rc == 0, err
    on_beir = json.loads(out)
    rc, err, out, _ = cli(capsys, "--db", db_path, "bench-retrieval", "--judgments", "S:corpus", *args, "--json",
                          tmp_path / "j.json", "--session", "S")
    assert rc == 0, err
    on_judgments = json.loads(out)
    assert set(on_judgments) == set(on_beir) | {"condensed"}
    assert on_judgments["n_queries"] == on_beir["n_queries"] == len(QUERIES)
    for method in ("bm25", "dense"):
        for metric in ("ndcg@10", "recall@100", "mrr@10", "map@100"):
            assert on_judgments["methods"][method][metric] == pytest.approx(on_beir["methods"][method][metric],
                                                                            abs=1e-6)
        assert set(on_judgments["condensed"][method]) >= {"ndcg@10", "recall@100"}
        # only relevant documents are judged here: the condensed list holds them alone, in the method's order
        assert on_judgments["condensed"][method]["recall@100"] == on_judgments["methods"][method]["recall@100"]
    assert json.loads((tmp_path / "j.json").read_text()) == on_judgments
    rc, err, out, _ = cli(capsys, "--db", db_path, "bench-retrieval", "--judgments", "S", *args)   # its one corpus
    assert rc == 0 and json.loads(out)["methods"]["bm25"]["ndcg@10"] == on_judgments["methods"]["bm25"]["ndcg@10"]
