"""Embedding: the cache key, cache hits that never load a model, chunked resumable writes, the baseline."""
from __future__ import annotations

import numpy as np
import pytest

from embedlab.corpus import Corpus
from embedlab.embedding.embedders import DEFAULT_MODEL, SentenceTransformerEmbedder, TfidfSvdEmbedder, get_embedder
from embedlab.neighbours import l2_normalise
from embedlab.errors import Cancelled
from embedlab.embedding.cache import cache_key, compute_embedding
from embedlab.embedding.space import embed_corpus, embed_texts
from storage.corpora import save_corpus
from storage.matrices import find_matrix, load_matrix, stored_chunks
from storage.sessions import ensure_session
from tests.fakes import FakeEmbedder

TEXTS = [f"document number {i} about {'cats' if i % 2 else 'stocks'}" for i in range(50)]


def corpus_of(texts, name="c"):
    return Corpus(name=name, source="t", texts=list(texts), doc_ids=[str(i) for i in range(len(texts))])


def test_cache_key_depends_on_model_identity_and_content():
    a, b = FakeEmbedder(version=1), FakeEmbedder(version=2)
    assert cache_key(a, "h1") == cache_key(FakeEmbedder(version=1), "h1")
    assert cache_key(a, "h1") != cache_key(b, "h1")
    assert cache_key(a, "h1") != cache_key(a, "h2")
    assert cache_key(a, "h1") != cache_key(a, "h1", kind="tokens")


def test_default_identity_hashes_weights_without_loading_the_model(monkeypatch):
    monkeypatch.setattr("embedlab.embedding.embedders.load_sentence_transformer",
                        lambda *a, **k: pytest.fail("identity() must not load the model"))
    ident = SentenceTransformerEmbedder(DEFAULT_MODEL).identity()
    assert ident["model"] == DEFAULT_MODEL and len(ident["weights"]) == 64
    assert ident["max_seq_length"] == 256 and ident["normalize"] is True


def test_same_corpus_is_embedded_once_across_sessions(db):
    fake = FakeEmbedder()
    a = save_corpus(db, ensure_session(db, "a"), corpus_of(TEXTS))
    b = save_corpus(db, ensure_session(db, "b"), corpus_of(TEXTS))
    m1 = embed_corpus(db, a.id, fake)
    m2 = embed_corpus(db, b.id, fake)
    assert m1.id == m2.id and fake.encoded == len(TEXTS)
    vecs = load_matrix(db, m1)
    assert vecs.dtype == np.float32 and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)


def test_resume_embeds_only_missing_chunks(db, monkeypatch):
    monkeypatch.setenv("EMBEDLAB_CHUNK_ROWS", "10")
    fake = FakeEmbedder()
    calls = {"n": 0}

    def stop_after_two() -> bool:
        calls["n"] += 1
        return calls["n"] > 2

    with pytest.raises(Cancelled):
        compute_embedding(db, TEXTS, fake, should_stop=stop_after_two)
    assert fake.encoded == 20
    meta = compute_embedding(db, TEXTS, fake)
    assert fake.encoded == 50 and meta.complete and stored_chunks(db, meta.id) == set(range(5))
    assert np.allclose(load_matrix(db, meta), FakeEmbedder().encode(TEXTS))


def test_embed_texts_without_db_matches_cached(db):
    fake = FakeEmbedder()
    assert np.allclose(embed_texts(None, TEXTS, fake), embed_texts(db, TEXTS, fake))


def test_progress_reaches_one(db):
    seen = []
    compute_embedding(db, TEXTS, FakeEmbedder(), progress=lambda f, m: seen.append(f))
    assert seen and seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen)


def test_tfidf_baseline_separates_topics_and_is_deterministic():
    texts = ["cats purr and meow", "kittens and cats play", "a cat sleeps", "stocks fell sharply",
             "markets and stocks rally", "investors sell stocks"]
    v1 = TfidfSvdEmbedder(n_components=4).fit(texts).encode(texts)
    v2 = get_embedder("tfidf-svd", n_components=4).fit(texts).encode(texts)
    assert np.allclose(v1, v2)
    sims = v1 @ v1.T
    assert sims[0, 1] > sims[0, 4] and sims[3, 4] > sims[3, 1]  # here: 1.00 > 0.00 and 0.96 > 0.00


def test_l2_normalise_keeps_zero_rows():
    out = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert np.allclose(out, [[0.6, 0.8], [0.0, 0.0]])


@pytest.mark.slow
def test_default_model_embeds_and_cache_hit_does_not_load_it(db, monkeypatch):
    texts = ["How do I reset my password?", "I forgot my login password", "Best pizza in Naples"]
    info = save_corpus(db, ensure_session(db, "s"), corpus_of(texts))
    meta = embed_corpus(db, info.id, DEFAULT_MODEL)
    vecs = load_matrix(db, meta)
    assert vecs.shape == (3, 384)
    sims = vecs @ vecs.T
    assert sims[0, 1] > 0.6 > sims[0, 2]  # here: 0.78 and 0.04 (no seed: the model is deterministic)
    SentenceTransformerEmbedder._models.clear()
    monkeypatch.setattr("embedlab.embedding.embedders.load_sentence_transformer",
                        lambda *a, **k: pytest.fail("a cache hit loaded the model"))
    assert embed_corpus(db, info.id, DEFAULT_MODEL).id == meta.id


@pytest.mark.slow
def test_token_embeddings_are_normalised_and_cached(db, monkeypatch):
    from embedlab.embedding.cache import embed_tokens

    texts = ["short one", "a somewhat longer document with more tokens in it"]
    tokens, offsets = embed_tokens(db, texts)
    assert offsets[0] == 0 and offsets[-1] == len(tokens) and offsets[2] - offsets[1] > offsets[1] - offsets[0]
    assert np.allclose(np.linalg.norm(tokens, axis=1), 1, atol=1e-2)
    SentenceTransformerEmbedder._models.clear()
    monkeypatch.setattr("embedlab.embedding.embedders.load_sentence_transformer",
                        lambda *a, **k: pytest.fail("cached tokens loaded the model"))
    t2, o2 = embed_tokens(db, texts)
    assert np.array_equal(o2, offsets) and np.allclose(t2, tokens)
