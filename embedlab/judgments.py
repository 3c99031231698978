"""Relevance judgments: record and read a judge's grades, the agreement of two judges, and the judgments as qrels.

The UI and the CLI come in here (the UI through `embedlab.workspace.Workspace`'s `# --- judgments ---` section).
A query is a `Query` (= `storage.judgments.QueryRef`): a document of the corpus, `Query.document(idx)` (its
neighbours are judged), or a typed text, `Query.typed(text)` (search hits are judged). Grades: `RELEVANT` 2,
`PARTLY` 1, `NOT_RELEVANT` 0 (TREC's 0..3 scale; an imported qrels file may bring 3). One grade per (query,
document, judge): judging again replaces it.

Agreement of two judges is computed on the pairs both judged: raw agreement (share of identical grades) and Cohen's
kappa (scikit-learn's `cohen_kappa_score`, unweighted, on the grades as categories); kappa is None where it is
undefined (no shared pair, or both judges gave one and the same grade to every pair).

As qrels (`session_qrels`), a query is named by its document's id (the corpus's doc ids when unique, else the
index as text, as the labels source names documents) or, typed, by "q-" and the start of its key's hash; several
judges' grades of one pair combine to their lower median (`statistics.median_low`: two judges who disagree give the
lower grade).
"""
from __future__ import annotations

import math
import statistics
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import sqlite_utils

from embedlab.errors import InputError
from storage.corpora import get_corpus, load_documents
from storage.judgments import (
    MAX_GRADE,
    MAX_JUDGE_LEN,
    MAX_QUERY_CHARS,
    MIN_GRADE,
    JudgmentRow,
    NewJudgment,
    QueryRef,
    check_grade,
    clean_judge,
    clean_query_text,
    delete_judgment,
    judge_names,
    judgment_counts,
    load_judgments,
    query_key,
    save_judgments,
)

__all__ = ["DEFAULT_JUDGE", "GRADE_NAMES", "MAX_GRADE", "MAX_JUDGE_LEN", "MAX_QUERY_CHARS", "MIN_GRADE",
           "NOT_RELEVANT", "PARTLY", "RELEVANT", "Agreement", "Disagreement", "JudgedQuery", "JudgmentRow",
           "NewJudgment", "Query", "SessionQrels", "agreement", "agreement_of", "check_grade", "clean_judge",
           "clean_query_text", "clear", "cohen_kappa", "combined_grades", "grades_of", "judge_names", "judged_queries",
           "judgment_counts", "judgments", "query_key", "record", "record_many", "run_doc_ids", "session_qrels",
           "typed_query_id"]

Query = QueryRef
RELEVANT, PARTLY, NOT_RELEVANT = 2, 1, 0
GRADE_NAMES = {RELEVANT: "relevant", PARTLY: "partly relevant", NOT_RELEVANT: "not relevant", 3: "highly relevant"}
DEFAULT_JUDGE = "me"
Pair = tuple[str, int]            # (query key, document index)


# --- recording and reading -------------------------------------------------------------------------------------


def record(db: sqlite_utils.Database, session_id: int, corpus_id: int, query: Query, doc_idx: int, grade: int,
           judge: str) -> None:
    """Keep `judge`'s grade (0..3) of document `doc_idx` for `query` (replacing that judge's earlier grade of the
    pair). InputError for a grade, index, query or name that cannot be stored; nothing is written then."""
    save_judgments(db, session_id, corpus_id, [NewJudgment(query, doc_idx, grade, judge)])


def record_many(db: sqlite_utils.Database, session_id: int, corpus_id: int, items: Iterable[NewJudgment]) -> int:
    """Keep many judgments of one corpus in one transaction (all or none); returns how many."""
    return save_judgments(db, session_id, corpus_id, items)


def clear(db: sqlite_utils.Database, session_id: int, corpus_id: int, query: Query, doc_idx: int,
          judge: str) -> bool:
    """Remove `judge`'s grade of a pair; whether there was one."""
    return delete_judgment(db, session_id, corpus_id, query, doc_idx, judge)


def judgments(db: sqlite_utils.Database, session_id: int, corpus_id: int | None = None, *,
              judges: Sequence[str] | None = None, query: Query | None = None,
              doc_idxs: Sequence[int] | None = None) -> list[JudgmentRow]:
    """The stored judgments, filtered (one corpus, some judges, one query, some documents)."""
    return load_judgments(db, session_id, corpus_id, judges=judges, query=query, doc_idxs=doc_idxs)


