"""Waiting for SQLite's write lock, and one write transaction.

A statement waits for another connection's write lock (SQLite's busy handler), and a transaction start is retried,
for at most `LOCK_WAIT_S` seconds in all (5 s; `EMBEDLAB_LOCK_WAIT_S` or `connect(lock_wait_s=...)` change it,
background jobs wait `JOB_LOCK_WAIT_S`). Then a `StorageError` says the database is busy, and who holds the lock
when that can be told (the process from /proc/locks, and its EmbedLab job from the jobs table).
"""
from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import time
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import sqlite_utils

from storage.errors import StorageError

T = TypeVar("T")

LOCK_WAIT_S = 5.0             # the most a command waits for another process's write lock, in all
JOB_LOCK_WAIT_S = 120.0        # background jobs are unattended: they wait longer before failing
MAX_LOCK_WAIT_S = 3600.0
BUSY_TIMEOUT_MS = int(LOCK_WAIT_S * 1000)   # kept for callers that read it


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


def is_busy(exc: BaseException) -> bool:
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
            if not is_busy(exc) or left <= 0 or (attempts is not None and i >= attempts):
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
        if is_busy(exc):
            raise StorageError(busy_message(_db_file(conn), default_lock_wait() if wait is None else wait,
                                            conn)) from exc
        raise StorageError(explain_sqlite_error(exc, _db_file(conn))) from exc


def _db_file(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("PRAGMA database_list").fetchone()
    return row[2] if row and row[2] else None
