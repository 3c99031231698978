"""Background jobs whose state lives in the `jobs` table, so they survive Streamlit reruns and page reloads.

A job runs in a daemon thread of the process that started it (the Streamlit server, or the CLI in the
foreground). Its row records the owner (host and pid) and a heartbeat; a job whose owner died is marked
`interrupted` and can be resumed: the work functions store results chunk by chunk and pick up from there.
"""
from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import sqlite_utils

from embedlab.errors import Cancelled, UserError
from storage.db import JOB_LOCK_WAIT_S, StorageError, connect, now, transaction
from storage.leases import owner_alive, owner_id

HEARTBEAT_S = 2.0
STALE_AFTER_S = 30.0
ACTIVE = ("queued", "running")

JobFn = Callable[[sqlite_utils.Database, dict, "JobContext"], Any]
JOB_KINDS: dict[str, JobFn] = {}
# Kinds whose module is imported on first use, so that app start-up does not pay for ranx or scikit-learn.
LAZY_KINDS = {"embed": "embedlab.tasks", "tokens": "embedlab.tasks", "project": "embedlab.tasks",
              "retrieval": "embedlab.retrieval.job", "ood": "embedlab.ood.job"}


def job_function(kind: str) -> JobFn:
    """The registered function of a job kind, importing its module when needed."""
    if kind not in JOB_KINDS and kind in LAZY_KINDS:
        import importlib

        importlib.import_module(LAZY_KINDS[kind])
    if kind not in JOB_KINDS:
        raise KeyError(f"unknown job kind {kind!r}")
    return JOB_KINDS[kind]


def job_kind(name: str) -> Callable[[JobFn], JobFn]:
    """Register a function `(db, params, ctx) -> result_ref` as a kind of job."""
    def register(fn: JobFn) -> JobFn:
        JOB_KINDS[name] = fn
        return fn
    return register


@dataclass
class Job:
    id: int
    session_id: int | None
    kind: str
    params: dict
    status: str
    progress: float
    message: str
    started_at: str | None
    finished_at: str | None
    result_ref: str | None
    owner: str | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


def _remote(owner: str | None) -> bool:
    """Owned by a process on another machine: only its heartbeat can tell whether it still runs."""
    return bool(owner) and owner.rsplit(":", 1)[0] != socket.gethostname()


class JobContext:
    """Handed to a running job: report progress, ask whether to stop."""

    def __init__(self, db: sqlite_utils.Database, job_id: int,
                 echo: Callable[[float, str], None] | None = None) -> None:
        self.db, self.job_id, self.echo = db, job_id, echo
        self._last = 0.0

    def progress(self, fraction: float, message: str = "") -> None:
        if self.echo:
            self.echo(fraction, message)
        t = time.monotonic()
        if t - self._last < 0.5 and fraction < 1.0:
            return
        self._last = t
        try:
            with transaction(self.db) as conn:
                conn.execute("UPDATE jobs SET progress = ?, message = ?, heartbeat_at = ? WHERE id = ? "
                             "AND status = 'running'", [max(0.0, min(1.0, float(fraction))), message[:500],
                                                        time.time(), self.job_id])
        except StorageError as exc:
            if "busy" not in str(exc):
                raise
            # another process holds the write lock: progress is only a display, the next report will land

    def should_stop(self) -> bool:
        row = self.db.execute("SELECT status FROM jobs WHERE id = ?", [self.job_id]).fetchone()
        return row is None or row[0] == "cancelled"


def _row_to_job(r: tuple) -> Job:
    return Job(id=r[0], session_id=r[1], kind=r[2], params=json.loads(r[3] or "{}"), status=r[4], progress=r[5],
               message=r[6], started_at=r[7], finished_at=r[8], result_ref=r[9], owner=r[10])


_JOB_COLS = "id, session_id, kind, params_json, status, progress, message, started_at, finished_at, result_ref, owner"


def get_job(db: sqlite_utils.Database, job_id: int) -> Job:
    r = db.execute(f"SELECT {_JOB_COLS} FROM jobs WHERE id = ?", [job_id]).fetchone()
    if r is None:
        raise StorageError(f"no job {job_id}")
    return _row_to_job(r)


