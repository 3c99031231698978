"""Opening the database: WAL, foreign keys, a busy timeout, retries on lock."""
from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import time
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import sqlite_utils

from embedlab.errors import UserError

T = TypeVar("T")

BUSY_TIMEOUT_MS = 30_000


class StorageError(UserError):
    """A storage problem a user can act on (read-only file, full disk, foreign file)."""


def default_db_path() -> Path:
    """`EMBEDLAB_DB` if set, else `data/embedlab.sqlite` in the working directory."""
    return Path(os.environ.get("EMBEDLAB_DB") or "data/embedlab.sqlite")


def explain_sqlite_error(exc: BaseException, path: str | os.PathLike | None = None) -> str:
    """One line a user understands for an sqlite3 error."""
    msg = str(exc).lower()
    where = f" ({path})" if path else ""
    if "readonly" in msg or "read-only" in msg:
        return f"the database is read-only{where}: nothing was changed"
    if "disk is full" in msg or "database or disk is full" in msg:
        return f"the disk is full{where}: nothing was changed, free some space and retry"
    if "unable to open" in msg:
        return f"cannot open the database{where}: check the folder exists and is writable"
    if "not a database" in msg or "malformed" in msg:
        return f"the file is not a valid EmbedLab database{where}"
    if "locked" in msg or "busy" in msg:
        return f"the database is busy{where}: another process holds a write lock, retry"
    return f"database error{where}: {exc}"


def connect(path: str | os.PathLike | None = None, *, migrate: bool = True) -> sqlite_utils.Database:
    """Open (creating if needed) an EmbedLab database and bring its schema up to date."""
    path = Path(path) if path is not None else default_db_path()
    try:
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False,
                               isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        if str(path) != ":memory:":
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if mode != "wal":
                retry_on_busy(lambda: conn.execute("PRAGMA journal_mode = WAL"))
        conn.execute("PRAGMA synchronous = NORMAL")
        db = sqlite_utils.Database(conn)
        if migrate:
            from storage.schema import migrate as run_migrations

            run_migrations(db)
    except sqlite3.DatabaseError as exc:
        raise StorageError(explain_sqlite_error(exc, path)) from exc
    except OSError as exc:
        raise StorageError(f"cannot open the database ({path}): {exc.strerror or exc}") from exc
    return db


def retry_on_busy(fn: Callable[[], T], *, attempts: int = 8) -> T:
    """Call `fn`, retrying with jittered back-off while SQLite reports a lock."""
    for i in range(attempts):
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if ("locked" not in text and "busy" not in text) or i == attempts - 1:
                raise
            time.sleep(min(2.0, 0.05 * 2**i) * (0.5 + random.random()))
    raise AssertionError("unreachable")


@contextlib.contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite3.Connection]:
    """One write transaction (BEGIN IMMEDIATE), committed on success, rolled back on error.

    Nested use joins the outer transaction. A read-only file, a full disk or an I/O error becomes a
    `StorageError` with one clear line; what was stored before is untouched.
    """
    conn = db.conn
    if conn.in_transaction:
        yield conn
        return
    try:
        retry_on_busy(lambda: conn.execute("BEGIN IMMEDIATE"))
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    except sqlite3.OperationalError as exc:
        raise StorageError(explain_sqlite_error(exc, _db_file(conn))) from exc


def _db_file(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("PRAGMA database_list").fetchone()
    return row[2] if row and row[2] else None


def now() -> str:
    """UTC timestamp in ISO 8601, second precision."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
