"""Matryoshka truncation: dense retrieval on the first N dimensions, renormalised (N from the name)."""
from __future__ import annotations

import re
from typing import Any

import numpy as np

from embedlab.neighbours import l2_normalise
from embedlab.registry import Param
from embedlab.retrieval.base import TextSet
from embedlab.retrieval.dense import BLOCK, ExactIndex
from embedlab.retrieval.registry import register


@register
class Matryoshka(ExactIndex):
    name = "matryoshka-N"
    description = "Dense on the first N dimensions, renormalised (Matryoshka truncation; N from the name)"
    pattern = r"matryoshka-(\d+)"
    param_specs = (Param("dims", int, 128, min=1, step=16, help="N: the leading dimensions kept"), BLOCK)

    @classmethod
    def params_from_name(cls, match: re.Match) -> dict[str, Any]:
        return {"dims": int(match.group(1))}

    def build(self, corpus: TextSet) -> "Matryoshka":
        dim = corpus.embeddings().shape[1]
        if not 1 <= self.params["dims"] <= dim:
            raise ValueError(f"{self.name}: N must be between 1 and the embedding dimension {dim}")
        return super().build(corpus)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(l2_normalise(np.asarray(x)[:, :self.params["dims"]]))
