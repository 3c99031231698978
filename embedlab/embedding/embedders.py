"""Text embedders: sentence-transformers models (default: the bundled all-MiniLM-L6-v2), static embeddings distilled
from it (`minilm-static`, `embedlab.embedding.static`) and a TF-IDF + SVD baseline that needs no weights. Every
embedder returns L2-normalised float32 rows.

Models load lazily, on the first `encode`: a cache hit only needs `identity()`, which reads files, not weights.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from embedlab.embedding import DEFAULT_MODEL, IMPORTED_SUFFIX, STATIC_MODEL
from embedlab.embedding.static import StaticEmbedder
from embedlab.embedding.weights import ModelError, bundled_model_path, weights_hash
from embedlab.neighbours import l2_normalise
from storage.content import content_hash

Progress = Callable[[float, str], None]
TFIDF_MODEL = "tfidf-svd"
EMBEDDER_VERSION = 1
_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}


class Embedder(Protocol):
    """What every embedder offers. Callers never probe with `hasattr`: they read these flags.

    `fitted_on_corpus`: the embedder learns from the corpus it embeds (TF-IDF + SVD): `fit(corpus)` first, then
    every other text (queries, test sets, prompts) is encoded with that same fit. `EmbeddingSpace` applies this rule.
    `has_tokens`: `encode_with_tokens` gives per-token embeddings (late-interaction methods need them).
    """
    name: str
    fitted_on_corpus: bool
    has_tokens: bool

    def identity(self) -> dict: ...

    def dimension(self) -> int: ...

    def fit(self, corpus: Sequence[str]) -> "Embedder": ...

    def encode(self, texts: Sequence[str], *, batch_size: int | None = None,
               progress: Progress | None = None) -> np.ndarray: ...

    def encode_with_tokens(self, texts: Sequence[str], *, batch_size: int = 32,
                           progress: Progress | None = None) -> tuple[np.ndarray, list[np.ndarray]]: ...


def available_models() -> list[str]:
    """Models offered in the UI: the bundled default, the static model distilled from it and the weight-free
    baseline."""
    return [DEFAULT_MODEL, STATIC_MODEL, TFIDF_MODEL]


def resolve_model_path(model: str) -> str:
    """A local folder for the bundled default; a path that exists (`~` expanded) as that folder; any other name is
    a Hugging Face hub name, passed to sentence-transformers as is (loaded offline unless downloads are allowed:
    see `load_sentence_transformer`)."""
    if model in _ALIASES:
        return bundled_model_path()
    expanded = os.path.expanduser(model)
    if expanded != model and os.path.isdir(expanded):
        return expanded
    return model


def cpu_has_native_bf16() -> bool:
    """True on CPUs with AVX512-BF16 or AMX, where bf16 matmuls are fast."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text(errors="ignore").split())
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def default_backend() -> str:
    """The fastest faithful backend on this machine: 'bf16' with native bf16 support, else 'fp32'.

    `EMBEDLAB_BACKEND=fp32|bf16` overrides it.
    """
    forced = os.environ.get("EMBEDLAB_BACKEND")
    if forced in ("fp32", "bf16"):
        return forced
    return "bf16" if cpu_has_native_bf16() else "fp32"


