"""What every retrieval method shares: the text sets it indexes and queries, the method interface, exact top-k."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from embedlab.neighbours import top_k
from embedlab.registry import Param, resolve_params

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
    qrels: dict[str, dict[str, int]] | None = None     # judgements of these texts as queries (training queries)
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

    Subclasses set `name`, `description` (one line), `param_specs` (the declared parameters: `Param`s with type,
    default, bounds and choices) and `needs` (subset of {"text", "embeddings", "tokens"}: what build and search
    read). A family with a number in its name sets `pattern` (e.g. r"matryoshka-(\\d+)") and `params_from_name`.
    An instance's `params` are the checked values of every declared parameter.
    """
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    param_specs: ClassVar[tuple[Param, ...]] = ()
    needs: ClassVar[frozenset[str]] = frozenset()
    pattern: ClassVar[str | None] = None
    params: dict[str, Any]

    def __init__(self, **params: Any) -> None:
        self.params = resolve_params(self.param_specs, params, f"retrieval method {self.name!r}")
        self.n_docs = 0

    @classmethod
    def params_from_name(cls, match: re.Match) -> dict[str, Any]:
        """Parameters a concrete name carries (for a `pattern` family, e.g. {"dims": 128} from matryoshka-128)."""
        return {}

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

    def extra_summary(self, queries: "TextSet", qrels: dict[str, dict[str, int]]) -> dict[str, Any]:
        """Method-specific entries of its benchmark JSON, read after every query was searched (e.g. the router's
        oracle and expert counts, a rescoring store's size)."""
        return {"rescore_bytes": int(self.rescore_bytes)} if hasattr(self, "rescore_bytes") else {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.params})"


def exact_top_k(queries: np.ndarray, docs: np.ndarray, k: int, *,
                block: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k documents by inner product for every query row: `neighbours.top_k` with vector queries
    (blockwise matrix products, memory bounded by the blocks); [n_q, min(k, n_docs)] ids and float32 scores."""
    q = np.asarray(queries, dtype=np.float32)
    if len(q) == 0:
        k = max(0, min(k, len(docs)))
        return np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
    return top_k(docs, q.reshape(len(q), -1), k=k, exclude_self=False, block=block)
