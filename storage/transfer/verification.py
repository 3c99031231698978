"""Which imported matrices may enter the shared cache: an embedding (and token embeddings) only when it verifies
against its claimed model on a random sample of its documents, a projection only with the verified embedding it was
derived from; everything else stays private to its corpus. The check itself is the engine's (`MatrixVerifier`, e.g.
`embedlab.embedding.verify`): storage only samples the rows and reads them from the file."""
from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from storage.cache_keys import LOOKUP_PREFIXES, identity_cache_key, offsets_key
from storage.transfer.file_format import source_rows
from storage.transfer.validation import Plan, blocks, file_rows

SAMPLE_SIZE = 16        # documents re-encoded per imported matrix


@dataclass(frozen=True)
class Verdict:
    """Whether the stored rows are what the model gives, and if not, why (one line)."""
    verified: bool
    reason: str = ""


class MatrixVerifier(Protocol):
    """Checks sampled rows of an imported matrix against the model its identity (`params_json`) claims. The engine's
    `embedlab.embedding.verify` module is one. What it cannot check must be `Verdict(False, why)`, never an error."""

    def verify_embedding(self, identity: dict, corpus: Callable[[], Sequence[str]], rows: np.ndarray,
                         texts: Sequence[str], stored: np.ndarray) -> Verdict:
        """The stored rows `rows` (`stored`, one per text of `texts`) against a fresh encoding of those texts in
        the corpus's space (`corpus` loads every text: a corpus-fitted embedder is fitted on them first)."""
        ...

    def verify_tokens(self, identity: dict, corpus: Callable[[], Sequence[str]], rows: np.ndarray,
                      texts: Sequence[str], stored: Sequence[np.ndarray]) -> Verdict:
        """The stored token rows of documents `rows` (`stored[i]`: the token rows of `texts[i]`) against a fresh
        token encoding."""
        ...


def sample_rows(n: int, rng: np.random.Generator, size: int = SAMPLE_SIZE) -> np.ndarray:
    """`size` distinct row numbers of `n` (all of them when fewer), ascending."""
    if n <= size:
        return np.arange(n)
    return np.sort(rng.choice(n, size=size, replace=False))


def verify_plan(src: sqlite3.Connection, plan: Plan, verifier: MatrixVerifier,
                rng: np.random.Generator | None = None) -> None:
    """Set each matrix's `shared`: whether it may enter the shared cache. An embedding (and a token matrix) must
    verify against the claimed model (`verifier`) on a random sample of its documents; a token matrix also needs the
    file's embedding of the same identity and texts, when there is one, to verify; a projection needs the file's
    embedding it was derived from to verify; token offsets follow their token matrix. A key no lookup computes is
    never shared."""
    rng = rng or np.random.default_rng(secrets.randbits(64))
    texts: dict[int, list[str]] = {}

    def corpus_texts(corpus: dict) -> list[str]:
        if corpus["id"] not in texts:
            texts[corpus["id"]] = [r[0] for r in source_rows(lambda: src.execute(
                "SELECT text FROM documents WHERE corpus_id = ? ORDER BY idx", [corpus["id"]]))]
        return texts[corpus["id"]]

    def lookup(m: dict) -> bool:
        return m["key"].startswith(LOOKUP_PREFIXES)

    by_key = {m["key"]: m for m in plan.matrices}
    for m in plan.matrices:
        m["shared"], m["why"] = False, "" if lookup(m) else "its key is one no lookup computes"
    for m in plan.matrices:
        if m["kind"] != "embedding" or not lookup(m):
            continue
        rows = sample_rows(m["rows"], rng)
        corpus = m["corpus"]
        verdict = verifier.verify_embedding(m["params"], lambda c=corpus: corpus_texts(c), rows,
                                            [corpus_texts(corpus)[r] for r in rows], file_rows(src, m, rows))
        m["shared"], m["why"] = verdict.verified, verdict.reason
    for m in plan.matrices:
        if m["kind"] != "tokens" or not lookup(m):
            continue
        embedding = by_key.get(identity_cache_key(m["params"], m["corpus"]["hash"], "embedding"))
        if embedding is not None and not embedding["shared"]:
            m["why"] = "its embedding did not verify"
        else:
            m["shared"], m["why"] = _verify_tokens(src, m, by_key[offsets_key(m["key"])], verifier, rng,
                                                    corpus_texts)
        by_key[offsets_key(m["key"])].update(shared=m["shared"], why=m["why"])
    for m in plan.matrices:
        if m["kind"] == "projection" and lookup(m):
            source = m.get("source")
            m["shared"] = source is not None and source["shared"]
            m["why"] = "" if m["shared"] else "the embedding it was derived from is not a verified one of the file"


def _verify_tokens(src: sqlite3.Connection, m: dict[str, Any], offsets_m: dict[str, Any], verifier: MatrixVerifier,
                   rng: np.random.Generator, corpus_texts: Callable[[dict], list[str]]) -> tuple[bool, str]:
    """Token rows of a sample of documents against the model's own token encoding."""
    offsets = np.concatenate([block[:, 0] for _, block in blocks(src, offsets_m)])
    corpus = m["corpus"]
    rows = sample_rows(len(offsets) - 1, rng)
    stored = [file_rows(src, m, np.arange(offsets[r], offsets[r + 1])) for r in rows]
    verdict = verifier.verify_tokens(m["params"], lambda: corpus_texts(corpus), rows,
                                     [corpus_texts(corpus)[r] for r in rows], stored)
    return verdict.verified, verdict.reason