class SentenceTransformerEmbedder:
    """Any sentence-transformers model by name or local path; the bundled MiniLM is loaded offline."""

    _models: dict[tuple[str, str], object] = {}
    _lock = threading.Lock()
    default_batch_size = 32
    fitted_on_corpus = False
    has_tokens = True

    def __init__(self, model: str = DEFAULT_MODEL, *, backend: str | None = None, device: str = "cpu") -> None:
        self.name = DEFAULT_MODEL if model in _ALIASES else model
        self.path = resolve_model_path(model)
        self.backend = backend or default_backend()
        self.device = device

    def _local_folder(self) -> str | None:
        return self.path if os.path.isdir(self.path) else None

    def max_seq_length(self) -> int | None:
        folder = self._local_folder()
        if folder and os.path.exists(os.path.join(folder, "sentence_bert_config.json")):
            with open(os.path.join(folder, "sentence_bert_config.json")) as fh:
                return json.load(fh).get("max_seq_length")
        return None

    def identity(self) -> dict:
        """What the vectors depend on, without loading the model."""
        folder = self._local_folder()
        return {"embedder": "sentence-transformers", "version": EMBEDDER_VERSION, "model": self.name,
                "weights": weights_hash(folder) if folder else None, "normalize": True,
                "max_seq_length": self.max_seq_length(), "backend": self.backend}

    def dimension(self) -> int:
        return embedding_dimension(self.model)

    def fit(self, corpus: Sequence[str]) -> "SentenceTransformerEmbedder":
        """Pretrained: nothing to learn from the corpus."""
        return self

    @property
    def model(self):
        """The loaded SentenceTransformer, shared by every user of this process."""
        key = (self.path, self.device)
        with self._lock:
            if key not in self._models:
                self._models[key] = load_sentence_transformer(self.path, self.device)
            return self._models[key]

    def encode(self, texts: Sequence[str], *, batch_size: int | None = None,
               progress: Progress | None = None) -> np.ndarray:
        """Embed in length-sorted blocks (little padding, as one big `encode` call would), reporting progress
        after each block, then restore the input order."""
        texts = list(texts)
        batch_size = batch_size or self.default_batch_size
        out = np.empty((len(texts), self.dimension()), dtype=np.float32)
        for rows, done in length_sorted_blocks(texts, batch_size * 8):
            with self._autocast():
                vecs = self.model.encode([texts[i] for i in rows], batch_size=batch_size, convert_to_numpy=True,
                                         normalize_embeddings=False, show_progress_bar=False)
            out[rows] = np.asarray(vecs, dtype=np.float32)
            if progress:
                progress(done / len(texts), f"embedded {done}/{len(texts)}")
        return l2_normalise(out)

    def encode_with_tokens(self, texts: Sequence[str], *, batch_size: int = 32,
                           progress: Progress | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
        """Sentence embeddings and token embeddings from one model pass (length-sorted blocks)."""
        texts = list(texts)
        vectors = np.empty((len(texts), self.dimension()), dtype=np.float32)
        tokens: list[np.ndarray | None] = [None] * len(texts)
        for rows, done in length_sorted_blocks(texts, batch_size * 8):
            with self._autocast():
                outputs = self.model.encode([texts[i] for i in rows], batch_size=batch_size, output_value=None,
                                            convert_to_numpy=False, show_progress_bar=False)
            for i, out in zip(rows, outputs):
                vectors[i] = out["sentence_embedding"].float().cpu().numpy()
                n_real = int(out["attention_mask"].sum())  # rows past it are padding of the batch
                arr = out["token_embeddings"][:n_real].float().cpu().numpy()
                tokens[i] = l2_normalise(arr[1:-1] if len(arr) > 2 else arr)
            if progress:
                progress(done / len(texts), f"sentence and token embeddings {done}/{len(texts)}")
        return l2_normalise(vectors), tokens  # type: ignore[return-value]

    def _autocast(self):
        import contextlib

        import torch

        if self.backend == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()


def length_sorted_blocks(texts: Sequence[str], step: int):
    """Yield (row indices, rows done so far) over `texts` sorted longest first, `step` rows at a time: blocks of
    similar length pad little, as one big sorted `encode` call would."""
    order = np.argsort([-len(t) for t in texts], kind="stable")
    for start in range(0, len(texts), step):
        yield order[start:start + step], min(len(texts), start + step)


def load_sentence_transformer(path: str, device: str = "cpu"):
    """Load a sentence-transformers model, with one clear line (ModelError) when it cannot be.

    Nothing is downloaded unless `EMBEDLAB_ALLOW_DOWNLOAD=1`: a local folder, and a hub name, load with the hub in
    offline mode (a hub name then loads only from the Hugging Face cache, at once, or fails at once saying how to
    allow downloads). With downloads allowed, a hub name not in the cache is fetched only after the hub answered a
    probe within 5 s (and with short request timeouts, without retry logging): an unreachable hub or a black-holed
    proxy fails in seconds, never after minutes of retries."""
    import logging
    import urllib.error
    import urllib.request

    probe_timeout_s = 5.0
    local = os.path.isdir(path)
    if not local and (os.path.isabs(path) or path.startswith((".", "~")) or path.count("/") > 1 or os.sep in path
                      and os.sep != "/"):
        raise ModelError(f"no model folder at {path!r} (a local model is a folder holding a sentence-transformers "
                         "model; a hub name looks like org/name)")
    allow = not local and os.environ.get("EMBEDLAB_ALLOW_DOWNLOAD", "").strip().lower() in ("1", "true", "yes", "on")
    if allow:
        os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", str(int(probe_timeout_s)))
        os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "10")
    else:
        os.environ["HF_HUB_OFFLINE"] = "1"   # read when huggingface_hub is first imported
    for name in ("huggingface_hub", "sentence_transformers", "transformers", "httpx", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)   # no retry or "creating a new model" chatter on stderr
    import huggingface_hub.constants as hub_constants
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.utils import logging as hub_logging

    hub_logging.set_verbosity_error()        # its import set its own level: no "Retrying in 1s" lines

    def cached() -> bool:
        """Whether the hub name is in the Hugging Face cache (checked without torch: a miss fails at once)."""
        valid = False
        for repo in (path, f"sentence-transformers/{path}"):
            for name in ("modules.json", "config.json"):
                try:
                    if isinstance(try_to_load_from_cache(repo, name), str):
                        return True
                    valid = True
                except Exception:  # noqa: BLE001 - not a valid repo id
                    break
        return not valid                     # a name the hub library rejects: let sentence-transformers say why

    def probe_hub() -> None:
        endpoint = hub_constants.ENDPOINT
        try:
            urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=probe_timeout_s).close()
        except urllib.error.HTTPError:
            return                           # it answered
        except Exception as exc:  # noqa: BLE001 - timeouts, refused connections, proxies, DNS
            reason = " ".join(str(getattr(exc, "reason", exc)).split())[:120]
            raise ModelError(f"cannot download model {path!r}: the Hugging Face hub ({endpoint}) did not answer "
                             f"within {probe_timeout_s:g} s ({reason}); check the network or proxy, or give the path "
                             "of a local model folder") from None

    not_offline = (f"model {path!r} is not available offline (not a local folder, and not in the Hugging Face cache):"
                   " set EMBEDLAB_ALLOW_DOWNLOAD=1 to download it from the hub, or give the path of a local "
                   "sentence-transformers folder")
    if not allow:
        hub_constants.HF_HUB_OFFLINE = True  # and now, in case the hub library was imported before
        if not local and not cached():
            raise ModelError(not_offline)
    elif not hub_constants.HF_HUB_OFFLINE and not cached():
        probe_hub()
    import torch
    from sentence_transformers import SentenceTransformer

    hub_logging.set_verbosity_error()
    for name in ("sentence_transformers", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()   # no "Loading weights" bar on stderr
    except (ImportError, AttributeError):  # pragma: no cover - another transformers
        pass
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    try:
        return SentenceTransformer(path, device=device)
    except Exception as exc:  # noqa: BLE001 - any loading failure becomes one clear line
        first = (str(exc).splitlines() or [""])[0][:200]
        if not local and not allow:
            raise ModelError(not_offline) from exc
        raise ModelError(f"cannot load model {path!r}: {type(exc).__name__}: {first}"
                         " (a hub name needs the network; a local path must hold a sentence-transformers model)"
                         ) from exc


TFIDF_FIT_VERSION = 2      # 2: the SVD keeps no more dimensions than the TF-IDF matrix's rank (one term: no SVD)
RANK_TOLERANCE = 1e-6      # singular values under this share of the largest are rounding, not directions


class TfidfSvdEmbedder:
    """TF-IDF + truncated SVD (LSA), fitted on the corpus it embeds: a baseline that needs no weights.

    `fit(corpus)` learns the vocabulary and the SVD (deterministic); `encode` then transforms any text with that
    fit. Encoding before fitting is a programming error: fitting on whatever list is encoded would put queries and
    documents in different spaces. The SVD keeps at most `n_components` dimensions, and no more than the TF-IDF
    matrix's rank (one document, identical documents, a tiny vocabulary): a dimension beyond the rank would be an
    arbitrary direction that queries are projected on. With one usable term the TF-IDF weight is the vector.
    `caveat` says, after `fit`, why there are fewer dimensions than asked and which documents are zero vectors.
    """

    name = TFIDF_MODEL
    fitted_on_corpus = True
    has_tokens = False

    def __init__(self, n_components: int = 256, max_features: int = 50_000) -> None:
        self.n_components, self.max_features = n_components, max_features
        self._steps: tuple | None = None    # (fitted TF-IDF vectoriser, fitted projection)
        self.fitted_on: str | None = None   # content hash of the corpus of the current fit
        self.caveat: str | None = None

    def identity(self) -> dict:
        return {"embedder": "tfidf-svd", "version": EMBEDDER_VERSION, "fit": TFIDF_FIT_VERSION,
                "n_components": self.n_components, "max_features": self.max_features, "normalize": True}

    def fit(self, corpus: Sequence[str]) -> "TfidfSvdEmbedder":
        """Learn TF-IDF and the SVD from `corpus` (a second call with the same texts does nothing)."""
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        corpus = list(corpus)
        digest = content_hash(corpus)
        if self._steps is not None and self.fitted_on == digest:
            return self
        if not corpus:
            raise ModelError("tfidf-svd cannot be fitted on an empty corpus")
        vec = TfidfVectorizer(max_features=self.max_features, sublinear_tf=True, stop_words="english",
                              min_df=1)
        try:
            weights = vec.fit_transform(corpus)
        except ValueError:  # "empty vocabulary; perhaps the documents only contain stop words"
            raise ModelError("tfidf-svd cannot be fitted on this corpus: empty vocabulary (no document holds a word of "
                             "two letters or more that is not an English stop word); use a sentence-transformers "
                             "model") from None
        n_docs, n_terms = weights.shape
        wanted = max(1, min(self.n_components, n_docs - 1, n_terms - 1))
        if n_terms < 2:
            axes: object = _TermWeights(n_terms)
        else:
            # np.errstate: sklearn's explained-variance ratio divides by a zero variance when every document is
            # the same (it is not used here); thread-safe, unlike a warnings filter.
            with np.errstate(divide="ignore", invalid="ignore"):
                axes = TruncatedSVD(n_components=wanted, random_state=0).fit(weights)
                rank = _numerical_rank(axes.singular_values_)
                if rank < wanted:
                    axes = TruncatedSVD(n_components=rank, random_state=0).fit(weights)
        self._steps = (vec, axes)
        self.caveat = _tfidf_caveat(self.n_components, int(axes.n_components), n_docs, n_terms,
                                    int((weights.getnnz(axis=1) == 0).sum()))
        self.fitted_on = digest
        return self

    def dimension(self) -> int:
        if self._steps is None:
            raise RuntimeError("fit the TF-IDF baseline on a corpus first")
        return int(self._steps[1].n_components)

    def encode(self, texts: Sequence[str], *, batch_size: int | None = None,
               progress: Progress | None = None) -> np.ndarray:
        texts = list(texts)
        if self._steps is None:
            raise RuntimeError("fit the TF-IDF baseline on its corpus before encoding (see EmbeddingSpace)")
        vec, axes = self._steps
        out = l2_normalise(np.asarray(axes.transform(vec.transform(texts)), dtype=np.float32))
        if progress:
            progress(1.0, f"embedded {len(texts)}/{len(texts)}")
        return out

    def encode_with_tokens(self, texts: Sequence[str], *, batch_size: int = 32,
                           progress: Progress | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
        raise ModelError("tfidf-svd has no token embeddings: pick a sentence-transformers model")


class _TermWeights:
    """The projection step of a one-term vocabulary: the TF-IDF weight itself (an SVD needs two terms)."""

    def __init__(self, n_terms: int) -> None:
        self.n_components = n_terms

    def transform(self, X) -> np.ndarray:
        return np.asarray(X.todense(), dtype=np.float64)


def _numerical_rank(singular_values: np.ndarray) -> int:
    """How many singular values are real directions (at least 1)."""
    sv = np.asarray(singular_values, dtype=np.float64)
    top = float(sv.max()) if sv.size else 0.0
    return max(1, int((sv > top * RANK_TOLERANCE).sum())) if top > 0 else 1


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _tfidf_caveat(asked: int, kept: int, n_docs: int, n_terms: int, empty_docs: int) -> str | None:
    """One line on what limits a TF-IDF + SVD fit, or None when it has the dimensions asked for."""
    parts = []
    if kept < asked:
        docs, terms = _plural(n_docs, "document"), _plural(n_terms, "distinct term")
        parts.append(f"{_plural(kept, 'dimension')} instead of {asked}: {docs} with {terms} allow no more")
    if empty_docs:
        parts.append(f"{_plural(empty_docs, 'document')} with no term of the vocabulary (only stop words, numbers "
                     "or punctuation): zero vectors, similar to nothing")
    return "tfidf-svd: " + "; ".join(parts) if parts else None


def get_embedder(model: str = DEFAULT_MODEL, **kwargs) -> Embedder:
    """The embedder for a model name: the TF-IDF baseline, the static model, or any sentence-transformers name or
    path."""
    if not model or not model.strip():
        raise ModelError("no model given")
    if model.endswith(IMPORTED_SUFFIX):
        raise ModelError(f"{model} are vectors imported with a corpus, not a model to load: pick that corpus "
                         "(they are read from the database that holds it)")
    if model == TFIDF_MODEL:
        return TfidfSvdEmbedder(**kwargs)
    if model == STATIC_MODEL:
        return StaticEmbedder(**kwargs)
    return SentenceTransformerEmbedder(model, **kwargs)


def embedding_dimension(model) -> int:
    """Output dimension of a SentenceTransformer (the method was renamed in sentence-transformers 6)."""
    fn = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(fn())
