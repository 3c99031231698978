"""Vectors a user brings with a corpus (`ingest --vectors`, the Corpora page): a model kind of its own.

An imported model is listed as "NAME (imported)" (`imported_model`), NAME being the free text the user gave
(`--vectors-model`, default "imported"). Its documents are the stored matrix: L2-normalised float32 rows, as every
embedding here (a dot product is a cosine; an all-zero row stays zero and is similar to nothing), stored under
`storage.cache_keys.imported_cache_key` (the name, the vectors' bytes, the texts): never the key of an embedding
EmbedLab computed. It is found by its name among the matrices a corpus sees (`find_imported`), as a model's
embedding of those texts is: corpora of the same texts share it, and other vectors under the same name for the same
texts are refused at ingestion (`clear_name`).

Other texts (queries, test sets, label prompts) are encoded by the query encoder the user declared (`--query-model`,
any sentence-transformers name or path, kept in the matrix's params as `query_model`); texts that carry vectors of
the same name themselves (another corpus ingested with them) use those. Without either, `NeedsQueryEncoder` says so
in one line, and pages turn it into a disabled control. `EmbeddingSpace` applies these rules.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import sqlite_utils

from embedlab.embedding import IMPORTED_SUFFIX
from embedlab.embedding.embedders import Embedder, ModelError, Progress, get_embedder
from embedlab.errors import EmbedLabError, InputError
from embedlab.neighbours import TINY_NORM
from storage.cache_admin import evict_matrix
from storage.cache_keys import imported_cache_key, is_private, shared_key_of
from storage.corpora import CorpusInfo
from storage.db import transaction
from storage.matrices import MatrixMeta, array_digest, list_matrices, save_matrix, set_matrix_params

IMPORTED_EMBEDDER = "imported"       # the `embedder` of an imported matrix's params (its identity)
IMPORTED_VERSION = 1
DEFAULT_VECTORS_MODEL = "imported"   # the name when the user gives none
MAX_NAME_CHARS = 200
MAX_DIM = 8192                       # dimensions of imported vectors at most (the largest API models give 4,096)


class NeedsQueryEncoder(EmbedLabError):
    """Imported vectors without a declared query encoder were asked to encode other texts."""


def imported_model(name: str) -> str:
    """The model name imported vectors are listed under: "NAME (imported)"."""
    return f"{name}{IMPORTED_SUFFIX}"


def is_imported(model: object) -> bool:
    """Whether a model name names imported vectors."""
    return isinstance(model, str) and model.endswith(IMPORTED_SUFFIX)


def clean_vectors_name(name: str | None) -> str:
    """The user's name for their vectors' model, trimmed (default "imported"); InputError for one that is too long
    or holds line breaks."""
    name = DEFAULT_VECTORS_MODEL if name is None else " ".join(str(name).split())
    if not name:
        raise InputError("the vectors' model name is empty: give a name (--vectors-model), e.g. the model that made "
                         "them")
    if len(name) > MAX_NAME_CHARS:
        raise InputError(f"the vectors' model name is {len(name):,} characters long, over {MAX_NAME_CHARS}")
    return name


def query_problem_line(model: str) -> str:
    """The one line that says why imported vectors cannot encode new texts."""
    return (f"{model} needs a query encoder to embed new texts (queries, test texts): re-ingest the corpus with "
            "--query-model NAME, the sentence-transformers model (name or path) that made the vectors")


class ImportedVectors:
    """The `Embedder` of imported vectors: what a stored matrix's params say about them. It encodes nothing itself
    (`EmbeddingSpace.encode` uses `query_embedder()`); documents are the stored rows."""

    fitted_on_corpus = False
    has_tokens = False

    def __init__(self, params: dict) -> None:
        self.params = dict(params)
        self.vectors_name = str(params["name"])
        self.name = imported_model(self.vectors_name)

    @property
    def query_model(self) -> str | None:
        return self.params.get("query_model") or None

    def identity(self) -> dict:
        return dict(self.params)

    def dimension(self) -> int:
        return int(self.params["dim"])

    def fit(self, corpus: Sequence[str]) -> ImportedVectors:
        return self

    def query_problem(self) -> str | None:
        """None when new texts can be encoded (a query encoder is declared), else the one line that says why not."""
        return None if self.query_model else query_problem_line(self.name)

    def query_embedder(self) -> Embedder:
        """The declared query encoder (NeedsQueryEncoder without one)."""
        encoder = get_embedder(self.query_model) if self.query_model else None
        if encoder is None or encoder.fitted_on_corpus:    # a corpus-fitted model made no imported vectors
            raise NeedsQueryEncoder(query_problem_line(self.name))
        return encoder

    def encode(self, texts: Sequence[str], *, batch_size: int | None = None,
               progress: Progress | None = None) -> np.ndarray:
        raise ModelError(f"{self.name} are stored vectors, not an encoder: its documents are the stored rows and "
                         "new texts go through its query encoder (EmbeddingSpace)")

    def encode_with_tokens(self, texts: Sequence[str], *, batch_size: int = 32,
                           progress: Progress | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
        raise ModelError(f"{self.name} has no token embeddings: pick a sentence-transformers model")


def imported_key(params: dict, content_hash: str) -> str:
    """The shared key of imported vectors of these params for the texts of `content_hash`."""
    return imported_cache_key(str(params["name"]), str(params["vectors"]), content_hash)


def _genuine(meta: MatrixMeta, content_hash: str) -> bool:
    """An imported matrix whose key is what its params and texts give (a session file's altered row is not)."""
    p = meta.params
    if p.get("embedder") != IMPORTED_EMBEDDER or not isinstance(p.get("name"), str) or "vectors" not in p:
        return False
    return meta.model == imported_model(p["name"]) and shared_key_of(meta.cache_key) == imported_key(p, content_hash)


def find_imported(db: sqlite_utils.Database, content_hash: str, model: str,
                  corpus_id: int | None = None) -> MatrixMeta | None:
    """The imported vectors named `model` ("NAME (imported)") that the texts of `content_hash` have, as corpus
    `corpus_id` sees them (its private copy from a session file first), or None."""
    found = [m for m in list_matrices(db, content_hash, "embedding", corpus_id=corpus_id)
             if m.model == model and _genuine(m, content_hash)]
    found.sort(key=lambda m: (not is_private(m.cache_key), m.id))
    return found[0] if found else None


def imported_models(db: sqlite_utils.Database, content_hash: str, corpus_id: int | None = None) -> list[str]:
    """The names ("NAME (imported)") of the imported vectors these texts have, in the order they were stored."""
    names: list[str] = []
    for m in list_matrices(db, content_hash, "embedding", corpus_id=corpus_id):
        if is_imported(m.model) and _genuine(m, content_hash) and m.model not in names:
            names.append(m.model)
    return names


def embedder_for(db: sqlite_utils.Database | None, model: str, content_hash: str | None,
                 corpus_id: int | None = None) -> Embedder:
    """The embedder a model name stands for with these texts: imported vectors' (found in `db`), else
    `get_embedder(model)`."""
    if not is_imported(model):
        return get_embedder(model)
    if db is None or content_hash is None:
        raise ModelError(f"{model} are vectors stored with a corpus: they are read from the database that holds it")
    meta = find_imported(db, content_hash, model, corpus_id)
    if meta is None:
        name = model[:-len(IMPORTED_SUFFIX)]
        raise ModelError(f"no vectors imported as {model!r} for these documents (ingest them with --vectors and "
                         f"--vectors-model {name!r})")
    return ImportedVectors(meta.params)


# --- storing ---------------------------------------------------------------------------------------------------


UNIT_TOLERANCE = 1e-6   # a row this close to unit length is kept as given (float32 rounding of a unit vector)


def normalised(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows L2-normalised as float32, which rows are zero): computed in float64; a row of unit length already is
    kept exactly as given (normalising is idempotent: exported vectors ingest to the same bytes), a row shorter than
    TINY_NORM is stored as exactly zero (similar to nothing), as the product's embeddings treat empty documents."""
    out = np.empty(vectors.shape, dtype=np.float32)
    zero = np.zeros(len(vectors), dtype=bool)
    step = max(1, (1 << 22) // max(1, vectors.shape[1]))
    for start in range(0, len(vectors), step):
        block = np.asarray(vectors[start:start + step], dtype=np.float64)
        norms = np.linalg.norm(block, axis=1)
        small = norms < TINY_NORM
        scale = np.where(small | (np.abs(norms - 1.0) <= UNIT_TOLERANCE), 1.0, norms)
        block = block / scale[:, None]
        block[small] = 0.0
        out[start:start + step] = block
        zero[start:start + step] = small
    return out, zero


def clear_name(db: sqlite_utils.Database, corpus: CorpusInfo, model: str, key: str) -> None:
    """Make way for vectors named `model` under `key` for the corpus's texts: other vectors of that name for the same
    texts are refused (InputError naming a corpus that sees them) while another corpus of these texts exists, and
    removed with their maps when none does (they belonged to a replaced or deleted corpus)."""
    others = [m for m in list_matrices(db, corpus.content_hash, "embedding")
              if m.model == model and m.cache_key != key and not is_private(m.cache_key)]
    if not others:
        return
    holder = db.execute("SELECT s.name, c.name FROM corpora c JOIN sessions s ON s.id = c.session_id "
                        "WHERE c.content_hash = ? AND c.id != ? ORDER BY c.id LIMIT 1",
                        [corpus.content_hash, corpus.id]).fetchone()
    if holder is not None:
        raise InputError(f"other vectors named {model!r} are stored for these same texts (corpus {holder[1]!r} of "
                         f"session {holder[0]!r}): give these another name (--vectors-model)")
    for m in others:
        evict_matrix(db, m.id)


def store_vectors(db: sqlite_utils.Database, corpus: CorpusInfo, normal: np.ndarray, *, name: str,
                  query_model: str | None = None, zero_rows: int = 0, source: str = "") -> MatrixMeta:
    """Store a corpus's imported vectors (already validated and L2-normalised, one row per document) in one
    transaction, under `imported_cache_key`. The same vectors stored before are found again (a query model given
    now is recorded, none given keeps the one they have); other vectors under the same name for the same texts are
    refused unless no other corpus has these texts (`clear_name`)."""
    if normal.shape[0] != corpus.n_docs:
        raise InputError(f"{normal.shape[0]:,} vectors for {corpus.n_docs:,} documents")
    model = imported_model(name)
    params = {"embedder": IMPORTED_EMBEDDER, "version": IMPORTED_VERSION, "name": name,
              "vectors": array_digest(normal), "dim": int(normal.shape[1]), "normalize": True,
              "query_model": query_model or None, "zero_rows": int(zero_rows), "source": source}
    key = imported_key(params, corpus.content_hash)
    with transaction(db):
        clear_name(db, corpus, model, key)
        meta = save_matrix(db, normal, cache_key=key, kind="embedding", model=model, params=params,
                           corpus_id=corpus.id, content_hash=corpus.content_hash)
        if query_model and meta.params.get("query_model") != query_model:   # the same vectors, a (new) query encoder
            set_matrix_params(db, meta.id, {**meta.params, "query_model": params["query_model"]})
    return find_imported(db, corpus.content_hash, model, corpus.id) or meta


def save_with_vectors(db: sqlite_utils.Database, save: Callable[[], CorpusInfo], vectors: np.ndarray, *, name: str,
                      query_model: str | None = None, zero_rows: int = 0, source: str = ""
                      ) -> tuple[CorpusInfo, MatrixMeta]:
    """A corpus (`save()` stores it) and its imported vectors in one transaction: a refusal of either writes
    nothing."""
    with transaction(db):
        info = save()
        meta = store_vectors(db, info, vectors, name=name, query_model=query_model, zero_rows=zero_rows,
                             source=source)
    return info, meta


def check_query_model(query_model: str, dim: int) -> str:
    """The declared query encoder's name as stored, after loading it once: it must be a pretrained model that gives
    vectors of `dim` dimensions (ModelError or InputError in one line otherwise)."""
    embedder = get_embedder(query_model)
    if embedder.fitted_on_corpus:
        raise InputError(f"--query-model {query_model!r} is fitted on a corpus, so it did not make these vectors: "
                         "name the sentence-transformers model (name or path) that did")
    got = embedder.dimension()
    if got != dim:
        raise InputError(f"the query model {query_model!r} gives {got}-dimensional vectors, the imported ones have "
                         f"{dim} dimensions: name the model that made them")
    return embedder.name
