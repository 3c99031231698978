"""Around `storage.transfer`'s session files: what an export holds (bytes per kind), an export that leaves out
what can be recomputed (token embeddings, projections) and keeps the session's run numbers, and the run
numbers an import gave.

`transfer.export_session` writes the file; `export_session_with_options` post-processes that file before it is
moved into place (deletes the matrices left out, restores the run ids, compacts), so the trust boundary of
`transfer` stays the only code that copies sessions.
"""
from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from storage.db import StorageError, connect
from storage.matrices import session_matrices
from storage.output_files import atomic_output, fsync_path
from storage.sessions import require_session, session_fingerprint
from storage.transfer import export_session, export_target

# What `--without` may name -> the matrix kinds it leaves out. Both can be recomputed from the documents.
OMITTABLE = {"tokens": ("tokens", "token_offsets"), "projections": ("projection",)}
RECOMPUTE_NOTE = {"tokens": "maxsim and muvera recompute them",
                  "projections": "“Compute map” on the Atlas redraws them"}


@dataclass(frozen=True)
class ExportPart:
    """One kind of content of a session's export: its name, how many items, and the bytes of their data."""
    key: str            # documents | embeddings | tokens | projections | runs | other
    label: str
    items: int
    bytes: int
    omittable: bool = False


def parse_without(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """`"tokens,projections"` (or a list) -> ("projections", "tokens"); an unknown name is a user error."""
    if value is None:
        return ()
    names = value.split(",") if isinstance(value, str) else list(value)
    out = set()
    for name in names:
        name = name.strip().lower()
        if not name:
            continue
        if name not in OMITTABLE:
            raise StorageError(f"cannot leave out {name!r}: choose from {', '.join(OMITTABLE)}")
        out.add(name)
    return tuple(sorted(out))


def export_contents(db: sqlite_utils.Database, name: str) -> list[ExportPart]:
    """What an export of session `name` holds, by kind, with the bytes of the data (the file adds the keyword
    search index and SQLite's page overhead on top)."""
    sid = require_session(db, name)
    docs = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(length(CAST(text AS BLOB)) + length(CAST(doc_id AS BLOB)) "
        "+ COALESCE(length(CAST(label AS BLOB)), 0) + length(CAST(meta_json AS BLOB))), 0) "
        "FROM documents WHERE corpus_id IN (SELECT id FROM corpora WHERE session_id = ?)", [sid]).fetchone()
    matrices: dict[str, tuple[int, int]] = {}
    for meta in session_matrices(db, sid):   # what the export holds: never another corpus's private matrix
        size = db.execute("SELECT COALESCE(SUM(length(data)), 0) FROM matrix_chunks WHERE matrix_id = ?",
                          [meta.id]).fetchone()[0]
        n, total = matrices.get(meta.kind, (0, 0))
        matrices[meta.kind] = (n + 1, total + size)
    runs = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(length(CAST(params_json AS BLOB)) + length(CAST(metrics_json AS BLOB)) "
        "+ length(CAST(details_json AS BLOB))), 0) FROM runs WHERE session_id = ?", [sid]).fetchone()
    parts = [ExportPart("documents", "documents", docs[0], docs[1])]
    labels = {"embeddings": ("embeddings", ("embedding",)), "tokens": ("token embeddings", OMITTABLE["tokens"]),
              "projections": ("projections (maps)", OMITTABLE["projections"])}
    for key, (label, kinds) in labels.items():
        found = [matrices.pop(kind) for kind in kinds if kind in matrices]
        items = found[0][0] if found else 0        # token offsets come with their token matrix: not an item
        parts.append(ExportPart(key, label, items, sum(size for _, size in found), omittable=key in OMITTABLE))
    if matrices:
        parts.append(ExportPart("other", "other matrices", sum(n for n, _ in matrices.values()),
                                sum(s for _, s in matrices.values())))
    parts.append(ExportPart("runs", "retrieval and OOD runs", runs[0], runs[1]))
    return parts


def export_session_with_options(db: sqlite_utils.Database, name: str, out_path: str | os.PathLike, *,
                                without: Iterable[str] = (), overwrite: bool = False) -> Path:
    """`transfer.export_session`, then leave out the matrix kinds named in `without` ("tokens", "projections")
    and keep the session's own run numbers in the file (an import then reports old -> new). Same guarantees:
    an existing file is kept unless `overwrite`, the file appears whole or not at all."""
    omit = parse_without(without)
    out, sid = export_target(db, name, out_path, overwrite=overwrite)
    run_ids = [r[0] for r in db.execute("SELECT id FROM runs WHERE session_id = ? ORDER BY id", [sid])]
    try:
        with atomic_output(out, overwrite=overwrite) as tmp:
            export_session(db, name, tmp)
            _finish(tmp, [kind for k in omit for kind in OMITTABLE[k]], run_ids)
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"cannot finish the export file {out}: {exc}") from exc
    except OSError as exc:
        raise StorageError(f"cannot write {out}: {exc.strerror or exc}") from exc
    return out


