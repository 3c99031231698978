"""`EmbeddingSpace`: one corpus embedded by one model, and every other text (queries, test sets, label prompts)
encoded in that same space.

The rule "a corpus-fitted embedder (TF-IDF + SVD) is fitted on the corpus, and everything else is transformed with
that fit" lives here and nowhere else: every caller (Atlas search, the Retrieval and OOD comparisons, the CLI
benches, the Ray engine) goes through a space. A pretrained model's space is simply the model.

Imported vectors (`embedlab.embedding.imported`, a model named "NAME (imported)") are a space whose documents are
the stored matrix: nothing computes them. Other texts take the vectors stored for them under the same name (another
corpus ingested with them), else the declared query encoder; without one, `encode` raises `NeedsQueryEncoder`
(`query_problem` says so beforehand, for a page to disable what needs it).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import sqlite_utils

from embedlab.embedding.cache import cache_key, compute_embedding, embed_tokens, embedding_key
from embedlab.embedding.embedders import DEFAULT_MODEL, Embedder, Progress, get_embedder
from embedlab.embedding.imported import ImportedVectors, embedder_for, find_imported, is_imported
from embedlab.errors import EmbedLabError, InputError
from storage.content import content_hash as hash_texts
from storage.corpora import get_corpus, load_texts
from storage.matrices import MatrixMeta, find_matrix, load_matrix

# Pretrained encodings of at least this many texts (a test set, a query split) are kept in the cache; a typed
# query is not worth a stored matrix.
CACHE_ENCODINGS_FROM = 32


class EmbeddingSpace:
    """The documents of one corpus under one model (stored once, under the content cache key), and `encode` for
    any other text in the same space.

    `texts` may be a list or a zero-argument loader (so a cache hit never reads the corpus). `db=None` computes
    without storing anything. A model name of imported vectors is looked up in `db` for these texts.
    """

    def __init__(self, db: sqlite_utils.Database | None, texts: Sequence[str] | Callable[[], Sequence[str]],
                 model: str | Embedder = DEFAULT_MODEL, *, content_hash: str | None = None,
                 corpus_id: int | None = None) -> None:
        self.db = db
        self.corpus_id = corpus_id
        self._texts = None if callable(texts) else list(texts)
        self._load_texts = texts if callable(texts) else None
        self._content_hash = content_hash
        self._documents: np.ndarray | None = None
        if isinstance(model, str):
            model = embedder_for(db, model, self.content_hash, corpus_id) if is_imported(model) else get_embedder(model)
        self.embedder: Embedder = model

    @classmethod
    def for_corpus(cls, db: sqlite_utils.Database, corpus_id: int, model: str | Embedder = DEFAULT_MODEL
                   ) -> "EmbeddingSpace":
        """The space of a stored corpus (its texts are read only when something must be computed)."""
        info = get_corpus(db, corpus_id)
        return cls(db, lambda: load_texts(db, info.id), model, content_hash=info.content_hash, corpus_id=info.id)

    # --- what the space is ---------------------------------------------------------------------------------------

    @property
    def model(self) -> str:
        return self.embedder.name

    @property
    def texts(self) -> list[str]:
        if self._texts is None:
            self._texts = list(self._load_texts())  # type: ignore[misc]
        return self._texts

    @property
    def content_hash(self) -> str:
        if self._content_hash is None:
            self._content_hash = hash_texts(self.texts)
        return self._content_hash

    @property
    def key(self) -> str:
        """The cache key of the documents' embedding (model identity + corpus content; a stored corpus's private
        copy, imported and not verified, when it has one)."""
        if self.db is None:
            return cache_key(self.embedder, self.content_hash)
        return embedding_key(self.db, self.embedder, self.content_hash, self.corpus_id)

    @property
    def has_tokens(self) -> bool:
        return bool(self.embedder.has_tokens)

    @property
    def imported(self) -> ImportedVectors | None:
        """The imported vectors this space is made of, or None for a model's space."""
        return self.embedder if isinstance(self.embedder, ImportedVectors) else None

    @property
    def query_problem(self) -> str | None:
        """None when new texts (queries, test texts) can be encoded in this space, else the one line that says why
        not (imported vectors without a query encoder); texts that carry vectors of the same name still can."""
        return self.imported.query_problem() if self.imported else None

    def stored(self) -> MatrixMeta | None:
        """The finished document embedding, if stored (never loads the model)."""
        return None if self.db is None else find_matrix(self.db, self.key)

    def dimension(self) -> int:
        meta = self.stored()
        if meta is not None:
            return meta.cols
        self._fit()
        return int(self.embedder.dimension())

    # --- documents -----------------------------------------------------------------------------------------------

    def ensure(self, *, progress: Progress | None = None,
               should_stop: Callable[[], bool] | None = None) -> MatrixMeta:
        """Embed and store the documents unless they are stored already (an unfinished run resumes)."""
        if self.db is None:
            raise RuntimeError("an EmbeddingSpace without a database stores nothing")
        hit = self.stored()
        if hit is not None:
            if progress:
                progress(1.0, "cached: already embedded")
            return hit
        if self.imported:
            raise InputError(f"the vectors of {self.model} are not stored for these documents: ingest them again")
        self._fit()
        return compute_embedding(self.db, self.texts, self.embedder, content_hash=self.content_hash,
                                 corpus_id=self.corpus_id, progress=progress, should_stop=should_stop)

    def documents(self, *, progress: Progress | None = None,
                  should_stop: Callable[[], bool] | None = None) -> np.ndarray:
        """The documents' L2-normalised float32 embeddings (computed once, stored when there is a database)."""
        if self._documents is None:
            if self.db is None:
                if self.imported:
                    raise InputError(f"{self.model}: imported vectors are read from the database that holds them")
                self._fit()
                self._documents = self.embedder.encode(self.texts, progress=progress)
            else:
                self._documents = load_matrix(self.db, self.ensure(progress=progress, should_stop=should_stop))
        return self._documents

    def tokens(self, *, progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The documents' token embeddings: (token rows, offsets); one model pass also stores the sentence
        embeddings, so asking for tokens first saves a pass when both are needed."""
        return embed_tokens(self.db, lambda: self.texts, self._require_tokens(), progress=progress,
                            content_hash=self.content_hash, corpus_id=self.corpus_id)

    # --- other texts in the same space ---------------------------------------------------------------------------

    def encode(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        """Queries, test sets or prompts, embedded in this space: a corpus-fitted embedder uses the corpus's fit;
        a pretrained model's larger encodings are cached like any embedding. Imported vectors: the vectors stored
        for these very texts under the same name, else the declared query encoder (NeedsQueryEncoder without
        one)."""
        texts = list(texts)
        encoder = self.embedder
        if self.imported:
            own = self._imported_for(texts)
            if own is not None:
                return own
            encoder = self.imported.query_embedder()
        if encoder.fitted_on_corpus:
            self._fit()
            return encoder.encode(texts, progress=progress)
        if self.db is not None and len(texts) >= CACHE_ENCODINGS_FROM:
            out = load_matrix(self.db, compute_embedding(self.db, texts, encoder, progress=progress))
        else:
            out = encoder.encode(texts, progress=progress)
        if self.imported and out.shape[1] != self.dimension():
            raise InputError(f"the query encoder {encoder.name} of {self.model} gives {out.shape[1]}-dimensional "
                             f"vectors, the imported ones have {self.dimension()}: re-ingest with the model that "
                             "made them (--query-model)")
        return out

    def encode_tokens(self, texts: Sequence[str], *, progress: Progress | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Token embeddings of other texts (queries): (token rows, offsets)."""
        db = self.db if len(texts) >= CACHE_ENCODINGS_FROM else None
        return embed_tokens(db, list(texts), self._require_tokens(), progress=progress)

    # --- internals -----------------------------------------------------------------------------------------------

    def _imported_for(self, texts: list[str]) -> np.ndarray | None:
        """The vectors stored under this space's imported name for exactly these texts (the documents themselves,
        or another corpus ingested with vectors of the same name), or None."""
        if self.db is None or not texts:
            return None
        digest = hash_texts(texts)
        if digest == self.content_hash:
            return self.documents()
        found = find_imported(self.db, digest, self.model)
        return None if found is None else load_matrix(self.db, found)

    def _fit(self) -> None:
        if self.embedder.fitted_on_corpus:
            self.embedder.fit(self.texts)   # a no-op when already fitted on these texts

    def _require_tokens(self) -> Embedder:
        if not self.embedder.has_tokens:
            raise EmbedLabError(f"{self.model} has no token embeddings: pick a sentence-transformers model")
        return self.embedder

    def __repr__(self) -> str:
        return f"EmbeddingSpace(model={self.model!r}, corpus_id={self.corpus_id})"


def embed_texts(db: sqlite_utils.Database | None, texts: Sequence[str], model: str | Embedder = DEFAULT_MODEL, *,
                progress: Progress | None = None) -> np.ndarray:
    """L2-normalised float32 embeddings of `texts` taken as a corpus of their own, cached in `db` when given.

    Only for texts that are the corpus: queries and test sets must be encoded in the corpus's space
    (`EmbeddingSpace.encode`), or a corpus-fitted embedder would put them in a space of their own."""
    return EmbeddingSpace(db, texts, model).documents(progress=progress)


def embed_corpus(db: sqlite_utils.Database, corpus_id: int, model: str | Embedder = DEFAULT_MODEL, *,
                 progress: Progress | None = None, should_stop: Callable[[], bool] | None = None) -> MatrixMeta:
    """Embed a stored corpus (cached by its content hash)."""
    return EmbeddingSpace.for_corpus(db, corpus_id, model).ensure(progress=progress, should_stop=should_stop)
