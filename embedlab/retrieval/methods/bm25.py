"""Lexical retrieval: BM25 through bm25s, with English stop words and a Snowball stemmer (PyStemmer) when installed.

BEIR's BM25 numbers come from Elasticsearch with the English analyzer over title + text; the corpus texts this
method receives are title + " " + text already (see `beir.py`), and the Lucene variant of BM25 matches it.
"""
from __future__ import annotations

import numpy as np

from embedlab.neighbours import top_k_of_scores
from embedlab.registry import Param
from embedlab.retrieval.base import RetrievalMethod, TextSet
from embedlab.retrieval.lexical import make_stemmer
from embedlab.retrieval.registry import register


@register
class BM25(RetrievalMethod):
    name = "bm25"
    description = "BM25 (bm25s, Lucene variant) over title + text, English stop words and stemming"
    param_specs = (
        Param("k1", float, 1.2, min=0.0, step=0.1, help="term-frequency saturation"),
        Param("b", float, 0.75, min=0.0, max=1.0, step=0.05, help="document-length normalisation"),
        Param("method", str, "lucene", choices=("lucene", "robertson", "atire", "bm25l", "bm25+"),
              help="BM25 variant (bm25s)"),
        Param("stemmer", str, "english", help="PyStemmer algorithm (english = Snowball Porter2), or none"),
        Param("stopwords", str, "en", help="stop-word list (bm25s), or none"),
    )
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
        return top_k_of_scores(self.query_scores(queries.texts), k)

    @property
    def index_bytes(self) -> int:
        s = self._bm25.scores
        return int(s["data"].nbytes + s["indices"].nbytes + s["indptr"].nbytes)
