"""Dense retrieval by exact cosine similarity (blockwise matrix products over the normalised embeddings)."""
from __future__ import annotations

from embedlab.retrieval.dense import ExactIndex
from embedlab.retrieval.registry import register


@register
class Dense(ExactIndex):
    name = "dense"
    description = "Exact cosine similarity over all documents (blockwise matrix products)"
