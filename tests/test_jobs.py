"""Background jobs: progress in the jobs table, interruption detection, resumption, dedup, cancel."""
from __future__ import annotations

import json
import time

import pytest

import embedlab.tasks  # noqa: F401
from embedlab.corpus import Corpus
from embedlab.jobs import (JOB_KINDS, get_job, job_kind, list_jobs, mark_interrupted, resume_job, run_job,
                           submit_job, wait_for)
from storage import connect
from storage.corpora import save_corpus
from storage.db import transaction
from storage.matrices import find_matrix, stored_chunks
from storage.sessions import ensure_session


@job_kind("test-sleep")
def _sleep_job(db, params, ctx):
    for i in range(params["steps"]):
        if ctx.should_stop():
            from embedlab.errors import Cancelled

            raise Cancelled("stopped")
        ctx.progress((i + 1) / params["steps"], f"step {i + 1}")
        time.sleep(params.get("sleep", 0.01))
    return "ok"


@job_kind("test-fail")
def _fail_job(db, params, ctx):
    raise ValueError("boom")


def test_foreground_job_records_done_and_result(db):
    seen = []
    assert run_job(db, "test-sleep", {"steps": 3}, progress=lambda f, m: seen.append(f)) == "ok"
    job = list_jobs(db)[0]
    assert (job.status, job.progress, job.result_ref) == ("done", 1.0, "ok")
    assert seen[-1] == 1.0


def test_failed_job_keeps_its_message(db):
    with pytest.raises(ValueError):
        run_job(db, "test-fail", {})
    job = list_jobs(db)[0]
    assert job.status == "failed" and "boom" in job.message


def test_background_job_runs_and_identical_submission_is_reused(db_path):
    jid = submit_job(db_path, "test-sleep", {"steps": 20, "sleep": 0.05})
    assert submit_job(db_path, "test-sleep", {"steps": 20, "sleep": 0.05}) == jid
    db = connect(db_path)
    assert wait_for(db, jid, timeout=30).status == "done"


def test_cancel_stops_a_background_job(db_path):
    from embedlab.jobs import cancel_job

    jid = submit_job(db_path, "test-sleep", {"steps": 500, "sleep": 0.02})
    db = connect(db_path)
    time.sleep(0.3)
    cancel_job(db, jid)
    job = wait_for(db, jid, timeout=30)
    assert job.status == "cancelled" and job.progress < 1


def test_job_of_a_dead_process_is_marked_interrupted(db):
    with transaction(db) as conn:
        conn.execute("INSERT INTO jobs (kind, params_json, status, progress, owner, started_at) "
                     "VALUES ('embed', '{}', 'running', 0.4, ?, 'x')", [f"{__import__('socket').gethostname()}:999999"])
    assert mark_interrupted(db) == 1
    job = list_jobs(db)[0]
    assert job.status == "interrupted" and "resume" in job.message


def test_embedding_job_resumes_from_last_stored_chunk_after_kill(db_path, monkeypatch):
    """Simulate a kill: chunks 0-1 stored, the job row left 'running' by a dead pid; resume finishes the rest."""
    from tests.fakes import FakeEmbedder

    monkeypatch.setenv("EMBEDLAB_CHUNK_ROWS", "10")
    fake = FakeEmbedder()
    monkeypatch.setattr("embedlab.embedding.space.get_embedder", lambda model: fake)
    db = connect(db_path)
    sid = ensure_session(db, "s")
    texts = [f"text {i}" for i in range(45)]
    info = save_corpus(db, sid, Corpus(name="c", source="t", texts=texts, doc_ids=[str(i) for i in range(45)]))
    from embedlab.embedding.cache import compute_embedding
    from embedlab.errors import Cancelled

    calls = iter([False, False, True])
    with pytest.raises(Cancelled):
        compute_embedding(db, texts, fake, content_hash=info.content_hash, corpus_id=info.id,
                          should_stop=lambda: next(calls))
    with transaction(db) as conn:
        conn.execute("INSERT INTO jobs (session_id, kind, params_json, status, owner, started_at) VALUES "
                     "(?, 'embed', ?, 'running', 'ghost-host-is-me:1', 'x')",
                     [sid, json.dumps({"corpus_id": info.id, "model": "fake"}, sort_keys=True)])
    monkeypatch.setattr("embedlab.jobs.owner_alive", lambda owner: False)
    mark_interrupted(db)
    dead = list_jobs(db)[0]
    assert dead.status == "interrupted"
    assert fake.encoded == 20
    new_id = resume_job(db_path, dead.id)
    assert wait_for(db, new_id, timeout=30).status == "done"
    assert fake.encoded == 45  # only the 25 missing rows were embedded
    assert get_job(db, new_id).result_ref.startswith("matrix:")
    meta = find_matrix(db, db.execute("SELECT cache_key FROM matrices").fetchone()[0])
    assert meta.complete and stored_chunks(db, meta.id) == {0, 1, 2, 3, 4}


def test_registry_has_embed_and_project():
    assert {"embed", "project"} <= set(JOB_KINDS)


def test_live_local_job_without_recent_heartbeat_is_not_interrupted(db):
    """A same-host job whose process lives stays running even if a long stage sent no progress for a while."""
    import socket

    with transaction(db) as conn:
        conn.execute("INSERT INTO jobs (kind, params_json, status, owner, heartbeat_at, started_at) VALUES "
                     "('embed', '{}', 'running', ?, ?, 'x')", [f"{socket.gethostname()}:{__import__('os').getpid()}",
                                                               time.time() - 3600])
        conn.execute("INSERT INTO jobs (kind, params_json, status, owner, heartbeat_at, started_at) VALUES "
                     "('embed', '{}', 'running', 'other-machine:1', ?, 'x')", [time.time() - 3600])
    assert mark_interrupted(db) == 1
    assert [j.status for j in list_jobs(db)] == ["interrupted", "running"]
