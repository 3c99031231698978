"""The "judgments" query source of the Retrieval lab ("My judgments"): a stored corpus's own relevance judgments
(`embedlab.judgments`) as the queries and qrels every method is scored on, and the condensed-list variant.

Queries are the judged queries that have at least one relevant (grade > 0) document, in the order they were first
judged; a document query is the document's own row (its stored embedding, and it is left out of its own ranking),
a typed query is encoded in the corpus's space like a BEIR query. Documents nobody judged count as not relevant
(BEIR's and TREC's convention). Beside that, `condensed_metrics` scores each method on condensed lists (Sakai 2007):
every unjudged document removed from each ranking before scoring, so a method is neither punished nor rewarded for
documents nobody looked at. The condensed lists are cut from each method's evaluated top `EVAL_K` (100): a judged
document ranked below that is missing from them.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import sqlite_utils

from embedlab.errors import InputError
from embedlab.judgments import session_qrels
from embedlab.retrieval.base import TextSet, TokenMatrix
from embedlab.retrieval.evaluate import METRICS, Qrels, Run, evaluate_run, significance_vs_baseline
from storage.corpora import get_corpus, load_texts


class MixedQueries:
    """Embeds a query set in which some queries are documents of the corpus (their stored rows are taken) and the
    others typed texts (encoded in the corpus's space): the `embed` / `embed_tokens` callbacks of a `TextSet`."""

    def __init__(self, encoders, rows: Sequence[int | None]) -> None:
        self.encoders = encoders           # embedlab.retrieval.comparison.SpaceEncoders
        self.rows = [None if r is None else int(r) for r in rows]

    def _parts(self) -> tuple[list[int], list[int]]:
        docs = [i for i, r in enumerate(self.rows) if r is not None]
        typed = [i for i, r in enumerate(self.rows) if r is None]
        return docs, typed

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        docs, typed = self._parts()
        parts: dict[int, np.ndarray] = {}
        if docs:
            matrix = self.encoders.documents(self.encoders.corpus_texts)
            parts.update(zip(docs, matrix[[self.rows[i] for i in docs]]))
        if typed:
            parts.update(zip(typed, self.encoders.encode([texts[i] for i in typed])))
        return np.stack([parts[i] for i in range(len(self.rows))]).astype(np.float32)

    def embed_tokens(self, texts: Sequence[str]) -> TokenMatrix:
        docs, typed = self._parts()
        parts: dict[int, np.ndarray] = {}
        if docs:
            stored = TokenMatrix(*self.encoders.document_tokens(self.encoders.corpus_texts))
            parts.update((i, stored.item(self.rows[i])) for i in docs)
        if typed:
            encoded = TokenMatrix(*self.encoders.encode_tokens([texts[i] for i in typed]))
            parts.update((i, encoded.item(j)) for j, i in enumerate(typed))
        return TokenMatrix.from_list([parts[i] for i in range(len(self.rows))])

    def text_set(self, texts: Sequence[str], ids: Sequence[str]) -> TextSet:
        return TextSet(list(texts), list(ids), self.embed, self.embed_tokens)

    @property
    def exclude(self) -> np.ndarray:
        """Each query's own row (left out of its ranking), -1 for a typed query."""
        return np.array([-1 if r is None else r for r in self.rows], dtype=np.int64)


@dataclass
class JudgedQueries:
    """What the "judgments" source evaluates: the corpus, its judged queries with a relevant document (ids, texts,
    each one's corpus row or None when typed) and their graded judgments."""
    corpus_name: str
    texts: list[str]
    doc_ids: list[str]
    query_ids: list[str]
    query_texts: list[str]
    query_rows: list[int | None]
    qrels: dict[str, dict[str, int]]
    warnings: list[str] = field(default_factory=list)

    @property
    def document_queries(self) -> dict[str, int]:
        """{query id: corpus row} of the queries that are documents of the corpus."""
        return {q: r for q, r in zip(self.query_ids, self.query_rows) if r is not None}


def judged_queries(db: sqlite_utils.Database, p: dict) -> JudgedQueries:
    """The corpus (`corpus_id`) and its judged queries (by `judges`, default all) of validated params."""
    info = get_corpus(db, p["corpus_id"])
    if p.get("session_id") is not None and info.session_id != p["session_id"]:
        raise InputError(f"corpus {info.name!r} belongs to another session")
    judged = session_qrels(db, info.session_id, info.id, judges=p.get("judges"))
    keep = [q for q in judged.query_ids if any(g > 0 for g in judged.qrels[q].values())]
    if not keep:
        who = f" by {', '.join(p['judges'])}" if p.get("judges") else ""
        raise InputError(f"corpus {info.name!r} has no judged query{who} with a relevant document: mark at least "
                         "one result relevant first")
    warnings = []
    if len(keep) < len(judged.query_ids):
        warnings.append(f"{len(judged.query_ids) - len(keep)} judged quer(y/ies) without any relevant document left "
                        "out (every method would score 0 on them)")
    return JudgedQueries(info.name, load_texts(db, info.id), judged.doc_ids, keep, [judged.texts[q] for q in keep],
                         [judged.queries[q].idx for q in keep], {q: judged.qrels[q] for q in keep}, warnings)


def condensed_run(run: Run, qrels: Qrels) -> Run:
    """Each query's ranking with every document not judged for it removed (the order of the rest kept)."""
    return {q: {d: s for d, s in docs.items() if d in qrels.get(q, {})} for q, docs in run.items()}


def condensed_metrics(qrels: Qrels, runs: Mapping[str, Run], baseline: str | None = None,
                      metrics: Sequence[str] = METRICS) -> tuple[dict[str, dict[str, float]], dict]:
    """({method: {metric: mean}}, significance against `baseline` as `significance_vs_baseline` gives it) of every
    method on condensed lists."""
    condensed = {name: condensed_run(run, qrels) for name, run in runs.items()}
    means = {name: evaluate_run(qrels, run, metrics).mean for name, run in condensed.items()}
    significance = significance_vs_baseline(qrels, condensed, baseline) if baseline in condensed else {}
    return means, significance
