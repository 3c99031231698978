"""Session files (`embedlab sessions export/import`, the Sessions page): an import checks the file in storage and
verifies its embeddings here, with the models this machine has (`embedlab.embedding.verify`), before any of them may
enter the shared cache."""
from __future__ import annotations

import os

import sqlite_utils

from embedlab.embedding import verify
from storage.transfer import MAX_IMPORT_BYTES, import_session


def import_session_file(db: sqlite_utils.Database, path: str | os.PathLike, *, notes: list[str] | None = None,
                        max_bytes: int = MAX_IMPORT_BYTES) -> str:
    """Import the one session of an exported file (`storage.transfer.import_session`), its embeddings and token
    embeddings verified against their claimed models; return its name here. `notes`, when given, receives one line
    per matrix kept private to its corpus ("imported, not verified"), saying why. Raises `ImportRefused` (nothing
    changed) for a file that fails a check."""
    return import_session(db, path, verifier=verify, notes=notes, max_bytes=max_bytes)
