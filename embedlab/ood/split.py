"""Which documents of one corpus train a detector, which are the in-distribution test and which are OOD."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from embedlab.errors import InputError
from embedlab.ood.clinc import holdout
from embedlab.ood.label_rules import is_missing

DEFAULT_FRACTION = 0.3


@dataclass
class OODSplit:
    """Positions in the in-distribution corpus: training, ID test and OOD test (from labels marked OOD)."""

    train: np.ndarray
    id_test: np.ndarray
    ood: np.ndarray
    labels: list[str | None] | None = None
    dropped: int = 0

    @property
    def train_labels(self) -> list[str | None] | None:
        return None if self.labels is None else [self.labels[i] for i in self.train]


def split_corpus(labels: Sequence[str | None], *, id_labels: Sequence[str] | None = None,
                 ood_labels: Sequence[str] = (), fraction: float = DEFAULT_FRACTION, seed: int = 0) -> OODSplit:
    """Carve training, ID test and OOD test out of one corpus's documents (by position).

    ood_labels leave training and become OOD test; with id_labels, only those labels are in-distribution and
    documents of other labels are left out. The ID test is a seeded, label-stratified hold-out of `fraction` of
    the in-distribution documents; fraction 0 holds nothing out (the ID test comes from elsewhere).
    labels: one per document, None where a document has none."""
    n = len(labels)
    if all(is_missing(v) for v in labels):
        labels = None
    ood_set, id_set = {str(v) for v in ood_labels}, {str(v) for v in (id_labels or [])}
    present = set() if labels is None else {str(v) for v in labels if not is_missing(v)}
    asked = ood_set | id_set
    if asked and labels is None:
        raise InputError("this corpus has no labels, so no label can be in-distribution or OOD")
    unknown = sorted(asked - present)
    if unknown:
        raise InputError(f"label(s) {', '.join(unknown)} do not occur in the in-distribution corpus")
    both = sorted(ood_set & id_set)
    if both:
        raise InputError(f"label(s) {', '.join(both)} are marked both in-distribution and OOD")
    positions = np.arange(n)
    if labels is None:
        is_ood, is_id = np.zeros(n, bool), np.ones(n, bool)
    else:
        text_labels = np.asarray(["" if v is None else str(v) for v in labels], dtype=object)
        is_ood = np.isin(text_labels, list(ood_set)) if ood_set else np.zeros(n, bool)
        is_id = np.isin(text_labels, list(id_set)) if id_set else ~is_ood
    if not is_id.any():
        raise InputError("nothing is left in distribution: every document has a label marked OOD")
    id_pos = positions[is_id]
    try:
        fraction = float(fraction)
    except (TypeError, ValueError):
        raise InputError(f"the held-out fraction must be a number, got {fraction!r}") from None
    if fraction == 0:
        train, id_test = id_pos, np.zeros(0, dtype=np.int64)
    else:
        id_labels_kept = None if labels is None else [labels[i] for i in id_pos]
        # The hold-out works on any sequence: given positions, it returns positions.
        kept, held = holdout(list(id_pos), id_labels_kept, fraction=fraction, seed=int(seed))
        train, id_test = np.asarray(kept.texts, dtype=np.int64), np.asarray(held.texts, dtype=np.int64)
    return OODSplit(train=train.astype(np.int64), id_test=id_test, ood=positions[is_ood],
                    labels=None if labels is None else list(labels), dropped=int(n - is_id.sum() - is_ood.sum()))
