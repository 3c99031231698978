"""One computation per cache key across processes: the first asker takes a lease on the key and computes; the others
wait for it and then read the stored result instead of computing it again.

A lease names its owner (`host:pid#thread`: two threads of one server asking for the same key share one computation
too). It is taken over when its owner is gone: a process of this host that no
longer runs, or a process of another host whose heartbeat is older than `REMOTE_STALE_S`. The owner renews its
heartbeat while it works (`Lease.renew`, rate-limited) and deletes the lease when it is done or fails.
"""
from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import sqlite_utils

from storage.db import transaction

REMOTE_STALE_S = 600.0      # another machine's computation counts as gone after this long without a heartbeat
RENEW_EVERY_S = 5.0
POLL_S = 0.5


def owner_id() -> str:
    """This process, as a lease or a job names it: `host:pid`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str | None, heartbeat_at: float | None = None, *, remote_stale_s: float | None = None
                ) -> bool:
    """Whether the process named `host:pid` still runs: checked directly on this host; on another host, trusted
    while its heartbeat is fresher than `remote_stale_s` (always, when that is None)."""
    if not owner or ":" not in owner:
        return False
    host, pid = owner.rsplit(":", 1)
    if host != socket.gethostname():
        if remote_stale_s is None:
            return True
        return heartbeat_at is not None and time.time() - heartbeat_at <= remote_stale_s
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Lease:
    """A held lease; `renew` keeps it fresh while the owner works."""
    db: sqlite_utils.Database
    key: str
    owner: str
    _renewed: float = 0.0

    def renew(self) -> None:
        now = time.monotonic()
        if now - self._renewed < RENEW_EVERY_S:
            return
        self._renewed = now
        with transaction(self.db) as conn:
            conn.execute("UPDATE leases SET heartbeat_at = ? WHERE key = ? AND owner = ?",
                         [time.time(), self.key, self.owner])


def holder(db: sqlite_utils.Database, key: str) -> str | None:
    """The live owner of the lease on `key`, or None."""
    row = db.execute("SELECT owner, heartbeat_at FROM leases WHERE key = ?", [key]).fetchone()
    if row is None or not _lease_alive(row[0], row[1]):
        return None
    return row[0].split("#", 1)[0]


def _lease_owner() -> str:
    return f"{owner_id()}#{threading.get_ident()}"


def _lease_alive(owner: str, heartbeat_at: float | None) -> bool:
    return owner_alive(owner.split("#", 1)[0], heartbeat_at, remote_stale_s=REMOTE_STALE_S)


def try_acquire(db: sqlite_utils.Database, key: str) -> Lease | None:
    """Take the lease on `key` when nobody alive holds it (one transaction); None when another process or thread
    does."""
    me = _lease_owner()
    with transaction(db) as conn:
        row = conn.execute("SELECT owner, heartbeat_at FROM leases WHERE key = ?", [key]).fetchone()
        if row is not None and row[0] != me and _lease_alive(row[0], row[1]):
            return None
        conn.execute("INSERT INTO leases (key, owner, heartbeat_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE "
                     "SET owner = excluded.owner, heartbeat_at = excluded.heartbeat_at", [key, me, time.time()])
    return Lease(db, key, me, time.monotonic())


def release(lease: Lease) -> None:
    with contextlib.suppress(Exception):     # a failed release is taken over once this process is gone
        with transaction(lease.db) as conn:
            conn.execute("DELETE FROM leases WHERE key = ? AND owner = ?", [lease.key, lease.owner])


@contextlib.contextmanager
def computation(db: sqlite_utils.Database, key: str, *, done: Callable[[], bool],
                waiting: Callable[[str], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> Iterator[Lease | None]:
    """Yield a held `Lease` when this process should compute `key`, or None when `done()` became true meanwhile
    (another process computed it: read the stored result). While another live process holds the lease, wait,
    calling `waiting(owner)` about every `POLL_S` seconds; `should_stop()` true ends the wait with None too."""
    while True:
        if done():
            yield None
            return
        lease = try_acquire(db, key)
        if lease is not None:
            break
        if should_stop is not None and should_stop():
            yield None
            return
        owner = holder(db, key)
        if waiting is not None and owner is not None:
            waiting(owner)
        time.sleep(POLL_S)
    try:
        yield lease
    finally:
        release(lease)
