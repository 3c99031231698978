"""The detector interface and the registry that the OOD page, the CLI and the benchmark read.

Detectors are found by discovery: every module of `embedlab.ood.detectors` is imported on first use, and each class
it decorates with `@register` is a detector (display order: `detectors.DISPLAY_ORDER`, then by name).
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar

import numpy as np

from embedlab.errors import InputError
from embedlab.ood.label_rules import NO_EMBEDDER, checked_labels
from embedlab.registry import Param, Registry, resolve_params

EmbedFn = Callable[[list[str]], np.ndarray]

DETECTORS = Registry("OOD method", "embedlab.ood.detectors")
REGISTRY = DETECTORS   # name -> Detector class (a read-only mapping, filled on first use)
register = DETECTORS.register


class Detector:
    """Fits on in-distribution embeddings, then scores test embeddings: higher = more out-of-distribution."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    param_specs: ClassVar[tuple[Param, ...]] = ()   # declared parameters: type, default, bounds, choices
    needs_labels: ClassVar[bool] = False
    needs_embedder: ClassVar[bool] = False
    uses_head: ClassVar[bool] = False  # scores come from the shared logistic-regression head (logits.LinearHead)

    def __init__(self, **params: Any) -> None:
        # Unknown, mistyped, out-of-bounds values raise InputError naming the method and the parameter.
        self.config: dict[str, Any] = resolve_params(self.param_specs, params, f"OOD method {self.name!r}")
        self.explicit = set(params)  # what the caller chose, as opposed to defaults
        self.fitted = False

    def fit(self, X: np.ndarray, labels: Any = None, label_names: dict[str, str] | None = None,
            embed_fn: EmbedFn | None = None) -> "Detector":
        X = as_matrix(X, "training embeddings")
        if self.needs_labels:
            labels = checked_labels(labels, len(X), self.name)
        if self.needs_embedder and embed_fn is None:
            raise InputError(f"OOD method {self.name!r} {NO_EMBEDDER}")
        self._fit(X, labels, label_names, embed_fn)
        self.fitted = True
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        if not self.fitted:
            raise RuntimeError(f"{self.name}: call fit() before score()")
        return np.asarray(self._score(as_matrix(X, "test embeddings")), dtype=np.float64)

    def _fit(self, X: np.ndarray, labels: np.ndarray | None, label_names: dict[str, str] | None,
             embed_fn: EmbedFn | None) -> None:
        raise NotImplementedError

    def _score(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args})"


def as_matrix(X: Any, what: str) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0:
        raise InputError(f"{what} must be a non-empty 2-D array, got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.number):
        raise InputError(f"{what} must be numeric, got {X.dtype}")
    X = X.astype(np.float64, copy=False)
    if not np.isfinite(X).all():
        raise InputError(f"{what} contain NaN or infinite values")
    return X

