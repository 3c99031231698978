"""The stored matrices as a person sees them (`embedlab cache list`, the Sessions page): kind, model, shape, whether
shared or private to an imported corpus ("imported, not verified"), and the corpora that use each; and evicting them
(`embedlab cache evict`): an embedding goes with the projections derived from it, token embeddings with their
offsets. What is evicted is recomputed by the next command or page that needs it."""
from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from storage.cache_keys import is_private, offsets_key, projection_cache_key, shared_key_of
from storage.corpora import find_corpus
from storage.db import StorageError, transaction
from storage.matrices import MatrixMeta, get_matrix, list_matrices, matrices_where, status_label
from storage.sessions import require_session

KINDS = ("embedding", "tokens", "projection")
EVICT_KINDS = (*KINDS, "all")


@dataclass(frozen=True)
class CachedMatrix:
    """One stored matrix and the corpora ("session / corpus") that use it."""
    meta: MatrixMeta
    users: tuple[str, ...]

    @property
    def status(self) -> str:
        return status_label(self.meta.cache_key) + ("" if self.meta.complete else ", unfinished")

    @property
    def what(self) -> str:
        """The kind, with a projection's method and dimensions."""
        if self.meta.kind != "projection":
            return self.meta.kind
        p = self.meta.params
        return f"projection ({p.get('method', '?')} {p.get('n_components', self.meta.cols)}-D)"

    def line(self) -> str:
        """Tab-separated; nothing that differs between two copies of the same data (no ids, keys or dates)."""
        return "\t".join([self.what, self.meta.model or "-", f"{self.meta.rows} x {self.meta.cols}", self.status,
                          ", ".join(self.users) or "used by no corpus"])


def cached_matrices(db: sqlite_utils.Database, session: str | None = None) -> list[CachedMatrix]:
    """Every stored matrix (token offsets count with their tokens), or with `session` those its corpora use;
    sorted by their lines."""
    users = _users(db)
    if session is not None:
        sid = require_session(db, session)
        ids = {m.id for cid, h in db.execute("SELECT id, content_hash FROM corpora WHERE session_id = ?", [sid])
               for m in list_matrices(db, h, corpus_id=cid)}
    else:
        ids = {r[0] for r in db.execute("SELECT id FROM matrices")}
    found = [CachedMatrix(get_matrix(db, i), tuple(sorted(users.get(i, ())))) for i in ids]
    return sorted((c for c in found if c.meta.kind != "token_offsets"), key=CachedMatrix.line)


def evict(db: sqlite_utils.Database, session: str, corpus: str, *, model: str | None = None,
          kind: str = "all") -> list[CachedMatrix]:
    """Remove the matrices corpus `corpus` of `session` uses (of `model`, of `kind`), with what derives from them;
    return what was removed. Nothing matching is a user error."""
    if kind not in EVICT_KINDS:
        raise StorageError(f"--kind must be one of {', '.join(EVICT_KINDS)}, got {kind!r}")
    info = find_corpus(db, require_session(db, session), corpus)
    chosen = [m for m in list_matrices(db, info.content_hash, corpus_id=info.id)
              if m.kind in (KINDS if kind == "all" else (kind,)) and (model is None or m.model == model)]
    if not chosen:
        what = " ".join(x for x in (model and f"of model {model!r}", kind != "all" and f"of kind {kind}") if x)
        raise StorageError(f"no cached matrix {what + ' ' if what else ''}for corpus {corpus!r} of session "
                           f"{session!r}: see `cache list --session` for what is stored")
    return _remove(db, chosen)


def evict_matrix(db: sqlite_utils.Database, matrix_id: int) -> list[CachedMatrix]:
    """Remove one stored matrix (the Sessions page's Evict button) with what derives from it."""
    try:
        meta = get_matrix(db, matrix_id)
    except KeyError:
        raise StorageError("that matrix is no longer stored (evicted meanwhile?)") from None
    return _remove(db, [meta])


def _remove(db: sqlite_utils.Database, chosen: list[MatrixMeta]) -> list[CachedMatrix]:
    users = _users(db)
    with transaction(db) as conn:
        ids: dict[int, MatrixMeta] = {}
        for m in chosen:
            ids[m.id] = m
            ids.update((d.id, d) for d in _derived(db, m))
        removed = [CachedMatrix(m, tuple(sorted(users.get(m.id, ())))) for m in ids.values()]
        conn.executemany("DELETE FROM matrices WHERE id = ?", [[i] for i in ids])
    return sorted((c for c in removed if c.meta.kind != "token_offsets"), key=CachedMatrix.line)


def _derived(db: sqlite_utils.Database, m: MatrixMeta) -> list[MatrixMeta]:
    """An embedding's projections (their keys derive from its key, private with it), a token matrix's offsets."""
    if m.kind == "tokens":
        return matrices_where(db, "cache_key = ?", [offsets_key(m.cache_key)])
    if m.kind != "embedding":
        return []
    shared = shared_key_of(m.cache_key)
    return [p for p in matrices_where(db, "content_hash = ? AND kind = 'projection'", [m.content_hash])
            if is_private(p.cache_key) == is_private(m.cache_key)
            and (not is_private(m.cache_key) or p.corpus_id == m.corpus_id)
            and shared_key_of(p.cache_key) == projection_cache_key(shared, p.params)]


def _users(db: sqlite_utils.Database) -> dict[int, set[str]]:
    """matrix id -> the corpora ("session / corpus") that see it (`list_matrices` per corpus)."""
    out: dict[int, set[str]] = {}
    for cid, h, session, corpus in db.execute(
            "SELECT c.id, c.content_hash, s.name, c.name FROM corpora c JOIN sessions s ON s.id = c.session_id"):
        for m in list_matrices(db, h, corpus_id=cid):
            out.setdefault(m.id, set()).add(f"{session} / {corpus}")
    return out