def grades_of(db: sqlite_utils.Database, session_id: int, corpus_id: int, query: Query, judge: str,
              doc_idxs: Sequence[int] | None = None) -> dict[int, int]:
    """{document index: grade} that `judge` gave for `query` (only `doc_idxs` when given): the marks a list of
    results shows."""
    return {r.doc_idx: r.grade for r in load_judgments(db, session_id, corpus_id, judges=[judge], query=query,
                                                       doc_idxs=doc_idxs)}


@dataclass(frozen=True)
class JudgedQuery:
    """A query with judgments: how many documents were judged (by anyone, distinct), how many relevant (combined
    grade > 0), and by whom."""
    query: Query
    judged: int
    relevant: int
    judges: tuple[str, ...]


def judged_queries(db: sqlite_utils.Database, session_id: int, corpus_id: int, *,
                   judges: Sequence[str] | None = None) -> list[JudgedQuery]:
    """Every judged query of a corpus (by `judges`, default all), in the order of their first judgment."""
    rows = load_judgments(db, session_id, corpus_id, judges=judges)
    first: dict[str, Query] = {}
    for r in rows:
        first.setdefault(r.query.key, r.query)
    grades = combined_grades(rows)
    by_query: dict[str, list[int]] = {}
    for (key, _doc), grade in grades.items():
        by_query.setdefault(key, []).append(grade)
    who: dict[str, set[str]] = {}
    for r in rows:
        who.setdefault(r.query.key, set()).add(r.judge)
    return [JudgedQuery(q, len(by_query[k]), sum(1 for g in by_query[k] if g > 0), tuple(sorted(who[k])))
            for k, q in first.items()]


def combined_grades(rows: Iterable[JudgmentRow]) -> dict[Pair, int]:
    """{(query key, document index): grade}: one judge's grade, or several judges' lower median."""
    by_pair: dict[Pair, list[int]] = {}
    for r in rows:
        by_pair.setdefault(r.pair, []).append(r.grade)
    return {pair: int(statistics.median_low(gs)) for pair, gs in by_pair.items()}


# --- agreement -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Disagreement:
    """A pair two judges graded differently (`query` None only for a typed query `agreement_of` was not told)."""
    query: Query | None
    doc_idx: int
    grade_a: int
    grade_b: int


@dataclass(frozen=True)
class Agreement:
    """Two judges on the pairs both judged: `pairs` shared, `agree` of them with the same grade, `agreement`
    (agree / pairs) and Cohen's `kappa` (None where undefined), the `confusion` counts {(grade a, grade b): n} and
    the pairs they disagree on (query order, then document)."""
    judge_a: str
    judge_b: str
    pairs: int
    agree: int
    agreement: float | None
    kappa: float | None
    confusion: dict[tuple[int, int], int] = field(default_factory=dict)
    disagreements: list[Disagreement] = field(default_factory=list)
    only_a: int = 0           # pairs only judge a judged
    only_b: int = 0

    def as_json(self) -> dict:
        """`{"pairs", "agreement", "kappa"}`: the CLI's `judgments agreement` (undefined values as null)."""
        return {"pairs": self.pairs, "agreement": _round(self.agreement), "kappa": _round(self.kappa)}


def agreement_of(a: Mapping[Pair, int], b: Mapping[Pair, int], *, judge_a: str = "a", judge_b: str = "b",
                 queries: Mapping[str, Query] | None = None) -> Agreement:
    """Agreement of two judges' grades {(query key, document index): grade} on their shared pairs (pure)."""
    shared = sorted(set(a) & set(b))
    ga, gb = [int(a[p]) for p in shared], [int(b[p]) for p in shared]
    agree = sum(1 for x, y in zip(ga, gb) if x == y)
    confusion = dict(sorted(Counter(zip(ga, gb)).items()))
    queries = queries or {}
    disagreements = [Disagreement(queries.get(k) or _query_of_key(k), d, a[(k, d)], b[(k, d)])
                     for k, d in shared if a[(k, d)] != b[(k, d)]]
    return Agreement(judge_a, judge_b, len(shared), agree, agree / len(shared) if shared else None,
                     cohen_kappa(ga, gb), confusion, disagreements, len(set(a) - set(b)), len(set(b) - set(a)))


