"""Import: the one session of an exported file, checked (`file_checks`, `validation`), verified (`verification`) and
copied (`import_copy`), or refused with one line and nothing changed."""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import sqlite_utils

from storage.output_files import database_files, same_file
from storage.transfer.file_checks import check_database, check_file, open_foreign
from storage.transfer.file_format import MAX_IMPORT_BYTES, ImportRefused, db_file, one_line
from storage.transfer.import_copy import copy_in
from storage.transfer.validation import describe, validate
from storage.transfer.verification import MatrixVerifier, verify_plan


def import_session(db: sqlite_utils.Database, file_path: str | os.PathLike, *, verifier: MatrixVerifier,
                   max_bytes: int = MAX_IMPORT_BYTES, notes: list[str] | None = None) -> str:
    """Import the one session of an exported file; return its name here (suffixed " (2)" etc. when the name is
    taken: nothing is ever overwritten). Raises `ImportRefused` for a file that fails any check, and
    `StorageError` when our own database cannot be written; in both cases nothing was changed. `verifier` decides
    which embeddings (and token embeddings) verify against their claimed model and so may enter the shared cache
    (the engine's `embedlab.session_files.import_session_file` passes `embedlab.embedding.verify`). `notes`, when
    given, receives one line per matrix kept private to its corpus, saying why."""
    path = Path(file_path)
    source = db_file(db)
    if source and any(same_file(path, p) for p in database_files(source)):
        raise ImportRefused(f"{path} is the database itself: import a session file exported from another one")
    check_file(path, max_bytes)
    src = open_foreign(path)
    try:
        try:
            check_database(src)
            plan = validate(src, db)
            verify_plan(src, plan, verifier)
        except sqlite3.DatabaseError as exc:
            raise ImportRefused(f"the file cannot be read: {one_line(exc)}") from exc
        name = copy_in(db, src, plan)
        if notes is not None:
            notes += [f"{describe(m)} is kept private to it (imported, not verified): {m['why']}"
                      for m in plan.matrices if not m["shared"] and m["kind"] != "token_offsets"]
        return name
    finally:
        src.close()
