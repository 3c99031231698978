"""Relevance judgments (issue 25): storage and its checks, two judges' agreement computed by hand, depth-k pooling
and judged@10 by hand, the "judgments" query source with its condensed lists checked by hand, the Atlas's reading
of such a run, the report's section, and judgments travelling with a session file."""
from __future__ import annotations

import math
import sqlite3

import numpy as np
import pytest

from embedlab import judgments as J
from embedlab.errors import InputError, UserError
from embedlab.judgment_pool import build_pool, judgment_pool, pool_queries
from embedlab.map_retrieval import fit_run, query_row
from embedlab.retrieval.comparison import compare_methods
from embedlab.retrieval.evaluate import evaluate_run
from embedlab.retrieval.judged import condensed_metrics, condensed_run
from embedlab.retrieval.run_details import judgments_note
from embedlab.runs import load_run, save_retrieval_run
from embedlab.session_files import import_session_file
from storage.sessions import duplicate_session
from storage.transfer import ImportRefused, export_session
from tests.builders import stored_corpus
from tests.fakes import FakeEmbedder

ANIMALS = ["zebra", "lion", "otter", "heron", "moose", "gecko"]
TEXTS = [f"the {a} {b} sits by the {c}" for a in ANIMALS for b, c in
         (("quietly", "river"), ("loudly", "hill"), ("calmly", "lake"), ("sadly", "road"))]   # 24 documents


@pytest.fixture
def corpus(db):
    return stored_corpus(db, TEXTS)


# --- storage -------------------------------------------------------------------------------------------------


def test_a_pair_judged_again_is_replaced_and_bad_judgments_are_refused(db, corpus):
    sid, info = corpus
    q = J.Query.document(0)
    J.record(db, sid, info.id, q, 5, J.RELEVANT, "ann")
    J.record(db, sid, info.id, q, 5, J.PARTLY, "ann")                 # re-judged: replaced, not added
    J.record(db, sid, info.id, J.Query.typed("  zebra by the river "), 1, J.NOT_RELEVANT, "ann")
    rows = J.judgments(db, sid, info.id)
    assert [(r.query, r.doc_idx, r.grade, r.judge) for r in rows] == [
        (J.Query.document(0), 5, 1, "ann"), (J.Query.typed("zebra by the river"), 1, 0, "ann")]
    assert rows[1].query.text == "zebra by the river" and rows[1].query.key.startswith("text:")
    assert J.grades_of(db, sid, info.id, q, "ann") == {5: 1}
    before = J.judgments(db, sid, info.id)
    for grade, doc, judge, query in [(7, 1, "ann", q), (-1, 1, "ann", q), (1.5, 1, "ann", q), (True, 1, "ann", q),
                                     (2, 24, "ann", q), (2, -1, "ann", q), (2, 1, "", q), (2, 1, "x" * 65, q),
                                     (2, 1, "a\nb", q), (2, 1, "ann", J.Query.document(99))]:
        with pytest.raises(InputError):
            J.record(db, sid, info.id, query, doc, grade, judge)
    with pytest.raises(InputError):
        J.Query.typed("   ")
    with pytest.raises(InputError):
        J.record(db, sid + 1, info.id, q, 1, 2, "ann")               # the corpus is another session's
    assert J.judgments(db, sid, info.id) == before                    # nothing written by a refusal
    assert J.clear(db, sid, info.id, q, 5, "ann") and not J.clear(db, sid, info.id, q, 5, "ann")


def test_judged_queries_count_each_pair_once_across_judges(db, corpus):
    sid, info = corpus
    q = J.Query.typed("otter")
    J.record_many(db, sid, info.id, [J.NewJudgment(q, 8, 2, "ann"), J.NewJudgment(q, 8, 0, "bob"),
                                     J.NewJudgment(q, 9, 1, "bob"), J.NewJudgment(J.Query.document(3), 2, 0, "bob")])
    found = J.judged_queries(db, sid, info.id)
    assert [(j.query, j.judged, j.relevant, j.judges) for j in found] == [
        (q, 2, 1, ("ann", "bob")),                 # doc 8: lower median of 2 and 0 is 0; doc 9 relevant
        (J.Query.document(3), 1, 0, ("bob",))]
    assert J.judge_names(db, sid, info.id) == ["ann", "bob"]


# --- agreement -----------------------------------------------------------------------------------------------

GRADES_A = [2, 2, 1, 0, 0, 2, 1, 0, 2, 0]
GRADES_B = [2, 1, 1, 0, 2, 2, 0, 0, 2, 0]