def list_jobs(db: sqlite_utils.Database, *, session_id: int | None = None, kind: str | None = None,
              limit: int = 50) -> list[Job]:
    mark_interrupted(db)
    sql, args = f"SELECT {_JOB_COLS} FROM jobs WHERE 1=1", []
    if session_id is not None:
        sql += " AND session_id = ?"
        args.append(session_id)
    if kind:
        sql += " AND kind = ?"
        args.append(kind)
    return [_row_to_job(r) for r in db.execute(sql + " ORDER BY id DESC LIMIT ?", [*args, limit])]


def find_active_job(db: sqlite_utils.Database, kind: str, params: dict) -> Job | None:
    """A queued or running job of this kind with these exact parameters, if its owner is alive."""
    mark_interrupted(db)
    return _active_job(db, kind, params)


def _active_job(db: sqlite_utils.Database, kind: str, params: dict) -> Job | None:
    r = db.execute(f"SELECT {_JOB_COLS} FROM jobs WHERE kind = ? AND params_json = ? AND status IN "
                   "('queued','running') ORDER BY id DESC LIMIT 1", [kind, json.dumps(params, sort_keys=True)]
                   ).fetchone()
    return _row_to_job(r) if r else None


def mark_interrupted(db: sqlite_utils.Database) -> int:
    """Mark running jobs whose process is gone (or silent too long) as interrupted; return how many."""
    rows = db.execute("SELECT id, owner, heartbeat_at FROM jobs WHERE status IN ('queued','running')").fetchall()
    dead = [jid for jid, owner, beat in rows
            if not owner_alive(owner) or (_remote(owner) and (beat is None or time.time() - beat > STALE_AFTER_S))]
    if dead:
        with transaction(db) as conn:
            conn.executemany("UPDATE jobs SET status = 'interrupted', message = 'the process running it stopped; "
                             "resume to continue from the last stored chunk', finished_at = ? "
                             "WHERE id = ? AND status IN ('queued','running')", [(now(), j) for j in dead])
    return len(dead)


def _create(db: sqlite_utils.Database, kind: str, params: dict, session_id: int | None) -> int:
    with transaction(db) as conn:
        return conn.execute("INSERT INTO jobs (session_id, kind, params_json, status, progress, message, started_at, "
                            "owner, heartbeat_at) VALUES (?,?,?,'running',0,'starting',?,?,?)",
                            [session_id, kind, json.dumps(params, sort_keys=True), now(), owner_id(),
                             time.time()]).lastrowid


def _job_gone(db: sqlite_utils.Database, job_id: int) -> bool:
    """Whether the job's row went away (deleted with its session) while it ran."""
    try:
        return db.execute("SELECT 1 FROM jobs WHERE id = ?", [job_id]).fetchone() is None
    except sqlite3.Error:
        return False


