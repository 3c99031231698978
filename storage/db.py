"""Opening the database: WAL, foreign keys, a bounded wait on locks, and a refusal of files that are not ours.

Locks: see `storage.locks` (a bounded wait, then one line saying who holds the lock); its names are re-exported
here, where most callers import them.

Foreign files: before WAL is switched on or a migration runs, a non-empty file must be an EmbedLab database (or an
empty SQLite one); another program's SQLite file, or any other file, is refused with one line and left unchanged.
"""
from __future__ import annotations

import os
import sqlite3
import time
import urllib.parse
from pathlib import Path

import sqlite_utils

from storage.errors import StorageError
from storage.locks import (BUSY_TIMEOUT_MS, JOB_LOCK_WAIT_S, LOCK_WAIT_S, MAX_LOCK_WAIT_S, busy_message,
                           default_lock_wait, explain_sqlite_error, is_busy, lock_holders, retry_on_busy, transaction)
from storage.schema import SCHEMA_VERSION, migrate as run_migrations

__all__ = ["BUSY_TIMEOUT_MS", "JOB_LOCK_WAIT_S", "LOCK_WAIT_S", "MAX_LOCK_WAIT_S", "StorageError", "busy_message",
           "connect", "default_db_path", "default_lock_wait", "explain_sqlite_error", "is_read_only", "lock_holders",
           "now", "retry_on_busy", "transaction"]


def default_db_path() -> Path:
    """`EMBEDLAB_DB` if set, else `data/embedlab.sqlite` in the working directory."""
    return Path(os.environ.get("EMBEDLAB_DB") or "data/embedlab.sqlite")


def connect(path: str | os.PathLike | None = None, *, migrate: bool = True,
            lock_wait_s: float | None = None) -> sqlite_utils.Database:
    """Open (creating if needed) an EmbedLab database and bring its schema up to date.

    A file that holds something else (another program's SQLite tables, or not SQLite at all) is refused with a
    StorageError before anything is written to it: no WAL switch, no migration."""
    path = Path(path) if path is not None else default_db_path()
    wait = default_lock_wait() if lock_wait_s is None else max(0.0, min(float(lock_wait_s), MAX_LOCK_WAIT_S))
    memory = str(path) == ":memory:"
    conn = None
    try:
        if not memory:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists() and not path.is_file():
                raise StorageError(f"{path} is not a database file (a folder or a special file)")
        read_only = not memory and path.exists() and not _writable(path)
        target = _read_only_uri(path) if read_only else str(path)
        conn = sqlite3.connect(target, timeout=wait, check_same_thread=False, isolation_level=None, uri=read_only)
        conn.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        if not memory:
            _check_ours(conn, path)          # read-only checks, before anything could be written
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if mode != "wal" and not read_only:
                retry_on_busy(lambda: conn.execute("PRAGMA journal_mode = WAL"), wait_s=wait)
        conn.execute("PRAGMA synchronous = NORMAL")
        db = sqlite_utils.Database(conn)
        db._embedlab_lock_wait = wait  # type: ignore[attr-defined]  # read by `transaction`
        db._embedlab_read_only = read_only  # type: ignore[attr-defined]
        if migrate and not read_only:
            run_migrations(db)
    except StorageError:
        if conn is not None:
            conn.close()
        raise
    except sqlite3.DatabaseError as exc:
        if conn is not None:
            conn.close()
        if is_busy(exc):
            raise StorageError(busy_message(path, wait)) from exc
        raise StorageError(explain_sqlite_error(exc, path)) from exc
    except OSError as exc:
        raise StorageError(f"cannot open the database ({path}): {exc.strerror or exc}") from exc
    return db


def _writable(path: Path) -> bool:
    """Whether this process may write the database: the file, and its folder (for the -wal and -shm) unless both
    side files exist and are writable. (`os.access`: root passes except on a read-only file system.)"""
    if not os.access(path, os.W_OK):
        return False
    sides = [Path(f"{path}{s}") for s in ("-wal", "-shm")]
    if all(p.exists() for p in sides):
        return all(os.access(p, os.W_OK) for p in sides)
    return os.access(path.parent, os.W_OK | os.X_OK)


def _read_only_uri(path: Path) -> str:
    """A read-only open of a database this process cannot write: read-only commands (listing, reports, exports)
    still work and every write fails with "the database is read-only". Where no -shm exists and none can be created,
    the file is opened immutable (SQLite could not read a WAL database otherwise)."""
    uri = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro"
    if not Path(f"{path}-shm").exists() and not os.access(path.parent, os.W_OK | os.X_OK):
        uri += "&immutable=1"
    return uri


def is_read_only(db: sqlite_utils.Database) -> bool:
    """Whether `connect` opened the database read-only (the file or its folder is not writable)."""
    return bool(getattr(db, "_embedlab_read_only", False))


def _check_ours(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a file that is not SQLite, or an SQLite file that holds another program's tables (only reads; nothing
    is written).

    The header is read through SQLite, never with `open()`: closing any descriptor of the file would drop the POSIX
    locks of every connection this process already holds on it, and another process could then delete the live WAL.
    """
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc).lower():
            raise StorageError(f"{path} is not a valid EmbedLab database (not an SQLite file): it was left "
                               "unchanged") from exc
        raise
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")}
    if version == 0 and not names:
        return                               # a new, empty database: ours to set up
    if version > SCHEMA_VERSION:
        return                               # a newer EmbedLab (or not ours): `migrate` refuses it, writing nothing
    missing = [t for t in ("sessions", "corpora", "documents", "matrices", "jobs") if t not in names]  # since v1
    if version == 0 or missing:
        what = f"{len(names)} tables and other objects of another program" if names else "another program's data"
        raise StorageError(f"{path} is not a valid EmbedLab database (it holds {what}): it was left unchanged; "
                           "give another --db")


def now() -> str:
    """UTC timestamp in ISO 8601, second precision."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
