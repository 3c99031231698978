"""The one set of OOD label rules: which in-distribution labels a label-based detector can use, and why a method
cannot run on an in-distribution set.

Every caller asks here: the comparison (page job and CLI bench alike), the page's greyed-out detectors
(`embedlab.ood.disabled_methods`, which reads the registry), and the detectors' own argument check. A label-based
detector (Mahalanobis, RMD, MSP, energy, ViM, MCM, prototypes) needs a label on every in-distribution training
document, and at least two distinct labels.

Pure: it imports no detector and not the registry (the registry's detectors import this module).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from embedlab.errors import InputError

NO_LABELS = "needs labels on the in-distribution set, and it has none"
MISSING_LABEL = "needs a label on every in-distribution document"
ONE_LABEL = "needs at least two labels in the in-distribution set"
NO_EMBEDDER = "needs the embedding model to embed label prompts"


def is_missing(label: Any) -> bool:
    """A document without a label: None or an empty string."""
    return label is None or str(label) == ""


def label_problem(labels: Sequence[Any] | None) -> str | None:
    """Why these training labels cannot serve a label-based detector (None when they can)."""
    if labels is None or all(is_missing(v) for v in labels):
        return NO_LABELS
    if any(is_missing(v) for v in labels):
        return MISSING_LABEL
    if len({str(v) for v in labels}) < 2:
        return ONE_LABEL
    return None


def label_status(labels: Sequence[Any] | None) -> tuple[bool, str | None]:
    """(usable, reason when not): the same rule as `label_problem`, as a pair."""
    problem = label_problem(labels)
    return problem is None, problem


def usable_labels(labels: Sequence[Any] | None) -> np.ndarray | None:
    """The labels as strings when a label-based detector can use them, else None."""
    if label_problem(labels) is not None:
        return None
    return np.asarray([str(v) for v in labels], dtype=object)  # type: ignore[union-attr]


def checked_labels(labels: Sequence[Any] | None, n: int, method: str) -> np.ndarray:
    """The labels a label-based detector is fitted with, as strings; InputError naming the method otherwise
    (what `Detector.fit` should call)."""
    if labels is not None and len(labels) != n:
        raise InputError(f"{len(labels)} labels for {n} in-distribution embeddings")
    problem = label_problem(labels)
    if problem is not None:
        raise InputError(f"OOD method {method!r} {problem}")
    return np.asarray([str(v) for v in labels], dtype=object)  # type: ignore[union-attr]


def method_problem(detector: Any, *, labels_problem: str | None, has_embedder: bool = True) -> str | None:
    """Why a detector class cannot run (None when it can): `labels_problem` is `label_problem(train labels)`."""
    if getattr(detector, "needs_labels", False) and labels_problem is not None:
        return labels_problem
    if getattr(detector, "needs_embedder", False) and not has_embedder:
        return NO_EMBEDDER
    return None
