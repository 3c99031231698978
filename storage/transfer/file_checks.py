"""The first checks of a file to import, before a single row is read: its kind, size and header, then (opened
read-only and immutable, with untrusted-schema guards) SQLite's integrity check, the schema version, the tables,
their columns and their declared types, and the type of every value of every copied column."""
from __future__ import annotations

import sqlite3
import stat
import urllib.parse
from functools import lru_cache
from pathlib import Path

from storage.db import connect
from storage.schema import EXPECTED_COLUMNS
from storage.transfer.file_format import (COPIED, IMPORTABLE_VERSIONS, MAX_VALUE_BYTES, SQLITE_HEADER, VALUE_TYPES,
                                          ImportRefused, one_line)


def check_file(path: Path, max_bytes: int) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ImportRefused(f"no such file: {path}") from None
    except OSError as exc:
        raise ImportRefused(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise ImportRefused(f"not a regular file: {path}")
    size = st.st_size
    if size == 0:
        raise ImportRefused("not an SQLite database (empty file)")
    if size > max_bytes:
        have, limit = _human(size), _human(max_bytes)
        if have == limit:
            have, limit = f"{size:,} bytes", f"{max_bytes:,} bytes"
        raise ImportRefused(f"file is {have}, over the {limit} import limit")
    try:
        with open(path, "rb") as fh:
            header = fh.read(100)
    except OSError as exc:
        raise ImportRefused(f"cannot read {path}: {exc.strerror or exc}") from exc
    if header[:16] != SQLITE_HEADER:
        raise ImportRefused("not an SQLite database (bad header)")
    if len(header) < 100:
        raise ImportRefused("not an SQLite database (truncated header)")
    wal = path.with_name(path.name + "-wal")
    if header[18:20] == b"\x02\x02" and wal.exists() and wal.stat().st_size > 0:
        # Opened immutable, the file alone would be read without its recent changes: say so instead.
        raise ImportRefused(f"the file has unsaved changes in {wal.name}: close the program using it first, "
                            "or export the session again")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    n_pages = int.from_bytes(header[28:32], "big")
    change_counter, valid_for = header[24:28], header[92:96]
    if (change_counter == valid_for and n_pages and 512 <= page_size <= 65536
            and page_size & (page_size - 1) == 0 and size < page_size * n_pages):
        raise ImportRefused(f"the file is truncated ({size:,} of {page_size * n_pages:,} bytes)")


def _human(n: int) -> str:
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"


def open_foreign(path: Path) -> sqlite3.Connection:
    """The file read-only and immutable (no locks, no -wal/-shm, never written), with untrusted-schema guards."""
    uri = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro&immutable=1"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise ImportRefused(f"cannot open the file: {one_line(exc)}") from exc
    try:
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        # Defences for a database file from an untrusted source (https://www.sqlite.org/security.html):
        # no functions with side effects or untrusted virtual tables from its schema, extra page checks,
        # and this connection cannot write anything.
        conn.execute("PRAGMA trusted_schema = OFF")
        conn.execute("PRAGMA cell_size_check = ON")
        conn.execute("PRAGMA mmap_size = 0")
        conn.execute("PRAGMA query_only = ON")
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        if "malformed" in str(exc).lower() or "corrupt" in str(exc).lower():
            raise ImportRefused(f"integrity check failed: {one_line(exc)}") from exc
        raise ImportRefused(f"not a valid SQLite database ({one_line(exc)})") from exc
    return conn


@lru_cache(maxsize=1)
def _reference_columns() -> dict[str, list[tuple[str, str]]]:
    """Our schema's (column, declared type) per table, as the migrations create it."""
    ref = connect(":memory:")
    try:
        return {t: [(r[1], (r[2] or "").upper()) for r in ref.execute(f"PRAGMA table_info({_q(t)})")]
                for t in EXPECTED_COLUMNS}
    finally:
        ref.close()


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def check_database(src: sqlite3.Connection) -> None:
    try:
        problems = [r[0] for r in src.execute("PRAGMA integrity_check(20)").fetchall()]
    except sqlite3.DatabaseError as exc:
        raise ImportRefused(f"integrity check failed: {one_line(exc)}") from exc
    if problems != ["ok"]:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise ImportRefused(f"integrity check failed: {one_line(problems[0] if problems else 'no answer')}{more}")
    version = src.execute("PRAGMA user_version").fetchone()[0]
    if version not in IMPORTABLE_VERSIONS:
        expected = (str(IMPORTABLE_VERSIONS[0]) if len(IMPORTABLE_VERSIONS) == 1
                    else f"{IMPORTABLE_VERSIONS[0]} to {IMPORTABLE_VERSIONS[-1]}")
        raise ImportRefused(f"schema version {version} is not supported (expected {expected})")
    objects = {r[0]: (r[1], r[2], r[3] or "") for r in
               src.execute("SELECT name, type, rootpage, sql FROM sqlite_master")}
    for table in EXPECTED_COLUMNS:
        if table not in objects:
            raise ImportRefused(f"the file has no table {table!r}")
        kind, rootpage, sql = objects[table]
        if kind != "table":
            raise ImportRefused(f"{table!r} in the file is a {kind}, not a table")
        if not rootpage or sql.lstrip().upper().startswith("CREATE VIRTUAL"):
            raise ImportRefused(f"{table!r} in the file is a virtual table, not a table")
        have = {r[1]: ((r[2] or "").upper(), r[6]) for r in src.execute(f"PRAGMA table_xinfo({_q(table)})")}
        copied = set(COPIED.get(table, ()))
        for column, ref_type in _reference_columns()[table]:
            if column not in EXPECTED_COLUMNS[table] and column not in copied:
                continue
            if column not in have:
                raise ImportRefused(f"table {table!r} lacks column {column!r}")
            declared, hidden = have[column]
            if hidden:
                raise ImportRefused(f"table {table!r} column {column!r} is a generated column")
            if column in copied and declared != ref_type:
                raise ImportRefused(f"table {table!r} column {column!r} has type {declared or 'none'!r}, "
                                    f"expected {ref_type!r}")
    for table, types in VALUE_TYPES.items():
        exprs = ", ".join(f"SUM(typeof({_q(c)}) NOT IN ({', '.join(repr(t) for t in ok)}))"
                          for c, ok in types.items())
        counts = src.execute(f"SELECT {exprs} FROM {_q(table)}").fetchone()
        for (column, ok), bad in zip(types.items(), counts):
            if bad:
                found = src.execute(f"SELECT typeof({_q(column)}) FROM {_q(table)} WHERE typeof({_q(column)}) "
                                    f"NOT IN ({', '.join(repr(t) for t in ok)}) LIMIT 1").fetchone()[0]
                raise ImportRefused(f"{table}.{column} holds a {found} value (expected {' or '.join(ok)})")
