"""Lexical retrieval: BM25 through bm25s, with English stop words and a Snowball stemmer (PyStemmer) when installed.

BEIR's BM25 numbers come from Elasticsearch with the English analyzer over title + text; the corpus texts this
method receives are title + " " + text already (see `beir.py`), and the Lucene variant of BM25 matches it.
"""
from __future__ import annotations

import warnings

import numpy as np

from embedlab.retrieval.base import RetrievalMethod, TextSet, top_k
from embedlab.retrieval.registry import register


def make_stemmer(name: str):
    """A PyStemmer stemmer ('english' = Snowball Porter2, 'porter' = Porter 1980), or None for 'none'."""
    if not name or name == "none":
        return None
    try:
        import Stemmer
    except ImportError:
        warnings.warn("PyStemmer is not installed: BM25 runs without stemming (install PyStemmer for BEIR parity)",
                      stacklevel=3)
        return None
    return Stemmer.Stemmer(name)


@register
class BM25(RetrievalMethod):
    name = "bm25"
    description = "BM25 (bm25s, Lucene variant) over title + text, English stop words and stemming"
    params = {"k1": 1.2, "b": 0.75, "method": "lucene", "stemmer": "english", "stopwords": "en"}
    needs = frozenset({"text"})

    def load_libraries(self) -> None:
        import bm25s  # noqa: F401

    def build(self, corpus: TextSet) -> "BM25":
        import bm25s
        from bm25s.tokenization import Tokenized, Tokenizer

        p = self.params
        stopwords = None if p["stopwords"] in ("", "none") else p["stopwords"]
        self._tokenizer = Tokenizer(stopwords=stopwords, stemmer=make_stemmer(p["stemmer"]))
        ids = self._tokenizer.tokenize(corpus.texts, update_vocab=True, return_as="ids", show_progress=False)
        self._bm25 = bm25s.BM25(method=p["method"], k1=p["k1"], b=p["b"])
        self._bm25.index(Tokenized(ids, self._tokenizer.get_vocab_dict()), show_progress=False)
        self.n_docs = len(corpus)
        return self

    def query_scores(self, texts: list[str]) -> np.ndarray:
        """BM25 scores of every document for each query text ([n_q, n_docs])."""
        q_ids = self._tokenizer.tokenize(list(texts), update_vocab=False, return_as="ids", show_progress=False)
        return np.stack([self._bm25.get_scores_from_ids(q) for q in q_ids]) if q_ids else np.zeros((0, self.n_docs))

    def search(self, queries: TextSet, k: int) -> tuple[np.ndarray, np.ndarray]:
        return top_k(self.query_scores(queries.texts), k)

    @property
    def index_bytes(self) -> int:
        s = self._bm25.scores
        return int(s["data"].nbytes + s["indices"].nbytes + s["indptr"].nbytes)