def test_agreement_is_cohens_kappa_computed_by_hand(db, corpus):
    sid, info = corpus
    q = J.Query.typed("lion")
    for doc, (a, b) in enumerate(zip(GRADES_A, GRADES_B)):
        J.record(db, sid, info.id, q, doc, a, "ann")
        J.record(db, sid, info.id, q, doc, b, "bob")
    J.record(db, sid, info.id, q, 20, 2, "ann")                         # judged by one only: not shared
    found = J.agreement(db, sid, info.id, "ann", "bob")
    # by hand: 7 of 10 equal; marginals ann 0:4 1:2 2:4, bob 0:4 1:2 2:4 -> chance (16 + 4 + 16) / 100
    p_o, p_e = 7 / 10, (4 * 4 + 2 * 2 + 4 * 4) / 100
    assert found.pairs == 10 and found.agree == 7 and found.only_a == 1 and found.only_b == 0
    assert found.agreement == pytest.approx(p_o)
    assert found.kappa == pytest.approx((p_o - p_e) / (1 - p_e)) and found.kappa == pytest.approx(0.53125)
    assert [(d.doc_idx, d.grade_a, d.grade_b) for d in found.disagreements] == [(1, 2, 1), (4, 0, 2), (6, 1, 0)]
    assert found.confusion[(2, 2)] == 3 and found.confusion[(0, 2)] == 1
    assert found.as_json() == {"pairs": 10, "agreement": 0.7, "kappa": 0.53125}


def test_kappa_is_undefined_without_shared_pairs_or_with_one_grade(db, corpus):
    sid, info = corpus
    assert J.agreement_of({}, {}).kappa is None and J.agreement_of({}, {}).agreement is None
    same = {("doc:0", i): 2 for i in range(4)}
    found = J.agreement_of(same, dict(same))
    assert found.agreement == 1.0 and found.kappa is None
    with pytest.raises(InputError):
        J.agreement(db, sid, info.id, "ann", " ann ")


# --- pooling -------------------------------------------------------------------------------------------------


def test_pool_order_and_judged_at_10_by_hand():
    q0, q1 = J.Query.document(0), J.Query.typed("x")
    rankings = {"A": [[1, 2, 3], [4, 5, 6]], "B": [[2, 7, 1], [6, 8, 5]]}
    judged = {(q0.key, 1): 2, (q1.key, 4): 0}
    pool = build_pool([q0, q1], rankings, judged, depth=3)
    # ranks (absent = depth + 1 = 4) and their variance:
    # q0: d1 (1,3) 1.0 judged, d2 (2,1) .25, d3 (3,4) .25, d7 (4,2) 1.0
    # q1: d4 (1,4) 2.25 judged, d5 (2,3) .25, d6 (3,1) 1.0, d8 (4,2) 1.0
    order = [(c.query_no, c.doc_idx) for c in pool.candidates]
    assert order == [(1, 6), (0, 7), (1, 8),            # variance 1: held by 2 first, then query order
                     (0, 2), (1, 5), (0, 3),            # variance .25: held by 2 (best rank first), then by 1
                     (1, 4), (0, 1)]                    # the judged pairs last, in the same order
    assert [c.disagreement for c in pool.candidates] == [1.0, 1.0, 1.0, 0.25, 0.25, 0.25, 2.25, 1.0]
    assert [c.grade for c in pool.candidates[-2:]] == [0, 2] and len(pool.unjudged) == 6
    assert pool.coverage == {"A": pytest.approx((1 / 3 + 1 / 3) / 2), "B": pytest.approx((1 / 3 + 0) / 2)}


def test_pool_of_a_stored_corpus(db, corpus):
    sid, info = corpus
    sample = pool_queries(db, sid, info.id, "sample", n_queries=3, seed=4)
    assert sample == pool_queries(db, sid, info.id, "sample", n_queries=3, seed=4) and len(sample) == 3
    J.record(db, sid, info.id, J.Query.typed("zebra river"), 0, 2, "ann")
    J.record(db, sid, info.id, J.Query.document(5), 4, 1, "ann")
    pool = judgment_pool(db, sid, info.id, source="judged", methods=["bm25", "dense"], models=["tfidf-svd"],
                         depth=5)
    assert pool.systems == ["bm25", "dense"] and pool.queries == [J.Query.typed("zebra river"), J.Query.document(5)]
    pairs = [(c.query_no, c.doc_idx) for c in pool.candidates]
    assert len(pairs) == len(set(pairs)) and (1, 5) not in pairs          # a document never pools itself
    assert all(c.held_by >= 1 for c in pool.candidates) and pool.texts[1] == TEXTS[5]
    judged_first = [c.judged for c in pool.candidates]
    assert judged_first == sorted(judged_first)                          # unjudged pairs come first
    for s in pool.systems:
        assert 0.0 <= pool.coverage[s] <= 0.2 + 1e-9                       # at most 1 of its top 10 is judged
    several = judgment_pool(db, sid, info.id, source="typed", texts=["heron lake"], methods=["bm25", "dense"],
                            models=["tfidf-svd", FakeEmbedder()], depth=3)
    assert several.systems == ["bm25", "dense · tfidf-svd", "dense · fake"]       # bm25 reads no embedding: once
    with pytest.raises(UserError):
        judgment_pool(db, sid, info.id, source="typed", texts=[" "], models=["tfidf-svd"])