def _execute(db: sqlite_utils.Database, job_id: int, kind: str, params: dict,
             echo: Callable[[float, str], None] | None = None, *, log_traceback: bool = True,
             keep_refused: bool = True) -> Any:
    """Run a job and record how it ended. A failure the user caused (a UserError) is recorded and re-raised as
    it is; a job whose session was deleted while it ran ends as `Cancelled` with a clear line, whatever the
    storage error that stopped it (a foreign-key failure on writing its result, typically). Other errors are
    bugs: recorded, re-raised, and their traceback logged only for background jobs (`log_traceback`); the CLI
    reports them in one line itself. With `keep_refused` False (the CLI's foreground jobs), a job refused for bad
    input leaves no row behind: the command exits 2 and, as for any bad input, writes nothing."""
    ctx = JobContext(db, job_id, echo)
    fn = job_function(kind)
    try:
        result = fn(db, params, ctx)
    except BaseException as exc:
        if isinstance(exc, Exception) and _job_gone(db, job_id):
            raise Cancelled(f"the {kind} job stopped: its session was deleted while it ran "
                            "(what it had stored went with it)") from exc
        cancelled = isinstance(exc, Cancelled)
        message = str(exc) if isinstance(exc, UserError) else \
            f"{type(exc).__name__}: {exc}"
        try:
            with transaction(db) as conn:
                if not keep_refused and isinstance(exc, UserError) and not cancelled:
                    conn.execute("DELETE FROM jobs WHERE id = ?", [job_id])
                else:
                    conn.execute("UPDATE jobs SET status = ?, message = ?, finished_at = ? WHERE id = ?",
                                 ["cancelled" if cancelled else "failed", message[:2000], now(), job_id])
        except (StorageError, sqlite3.Error):
            pass  # the job's own error matters more; an unrecorded end shows as `interrupted` later
        if log_traceback and not isinstance(exc, (UserError, KeyboardInterrupt)):
            traceback.print_exc()
        raise
    with transaction(db) as conn:
        conn.execute("UPDATE jobs SET status = 'done', progress = 1, message = 'done', finished_at = ?, "
                     "result_ref = ? WHERE id = ? AND status = 'running'",
                     [now(), None if result is None else str(result), job_id])
    return result


def run_job(db: sqlite_utils.Database, kind: str, params: dict, *, session_id: int | None = None,
            progress: Callable[[float, str], None] | None = None) -> Any:
    """Run a job in the foreground (the CLI), recorded in `jobs` like a background one."""
    job_function(kind)
    return _execute(db, _create(db, kind, params, session_id), kind, params, echo=progress, log_traceback=False,
                    keep_refused=False)


def claim_job(db: sqlite_utils.Database, kind: str, params: dict, session_id: int | None) -> tuple[int, bool]:
    """(job id, whether it is new): a live identical job, or a new one, decided in one write transaction so that
    two clicks (or two processes) at the same moment get the same job."""
    mark_interrupted(db)
    with transaction(db):
        existing = _active_job(db, kind, params)
        if existing is not None:
            return existing.id, False
        return _create(db, kind, params, session_id), True


def submit_job(db_path: str | Path, kind: str, params: dict, *, session_id: int | None = None) -> int:
    """Start a job in a background thread of this process; a live identical job is reused, not duplicated."""
    job_function(kind)
    db = connect(db_path)
    try:
        job_id, new = claim_job(db, kind, params, session_id)
    finally:
        db.close()
    if not new:
        return job_id

    def target() -> None:
        own = connect(db_path, lock_wait_s=JOB_LOCK_WAIT_S)  # unattended: it may wait longer for a lock
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(HEARTBEAT_S):
                try:
                    with transaction(own) as conn:
                        conn.execute("UPDATE jobs SET heartbeat_at = ? WHERE id = ?", [time.time(), job_id])
                except Exception:  # noqa: BLE001 - a missed heartbeat is harmless
                    pass

        threading.Thread(target=beat, daemon=True).start()
        try:
            _execute(own, job_id, kind, params)
        except BaseException:  # noqa: BLE001 - recorded in the jobs table
            pass
        finally:
            stop.set()

    threading.Thread(target=target, name=f"embedlab-job-{job_id}", daemon=True).start()
    return job_id


def cancel_job(db: sqlite_utils.Database, job_id: int) -> None:
    with transaction(db) as conn:
        conn.execute("UPDATE jobs SET status = 'cancelled', message = 'cancelled by the user', finished_at = ? "
                     "WHERE id = ? AND status IN ('queued','running')", [now(), job_id])


def resume_job(db_path: str | Path, job_id: int) -> int:
    """Start an interrupted, failed or cancelled job again with its parameters (work resumes from storage)."""
    db = connect(db_path)
    try:
        job = get_job(db, job_id)
    finally:
        db.close()
    return submit_job(db_path, job.kind, job.params, session_id=job.session_id)


def wait_for(db: sqlite_utils.Database, job_id: int, timeout: float = 600.0) -> Job:
    """Block until the job leaves the active states (tests and scripts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = get_job(db, job_id)
        if not job.active:
            return job
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} still running after {timeout:.0f} s")
