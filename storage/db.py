"""Opening the database: WAL, foreign keys, a bounded wait on locks, and a refusal of files that are not ours.

Locks: a statement waits for another connection's write lock (SQLite's busy handler), and a transaction start is
retried, for at most `LOCK_WAIT_S` seconds in all (5 s; `EMBEDLAB_LOCK_WAIT_S` or `connect(lock_wait_s=...)` change
it, background jobs wait `JOB_LOCK_WAIT_S`). Then a `StorageError` says the database is busy, and who holds the lock
when that can be told (the process from /proc/locks, and its EmbedLab job from the jobs table).

Foreign files: before WAL is switched on or a migration runs, a non-empty file must be an EmbedLab database (or an
empty SQLite one); another program's SQLite file, or any other file, is refused with one line and left unchanged.
"""
from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import time
import urllib.parse
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import sqlite_utils

from embedlab.errors import UserError

T = TypeVar("T")

LOCK_WAIT_S = 5.0             # the most a command waits for another process's write lock, in all
JOB_LOCK_WAIT_S = 120.0        # background jobs are unattended: they wait longer before failing
MAX_LOCK_WAIT_S = 3600.0
BUSY_TIMEOUT_MS = int(LOCK_WAIT_S * 1000)   # kept for callers that read it


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


def default_lock_wait() -> float:
    """`EMBEDLAB_LOCK_WAIT_S` if it is a number in 0..3600, else `LOCK_WAIT_S`."""
    try:
        value = float(os.environ.get("EMBEDLAB_LOCK_WAIT_S", ""))
    except ValueError:
        return LOCK_WAIT_S
    return value if 0 <= value <= MAX_LOCK_WAIT_S else LOCK_WAIT_S


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
            from storage.schema import migrate as run_migrations

            run_migrations(db)
    except StorageError:
        if conn is not None:
            conn.close()
        raise
    except sqlite3.DatabaseError as exc:
        if conn is not None:
            conn.close()
        if _is_busy(exc):
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
    from storage.schema import SCHEMA_VERSION

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


def _is_busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def retry_on_busy(fn: Callable[[], T], *, wait_s: float | None = None, attempts: int | None = None) -> T:
    """Call `fn`, retrying with jittered back-off while SQLite reports a lock, for at most `wait_s` seconds in all
    (default `default_lock_wait()`); then the lock error is raised."""
    wait = default_lock_wait() if wait_s is None else wait_s
    deadline = time.monotonic() + wait
    i = 0
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            i += 1
            left = deadline - time.monotonic()
            if not _is_busy(exc) or left <= 0 or (attempts is not None and i >= attempts):
                raise
            time.sleep(min(left, min(1.0, 0.05 * 2**min(i, 10)) * (0.5 + random.random())))


def lock_holders(path: str | os.PathLike) -> list[int]:
    """Pids of the other processes that hold a write lock on the database (its file or its -shm), read from
    /proc/locks (Linux); [] when that cannot be told."""
    targets = set()
    for p in (Path(path), Path(f"{path}-shm"), Path(f"{path}-wal")):
        try:
            st = os.stat(p)
        except OSError:
            continue
        targets.add((os.major(st.st_dev), os.minor(st.st_dev), st.st_ino))
    pids: list[int] = []
    try:
        with open("/proc/locks") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return pids
    for line in lines:
        parts = line.split()
        if "->" in parts:
            continue                         # a waiter, not a holder
        try:
            kind, pid, dev = parts[3], int(parts[4]), parts[5]
            major, minor, ino = dev.split(":")
            key = (int(major, 16), int(minor, 16), int(ino))
        except (IndexError, ValueError):
            continue
        if kind == "WRITE" and key in targets and pid > 0 and pid != os.getpid() and pid not in pids:
            pids.append(pid)
    return pids


def _describe_pid(pid: int, conn: sqlite3.Connection | None) -> str:
    what = f"pid {pid}"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        if cmd:
            what += f": {cmd[:80]}{'…' if len(cmd) > 80 else ''}"
    except OSError:
        pass
    if conn is not None:
        with contextlib.suppress(sqlite3.Error):
            row = conn.execute("SELECT id, kind FROM jobs WHERE status IN ('queued', 'running') AND owner LIKE ? "
                               "ORDER BY id DESC LIMIT 1", [f"%:{pid}"]).fetchone()
            if row:
                what += f", running EmbedLab job {row[0]} ({row[1]})"
    return what


def busy_message(path: str | os.PathLike | None, waited: float, conn: sqlite3.Connection | None = None) -> str:
    """The one line for a lock that did not come free: who holds it when that can be told."""
    holders = lock_holders(path) if path and str(path) != ":memory:" else []
    who = "; ".join(_describe_pid(pid, conn) for pid in holders[:3]) if holders else "another process"
    return (f"the database is busy ({path}): {who} holds a write lock; gave up after {waited:g} s, "
            "nothing was changed: retry when it is done")


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
    wait = getattr(db, "_embedlab_lock_wait", None)
    try:
        retry_on_busy(lambda: conn.execute("BEGIN IMMEDIATE"), wait_s=wait)
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    except sqlite3.OperationalError as exc:
        if _is_busy(exc):
            raise StorageError(busy_message(_db_file(conn), default_lock_wait() if wait is None else wait,
                                            conn)) from exc
        raise StorageError(explain_sqlite_error(exc, _db_file(conn))) from exc


def _db_file(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("PRAGMA database_list").fetchone()
    return row[2] if row and row[2] else None


def now() -> str:
    """UTC timestamp in ISO 8601, second precision."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
