"""Writing an output file (a report, a JSON result, a session export) safely.

* An output path may never be the database, its `-wal`/`-shm`/`-journal`, or one of the command's inputs: that is
  refused with one line before any work starts (`check_output_path`).
* The file is written to a temporary sibling and renamed into place (`atomic_output`), so a reader never sees half a
  file and an interrupted write leaves the old file as it was.
* A temporary sibling left by an earlier write that was killed is removed by the next write to the same path: its
  name carries the host and pid of the writer, and only a dead writer's file of this host is removed.
"""
from __future__ import annotations

import contextlib
import glob
import os
import socket
import uuid
from pathlib import Path
from typing import Iterable, Iterator

from storage.db import StorageError

SIDE_FILES = ("-wal", "-shm", "-journal")
TEMP_SUFFIX = ".tmp"


class OutputRefused(StorageError):
    """An output path that would overwrite the database or an input; nothing was written."""


def database_files(db_path: str | os.PathLike) -> list[Path]:
    """The database file and the side files SQLite keeps beside it."""
    path = Path(db_path)
    return [path, *(path.with_name(path.name + s) for s in SIDE_FILES)]


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file: the same resolved path, or the same inode (a hard link)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    with contextlib.suppress(OSError):
        return os.path.samefile(a, b)
    return False


def _files_under(path: Path) -> Iterable[Path]:
    if path.is_dir():
        yield from (p for p in path.rglob("*") if p.is_file())
    else:
        yield path


def check_output_path(out: str | os.PathLike, *, flag: str, database: str | os.PathLike | None = None,
                      inputs: Iterable[str | os.PathLike] = ()) -> None:
    """Refuse (`OutputRefused`, one line) an output path that is the database or one of its side files, or an
    existing file among `inputs` (a folder input protects every file below it)."""
    target = Path(out)
    if database is not None and str(database) != ":memory:":
        for protected in database_files(database):
            if same_file(target, protected):
                raise OutputRefused(f"{flag} {out}: that is the database {database}"
                                    + ("" if protected == Path(database) else f" (its {protected.name[-4:]} file)")
                                    + "; give another file name, nothing was written")
    for given in inputs:
        for protected in _files_under(Path(given)):
            if same_file(target, protected):
                raise OutputRefused(f"{flag} {out}: that is an input of this command ({protected}); give another "
                                    "file name, nothing was written")


def temp_sibling(out: Path) -> Path:
    """A temporary file beside `out`, named after this host and process."""
    host = socket.gethostname().replace(".", "_")
    return out.with_name(f".{out.name}.{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def remove_partial(tmp: Path) -> None:
    """Remove an unfinished output file and any SQLite side files beside it."""
    for p in (tmp, *(tmp.with_name(tmp.name + s) for s in SIDE_FILES)):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def remove_stale_temps(out: Path) -> list[Path]:
    """Remove the temporary siblings of `out` whose writer (a process of this host) is gone; return them."""
    host = socket.gethostname().replace(".", "_")
    removed = []
    for name in glob.glob(glob.escape(str(out.parent / f".{out.name}.")) + f"*{TEMP_SUFFIX}"):
        stem = name[len(str(out.parent / f".{out.name}.")):-len(TEMP_SUFFIX)]
        who, _, pid = stem.rpartition("-")[0].rpartition("-")
        if who != host or not pid.isdigit() or _pid_alive(int(pid)):
            continue
        remove_partial(Path(name))
        removed.append(Path(name))
    return removed


def fsync_path(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk; best effort."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def place_file(tmp: Path, out: Path, overwrite: bool) -> None:
    """Move the finished file into place atomically; without `overwrite`, never replace an existing file."""
    if overwrite:
        os.replace(tmp, out)
        return
    try:
        os.link(tmp, out)  # atomic and fails if `out` exists, even if it appeared meanwhile
    except FileExistsError:
        raise OutputRefused(f"{out} exists already: choose another file name or allow overwriting") from None
    except OSError:  # a file system without hard links
        if out.exists():
            raise OutputRefused(f"{out} exists already: choose another file name or allow overwriting") from None
        os.replace(tmp, out)
        return
    tmp.unlink()


@contextlib.contextmanager
def atomic_output(out: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `out` to write; on success it is flushed and renamed to `out`, on any error
    it is removed and `out` is left as it was. Stale temporaries of killed earlier writes are removed first."""
    out = Path(out)
    remove_stale_temps(out)
    tmp = temp_sibling(out)
    try:
        yield tmp
        fsync_path(tmp)
        place_file(tmp, out, overwrite)
        fsync_path(out.parent)
    finally:
        remove_partial(tmp)
