"""EmbeddingSpace: documents and every other text in one space, the corpus-fitted rule written once."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

from embedlab.corpus import Corpus
from embedlab.embedding.embedders import TfidfSvdEmbedder
from embedlab.embedding.space import EmbeddingSpace
from embedlab.errors import EmbedLabError, UserError
from fakes import FakeEmbedder
from storage import connect
from storage.corpora import save_corpus
from storage.sessions import ensure_session

DOCS = ["cats purr and meow at night", "kittens and cats play with yarn", "a cat sleeps on the warm mat",
        "stocks fell sharply on monday", "markets and stocks rally after the report", "investors sell stocks fast",
        "the striker scored a late goal", "the team won the football match", "fans cheered the goal keeper"]
QUERIES = ["cats meow", "stocks and markets", "football goal"]


def _by_hand(docs: list[str], queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    """The plain-library recipe: TF-IDF + SVD fitted once on the documents, queries transformed with that fit."""
    vec = TfidfVectorizer(sublinear_tf=True, stop_words="english", max_features=50_000)
    svd = TruncatedSVD(n_components=k, random_state=0)
    D = svd.fit_transform(vec.fit_transform(docs))
    Q = svd.transform(vec.transform(queries))
    norm = lambda X: X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)  # noqa: E731
    return norm(D), norm(Q)


def test_tfidf_queries_are_transformed_with_the_corpus_fit(db_path):
    db = connect(db_path)
    space = EmbeddingSpace(db, DOCS, TfidfSvdEmbedder(n_components=4))
    D, Q = space.documents(), space.encode(QUERIES)
    D_ref, Q_ref = _by_hand(DOCS, QUERIES, 4)
    assert np.allclose(np.abs(D @ D.T), np.abs(D_ref @ D_ref.T), atol=1e-4)
    assert np.allclose(Q @ D.T, Q_ref @ D_ref.T, atol=1e-4)
    # each query lands on its topic's documents (a refit on the three queries alone would not)
    assert list((Q @ D.T).argmax(axis=1) // 3) == [0, 1, 2]


def test_a_new_space_over_the_stored_corpus_encodes_the_same_way(db_path):
    db = connect(db_path)
    first = EmbeddingSpace(db, DOCS, "tfidf-svd")
    first.documents()
    again = EmbeddingSpace(db, DOCS, "tfidf-svd")           # a later process: documents from the cache
    assert again.stored() is not None
    assert np.allclose(again.encode(QUERIES), first.encode(QUERIES), atol=1e-6)


def test_tfidf_refuses_to_encode_before_it_is_fitted():
    with pytest.raises(RuntimeError, match="fit"):
        TfidfSvdEmbedder().encode(QUERIES)


def test_a_stored_corpus_space_is_a_cache_hit_without_the_model(db_path):
    db = connect(db_path)
    sid = ensure_session(db, "s")
    info = save_corpus(db, sid, Corpus(name="c", source="t", texts=DOCS, doc_ids=[str(i) for i in range(9)]))
    fake = FakeEmbedder()
    meta = EmbeddingSpace.for_corpus(db, info.id, fake).ensure()
    assert (meta.rows, meta.cols, fake.encoded) == (9, 16, 9)
    again = EmbeddingSpace.for_corpus(db, info.id, fake)
    assert again.ensure().id == meta.id and fake.encoded == 9
    assert again._texts is None          # a cache hit never read the corpus


def test_pretrained_encodings_of_many_texts_are_cached(db_path):
    db = connect(db_path)
    fake = FakeEmbedder()
    space = EmbeddingSpace(db, DOCS, fake)
    many = [f"query {i}" for i in range(40)]
    first = space.encode(many)
    n = fake.encoded
    assert np.array_equal(space.encode(many), first) and fake.encoded == n
    space.encode(["one typed query"])
    assert fake.encoded == n + 1


def test_token_embeddings_are_refused_for_tfidf_as_a_user_error(db_path):
    space = EmbeddingSpace(connect(db_path), DOCS, "tfidf-svd")
    with pytest.raises(EmbedLabError, match="no token embeddings"):
        space.tokens()
    assert issubclass(EmbedLabError, UserError)


def test_a_stop_word_only_corpus_is_a_clear_user_error():
    with pytest.raises(UserError, match="cannot be fitted"):
        EmbeddingSpace(None, ["the and of", "a an the"], "tfidf-svd").documents()


class _TokenFake(FakeEmbedder):
    has_tokens = True

    def encode_with_tokens(self, texts, *, batch_size=32, progress=None):
        vectors = self.encode(texts)
        return vectors, [np.stack([v, -v]) for v in vectors]


def test_stored_token_embeddings_are_a_hit_without_reading_the_corpus(db_path):
    db = connect(db_path)
    sid = ensure_session(db, "s")
    info = save_corpus(db, sid, Corpus(name="c", source="t", texts=DOCS, doc_ids=[str(i) for i in range(9)]))
    fake = _TokenFake()
    tokens, offsets = EmbeddingSpace.for_corpus(db, info.id, fake).tokens()
    assert offsets.tolist() == list(range(0, 19, 2)) and tokens.shape == (18, 16)
    again = EmbeddingSpace.for_corpus(db, info.id, fake)
    assert again.stored() is not None               # the one model pass stored the sentence embeddings too
    t2, o2 = again.tokens()
    assert np.array_equal(o2, offsets) and np.allclose(t2, tokens) and again._texts is None
