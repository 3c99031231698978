"""What every retrieval method shares: the text sets it indexes and queries, the method interface, exact top-k."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Sequence

import numpy as np

EmbedFn = Callable[[list[str]], np.ndarray]
TokensFn = Callable[[list[str]], tuple[np.ndarray, np.ndarray]]


@dataclass
class TokenMatrix:
    """Token embeddings of many texts stacked: text i owns rows offsets[i]:offsets[i + 1]."""
    data: np.ndarray
    offsets: np.ndarray

    def __post_init__(self) -> None:
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        if self.offsets.ndim != 1 or self.offsets[0] != 0 or self.offsets[-1] != len(self.data):
            raise ValueError("offsets must run from 0 to the number of token rows")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def item(self, i: int) -> np.ndarray:
        return self.data[self.offsets[i]:self.offsets[i + 1]]

    def subset(self, rows: Sequence[int] | np.ndarray) -> "TokenMatrix":
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.lengths[rows]
        if len(rows) == 0:
            return TokenMatrix(self.data[:0], np.zeros(1, np.int64))
        index = np.concatenate([np.arange(self.offsets[r], self.offsets[r + 1]) for r in rows])
        return TokenMatrix(self.data[index], np.concatenate([[0], np.cumsum(lengths)]))

    @classmethod
    def from_list(cls, mats: Sequence[np.ndarray], dim: int | None = None) -> "TokenMatrix":
        lengths = [len(m) for m in mats]
        dim = dim if dim is not None else (mats[0].shape[1] if mats else 0)
        data = np.concatenate(mats).astype(np.float32) if mats else np.zeros((0, dim), np.float32)
        return cls(data, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))


@dataclass
class TextSet:
    """Texts (documents or queries) with their representations, computed lazily and once.

    `embed` and `embed_tokens` compute what was not given up front; a method asks only for what it needs, so BM25
    never triggers the model and token embeddings are computed only for late-interaction methods.
    `reference_queries` (documents only) are other queries of the same collection, e.g. the training split, for
    methods that use a query bank (InvGC).
    """
    texts: list[str]
    ids: list[str] | None = None
    embed: EmbedFn | None = None
    embed_tokens: TokensFn | None = None
    reference_queries: "TextSet | None" = None
    _embeddings: np.ndarray | None = field(default=None, repr=False)
    _tokens: TokenMatrix | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.texts = list(self.texts)
        if self.ids is None:
            self.ids = [str(i) for i in range(len(self.texts))]

    def __len__(self) -> int:
        return len(self.texts)

    @classmethod
    def from_arrays(cls, *, texts: Sequence[str] | None = None, embeddings: np.ndarray | None = None,
                    tokens: TokenMatrix | tuple[np.ndarray, np.ndarray] | None = None,
                    ids: Sequence[str] | None = None, reference_queries: "TextSet | None" = None) -> "TextSet":
        """A text set from precomputed arrays (tests, cached embeddings); texts default to empty strings."""
        n = next(len(x) for x in (texts, embeddings, ids) if x is not None) if (
            texts is not None or embeddings is not None or ids is not None) else len(_as_tokens(tokens))
        out = cls(list(texts) if texts is not None else [""] * n, list(ids) if ids is not None else None,
                  reference_queries=reference_queries)
        if embeddings is not None:
            out._embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        if tokens is not None:
            out._tokens = _as_tokens(tokens)
        return out

    @property
    def has_embeddings(self) -> bool:
        return self._embeddings is not None

    @property
    def has_tokens(self) -> bool:
        return self._tokens is not None

    def embeddings(self) -> np.ndarray:
        """L2-normalised float32 rows, one per text."""
        if self._embeddings is None:
            if self.embed is None:
                raise ValueError("this text set has no embeddings and no embedder")
            self._embeddings = np.ascontiguousarray(self.embed(self.texts), dtype=np.float32)
        return self._embeddings

    def tokens(self) -> TokenMatrix:
        """Per-text token embeddings (each token L2-normalised), stacked."""
        if self._tokens is None:
            if self.embed_tokens is None:
                raise ValueError("this text set has no token embeddings and no token embedder")
            self._tokens = _as_tokens(self.embed_tokens(self.texts))
        return self._tokens

    def subset(self, rows: Sequence[int] | np.ndarray) -> "TextSet":
        """The given rows, carrying along whatever representations were already computed."""
        rows = np.asarray(rows, dtype=np.int64)
        out = TextSet([self.texts[i] for i in rows], [self.ids[i] for i in rows], self.embed, self.embed_tokens,
                      self.reference_queries)
        if self._embeddings is not None:
            out._embeddings = self._embeddings[rows]
        if self._tokens is not None:
            out._tokens = self._tokens.subset(rows)
        return out


def _as_tokens(tokens: TokenMatrix | tuple[np.ndarray, np.ndarray]) -> TokenMatrix:
    if isinstance(tokens, TokenMatrix):
        return tokens
    data, offsets = tokens
    return TokenMatrix(np.asarray(data), np.asarray(offsets))


class RetrievalMethod:
    """A retrieval method: `build(corpus)` once, then `search(queries, k)` as often as wanted.

    Subclasses set `name`, `description` (one line), `params` (defaults; the types of the defaults are the types of
    the parameters) and `needs` (subset of {"text", "embeddings", "tokens"}: what build and search read).
    """
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    params: dict[str, Any] = {}
    needs: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, **params: Any) -> None:
        defaults = type(self).params
        unknown = set(params) - set(defaults)
        if unknown:
            raise ValueError(f"{self.name}: unknown parameter(s) {sorted(unknown)}; known: {sorted(defaults)}")
        self.params = {k: _typed(k, defaults[k], params.get(k, defaults[k])) for k in defaults}
        self.n_docs = 0

    def load_libraries(self) -> None:
        """Import what build and search need (called before build is timed, so build_s is not import time)."""

    def build(self, corpus: TextSet) -> "RetrievalMethod":
        raise NotImplementedError

    def search(self, queries: TextSet, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k document rows (int64, [n_q, min(k, n_docs)]) and their scores (float32), best first."""
        raise NotImplementedError

    @property
    def index_bytes(self) -> int:
        """Bytes of what search reads besides the query: the index as it sits in memory."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.params})"


def _typed(name: str, default: Any, value: Any) -> Any:
    """Cast a parameter to the type of its default (so '0.5' from a form or CLI becomes 0.5)."""
    if default is None or value is None:
        return value
    kind = type(default)
    if kind is bool:
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"parameter {name}: expected true or false, got {value!r}")
        return bool(value)
    try:
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"parameter {name}: expected {kind.__name__}, got {value!r}") from exc


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows' k best columns, best first (ties broken by the lower column), via argpartition."""
    scores = np.asarray(scores)
    n = scores.shape[1]
    k = min(k, n)
    if k <= 0:
        return np.zeros((len(scores), 0), np.int64), np.zeros((len(scores), 0), np.float32)
    if k < n:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(n), scores.shape).copy()
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1) if part.size else part
    ids = np.take_along_axis(part, order, axis=1).astype(np.int64)
    return ids, np.take_along_axis(part_scores, order, axis=1).astype(np.float32)


def exact_inner_product_top_k(queries: np.ndarray, docs: np.ndarray, k: int, *, doc_block: int = 65536,
                              query_block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product: blockwise matrix products (memory bounded by the blocks), blocks merged."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    n_q, n_d = len(queries), len(docs)
    k = min(k, n_d)
    if n_q > query_block:
        parts = [exact_inner_product_top_k(queries[s:s + query_block], docs, k, doc_block=doc_block,
                                           query_block=query_block) for s in range(0, n_q, query_block)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    if n_d <= doc_block:
        return top_k(queries @ np.asarray(docs, dtype=np.float32).T, k)
    best_ids = np.zeros((n_q, 0), np.int64)
    best_scores = np.zeros((n_q, 0), np.float32)
    for start in range(0, n_d, doc_block):
        chunk = np.asarray(docs[start:start + doc_block], dtype=np.float32)
        ids, scores = top_k(queries @ chunk.T, k)
        cand_ids = np.concatenate([best_ids, ids + start], axis=1)
        cand_scores = np.concatenate([best_scores, scores], axis=1)
        sel, best_scores = top_k(cand_scores, k)
        best_ids = np.take_along_axis(cand_ids, sel, axis=1)
    return best_ids, best_scores


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