def _finish(path: Path, omit_kinds: list[str], run_ids: list[int]) -> None:
    """Post-process our own fresh export file: drop matrices, restore run ids, compact."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("BEGIN IMMEDIATE")
        if omit_kinds:
            conn.execute(f"DELETE FROM matrices WHERE kind IN ({','.join('?' * len(omit_kinds))})", omit_kinds)
        file_ids = [r[0] for r in conn.execute("SELECT id FROM runs ORDER BY id")]
        if len(file_ids) <= len(run_ids):
            # The file's runs are the session's runs in id order; originals are >= their position, so moving the
            # highest first never collides.
            for file_id, original in reversed(list(zip(file_ids, run_ids))):
                if file_id != original:
                    conn.execute("UPDATE runs SET id = ? WHERE id = ?", [original, file_id])
        conn.execute("COMMIT")
        if omit_kinds:
            conn.execute("VACUUM")
        mode = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
        if str(mode).lower() != "delete":
            raise StorageError(f"could not finish the export file (journal mode {mode})")
    finally:
        conn.close()
    fsync_path(path)


# A Download button builds its file when clicked; the last one (when small) is kept while the session is unchanged.
_LAST: dict[tuple, bytes] = {}
_KEEP_AT_MOST = 100_000_000
_LAST_LOCK = threading.Lock()


def export_bytes(db_path: str | os.PathLike, name: str, *, without: Iterable[str] = ()) -> bytes:
    """The export file of session `name` as bytes, built now from `db_path` (own connection: callers may run in
    another thread). The previous result is reused only when the session's fingerprint is unchanged."""
    omit = parse_without(without)
    db = connect(db_path)
    try:
        key = (str(db_path), name, omit, session_fingerprint(db, name))
        with _LAST_LOCK:
            if key in _LAST:
                return _LAST[key]
        with tempfile.TemporaryDirectory() as tmp:
            data = export_session_with_options(db, name, Path(tmp) / "session.sqlite", without=omit).read_bytes()
    finally:
        db.close()
    with _LAST_LOCK:
        _LAST.clear()
        if len(data) <= _KEEP_AT_MOST:
            _LAST[key] = data
    return data


def imported_run_numbers(db: sqlite_utils.Database, file_path: str | os.PathLike, session_name: str) -> dict[int, int]:
    """{run number in the file: run number here} for a file just imported as `session_name`. Only ids are read
    from the file (opened read-only, immutable, with untrusted schema off); {} when they cannot be paired."""
    sid = require_session(db, session_name)
    here = [r[0] for r in db.execute("SELECT id FROM runs WHERE session_id = ? ORDER BY id", [sid])]
    uri = "file:" + urllib.parse.quote(str(Path(file_path).resolve())) + "?mode=ro&immutable=1"
    try:
        src = sqlite3.connect(uri, uri=True)
        try:
            src.execute("PRAGMA trusted_schema = OFF")
            there = [r[0] for r in src.execute("SELECT id FROM runs ORDER BY id")]
        finally:
            src.close()
    except sqlite3.DatabaseError:
        return {}
    if len(there) != len(here):
        return {}
    return {int(a): int(b) for a, b in zip(there, here)}


def describe_run_numbers(mapping: dict[int, int]) -> str:
    """"Run #2 is now #4, #5 is now #6." or "" when no number changed."""
    moved = [(a, b) for a, b in sorted(mapping.items()) if a != b]
    if not moved:
        return ""
    shown = ", ".join(f"#{a} → #{b}" for a, b in moved[:12]) + (" …" if len(moved) > 12 else "")
    return f"Runs renumbered (file → here): {shown}."