# --- scoring on judgments ------------------------------------------------------------------------------------


def _ndcg10(ranking: list[str], grades: dict[str, int]) -> float:
    dcg = sum(grades.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranking[:10]))
    ideal = sorted((g for g in grades.values() if g > 0), reverse=True)[:10]
    return dcg / sum(g / math.log2(i + 2) for i, g in enumerate(ideal))


def test_condensed_lists_by_hand():
    qrels = {"q": {"a": 1, "b": 0, "c": 2}}
    run = {"q": {"x": 5.0, "a": 4.0, "y": 3.0, "c": 2.0, "b": 1.0}}
    assert list(condensed_run(run, qrels)["q"]) == ["a", "c", "b"]
    ideal = 2 + 1 / math.log2(3)
    means, _ = condensed_metrics(qrels, {"m": run})
    assert means["m"]["ndcg@10"] == pytest.approx((1 + 2 / math.log2(3)) / ideal)            # 0.8597
    assert evaluate_run(qrels, run).mean["ndcg@10"] == pytest.approx((1 / math.log2(3) + 2 / math.log2(5)) / ideal)
    assert means["m"]["mrr@10"] == 1.0 and evaluate_run(qrels, run).mean["mrr@10"] == 0.5


def test_scores_on_my_judgments_with_condensed_lists_checked_by_hand(db, corpus):
    sid, info = corpus
    typed, doc_query = J.Query.typed("zebra sits by the river"), J.Query.document(6)
    J.record_many(db, sid, info.id, [J.NewJudgment(typed, 1, 2, "ann"), J.NewJudgment(typed, 0, 0, "ann"),
                                     J.NewJudgment(typed, 13, 1, "ann"), J.NewJudgment(doc_query, 2, 2, "ann"),
                                     J.NewJudgment(doc_query, 10, 0, "ann"),
                                     J.NewJudgment(J.Query.typed("no relevant one"), 3, 0, "ann")])
    done = compare_methods(db, {"source": "judgments", "corpus_id": info.id, "model": "tfidf-svd",
                                "methods": ["bm25", "dense"]})
    comp = done.comparison
    qid_typed, qid_doc = J.typed_query_id(typed), "6"
    assert comp.queries.ids == [qid_typed, qid_doc] and comp.document_queries == {qid_doc: 6}
    assert "1 judged quer" in comp.warnings[0]                    # the query without a relevant document left out
    grades = {qid_typed: {"1": 2, "0": 0, "13": 1}, qid_doc: {"2": 2, "10": 0}}
    assert comp.qrels == grades
    for name, result in done.results.items():
        rankings = {q: [comp.corpus.ids[d] for d in result.ids[i] if d >= 0] for i, q in enumerate(comp.queries.ids)}
        assert "6" not in rankings[qid_doc]                       # the query document left out of its own list
        full = np.mean([_ndcg10(rankings[q], grades[q]) for q in grades])
        condensed = np.mean([_ndcg10([d for d in rankings[q] if d in grades[q]], grades[q]) for q in grades])
        assert done.metrics[name]["ndcg@10"] == pytest.approx(full, abs=1e-6)
        assert done.condensed[name]["ndcg@10"] == pytest.approx(condensed, abs=1e-6)
    run = load_run(db, save_retrieval_run(db, sid, done))
    assert run.source == "judgments" and run.condensed == done.condensed and run.document_queries == {qid_doc: 6}
    assert run.params["corpus_id"] == info.id and run.judges is None
    assert "My judgments" in judgments_note(run.params, run.details) and judgments_note({"source": "beir"}, {}) is None
    # on the Atlas: the document query is its own place, the typed one is placed like a BEIR query
    fit = fit_run(run, corpus_id=info.id, corpus_name=info.name, doc_ids=[str(i) for i in range(len(TEXTS))])
    assert fit.fits and fit.rows[qid_doc] == 6
    assert query_row(run, qid_doc, fit.rows) == 6 and query_row(run, qid_typed, fit.rows) is None
    only_bob = {"source": "judgments", "corpus_id": info.id, "model": "tfidf-svd", "methods": ["bm25"],
                "judges": ["bob"]}
    with pytest.raises(InputError, match="no judged query by bob"):
        compare_methods(db, only_bob)


