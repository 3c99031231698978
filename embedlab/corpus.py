"""The validated in-memory corpus that ingestion produces and storage keeps."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from storage.content import content_hash

__all__ = ["Corpus", "Skip", "content_hash"]


@dataclass
class Skip:
    """One document left out, and why (row counts from 1 as in the file, or the line for TXT)."""
    row: int
    reason: str


@dataclass
class Corpus:
    name: str
    source: str
    texts: list[str]
    doc_ids: list[str]
    labels: list[str | None] | None = None
    metas: list[dict[str, Any]] = field(default_factory=list)
    text_col: str | None = None
    label_col: str | None = None
    id_col: str | None = None
    meta_cols: list[str] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.metas:
            self.metas = [{} for _ in self.texts]

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)

    @property
    def content_hash(self) -> str:
        """sha256 over the texts in order: what an embedding depends on."""
        return content_hash(self.texts)