def cohen_kappa(ga: Sequence[int], gb: Sequence[int]) -> float | None:
    """Cohen's kappa of two equally long grade lists (scikit-learn); None when undefined (empty, or one grade
    everywhere from both judges, where the expected agreement is 1)."""
    from sklearn.metrics import cohen_kappa_score  # heavy third-party import, only when agreement is computed

    if not ga or len(set(ga) | set(gb)) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value = float(cohen_kappa_score(list(ga), list(gb)))
    return None if math.isnan(value) else value


def agreement(db: sqlite_utils.Database, session_id: int, corpus_id: int, judge_a: str, judge_b: str) -> Agreement:
    """Agreement of two judges of a corpus on the pairs both judged (InputError for the same name twice)."""
    a_name, b_name = clean_judge(judge_a), clean_judge(judge_b)
    if a_name == b_name:
        raise InputError(f"pick two different judges (got {a_name!r} twice)")
    rows = load_judgments(db, session_id, corpus_id, judges=[a_name, b_name])
    queries = {r.query.key: r.query for r in rows}
    grades = {name: {r.pair: r.grade for r in rows if r.judge == name} for name in (a_name, b_name)}
    return agreement_of(grades[a_name], grades[b_name], judge_a=a_name, judge_b=b_name, queries=queries)


def _query_of_key(key: str) -> Query | None:
    return Query.document(int(key[4:])) if key.startswith("doc:") else None


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)


# --- as qrels --------------------------------------------------------------------------------------------------


def typed_query_id(query: Query) -> str:
    """The id a typed query goes by in qrels, runs and exports: "q-" and 16 hex digits of its key."""
    return "q-" + query.key.split(":", 1)[1][:16]


@dataclass
class SessionQrels:
    """A corpus's judgments as an evaluation needs them: query ids in order of first judgment, each query, its
    text, and the graded judgments {query id: {doc id: grade}} (documents named by `doc_ids`)."""
    query_ids: list[str]
    queries: dict[str, Query]
    texts: dict[str, str]
    qrels: dict[str, dict[str, int]]
    doc_ids: list[str]
    judges: list[str]

    def rows_of(self, qid: str) -> int | None:
        """The corpus row of a document query (None for a typed one)."""
        return self.queries[qid].idx


def run_doc_ids(raw_ids: Sequence[str]) -> list[str]:
    """How judgments name a corpus's documents: its doc ids when unique, else each index as text."""
    ids = [str(d) for d in raw_ids]
    return ids if len(set(ids)) == len(ids) else [str(i) for i in range(len(ids))]


def session_qrels(db: sqlite_utils.Database, session_id: int, corpus_id: int, *,
                  judges: Sequence[str] | None = None) -> SessionQrels:
    """The corpus's judgments (by `judges`, default all; several judges combined by `combined_grades`) as qrels."""
    info = get_corpus(db, corpus_id)
    if info.session_id != int(session_id):
        raise InputError(f"corpus {info.name!r} belongs to another session")
    rows = load_judgments(db, session_id, corpus_id, judges=judges)
    raw = [str(r[0]) for r in db.execute("SELECT doc_id FROM documents WHERE corpus_id = ? ORDER BY idx",
                                         [int(corpus_id)])]
    doc_ids = run_doc_ids(raw)
    order: dict[str, Query] = {}
    for r in rows:
        order.setdefault(r.query.key, r.query)
    ids: dict[str, str] = {}
    taken = set(doc_ids)
    for key, q in order.items():
        qid = doc_ids[q.idx] if q.idx is not None else typed_query_id(q)
        if q.idx is None and qid in taken:            # a typed id equal to a doc id: the longer form
            qid = "q-" + key.split(":", 1)[1]
        ids[key] = qid
    doc_texts = {d["idx"]: d["text"] for d in load_documents(db, corpus_id, [q.idx for q in order.values()
                                                                             if q.idx is not None])}
    texts = {ids[k]: (q.text if q.text is not None else doc_texts[q.idx]) for k, q in order.items()}
    qrels: dict[str, dict[str, int]] = {ids[k]: {} for k in order}
    for (key, doc), grade in combined_grades(rows).items():
        qrels[ids[key]][doc_ids[doc]] = grade
    return SessionQrels([ids[k] for k in order], {ids[k]: q for k, q in order.items()}, texts, qrels, doc_ids,
                        sorted({r.judge for r in rows}))