# --- report and session files --------------------------------------------------------------------------------


def test_the_report_shows_counts_per_judge_and_their_agreement(db, corpus):
    from embedlab.report import build_report

    sid, info = corpus
    q = J.Query.typed("lion")
    for doc, (a, b) in enumerate(zip(GRADES_A, GRADES_B)):
        J.record(db, sid, info.id, q, doc, a, "ann")
        J.record(db, sid, info.id, q, doc, b, "<b>bob</b>")
    html = build_report(db, "s")
    assert "Judgments of “c”" in html and "<td>0.700</td><td>0.531</td>" in html
    assert "&lt;b&gt;bob&lt;/b&gt;" in html and "<b>bob</b>" not in html


def _judged_session(db, corpus):
    sid, info = corpus
    J.record_many(db, sid, info.id, [J.NewJudgment(J.Query.document(2), 3, 2, "ann"),
                                     J.NewJudgment(J.Query.typed("otter by the lake"), 9, 1, "ann"),
                                     J.NewJudgment(J.Query.typed("otter by the lake"), 9, 0, "bob")])
    return sid, info


def _pairs(db, name: str) -> list[tuple]:
    sid = db.execute("SELECT id FROM sessions WHERE name = ?", [name]).fetchone()[0]
    return [(r.query, r.doc_idx, r.grade, r.judge, r.judged_at) for r in J.judgments(db, sid)]


def test_judgments_travel_with_a_session_file_and_a_copy(db, corpus, tmp_path):
    _judged_session(db, corpus)
    export_session(db, "s", tmp_path / "s.sqlite")
    name = import_session_file(db, tmp_path / "s.sqlite")
    assert name == "s (2)" and _pairs(db, name) == _pairs(db, "s") and len(_pairs(db, "s")) == 3
    copy = duplicate_session(db, "s")
    assert _pairs(db, copy) == _pairs(db, "s")


@pytest.mark.parametrize("change, message", [
    ("UPDATE judgments SET grade = 7", "grade"),
    ("UPDATE judgments SET doc_idx = 24", "outside"),
    ("UPDATE judgments SET query_key = 'doc:3' WHERE query_idx = 2", "query key"),
    ("UPDATE judgments SET judge = 'ann ' WHERE judge = 'ann'", "stored form"),
    ("UPDATE judgments SET query_text = 'x' WHERE query_text IS NOT NULL AND judge = 'bob'", "query key"),
    ("INSERT INTO judgments SELECT * FROM judgments WHERE judge = 'bob'", "twice"),
    ("DROP TABLE judgments", "no table 'judgments'"),
])
def test_a_session_file_with_bad_judgments_is_refused(db, corpus, tmp_path, change, message):
    _judged_session(db, corpus)
    path = tmp_path / "s.sqlite"
    export_session(db, "s", path)
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA ignore_check_constraints = ON")
    if change.startswith("INSERT"):                    # a file whose table has our columns but no primary key
        raw.executescript("CREATE TABLE j2 (session_id INTEGER NOT NULL, corpus_id INTEGER NOT NULL, query_key TEXT "
                          "NOT NULL, query_idx INTEGER, query_text TEXT, doc_idx INTEGER NOT NULL, grade INTEGER NOT "
                          "NULL, judge TEXT NOT NULL, judged_at TEXT NOT NULL); INSERT INTO j2 SELECT * FROM "
                          "judgments; DROP TABLE judgments; ALTER TABLE j2 RENAME TO judgments;")
    raw.execute(change)
    raw.commit()
    raw.close()
    before = db.execute("SELECT COUNT(*) FROM judgments").fetchone()[0]
    with pytest.raises(ImportRefused, match=message):
        import_session_file(db, path)
    assert db.execute("SELECT COUNT(*) FROM judgments").fetchone()[0] == before
    assert [r[0] for r in db.execute("SELECT name FROM sessions")] == ["s"]


def test_judging_changes_what_a_session_export_holds(db, corpus):
    from storage.sessions import session_fingerprint

    sid, info = corpus
    before = session_fingerprint(db, "s")
    J.record(db, sid, info.id, J.Query.document(1), 2, 2, "ann")
    judged = session_fingerprint(db, "s")
    J.record(db, sid, info.id, J.Query.document(1), 2, 1, "ann")        # a new grade of the same pair
    assert len({before, judged, session_fingerprint(db, "s")}) == 3       # a cached export is never reused stale
