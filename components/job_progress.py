"""Live progress of background jobs, polled from the `jobs` table (survives reruns and reloads)."""
from __future__ import annotations

import streamlit as st

from components.state import db_path, get_db
from embedlab.jobs import Job, cancel_job, list_jobs, resume_job


def job_status_line(job: Job) -> str:
    return f"{job.kind} · {job.status} · {job.progress:.0%} · {job.message}"


def active_jobs_panel(session_id: int, *, kinds: tuple[str, ...] | None = None, key: str = "jobs") -> None:
    """Running jobs with progress bars (refreshing every second), interrupted ones with a Resume button."""

    @st.fragment(run_every=1.0)
    def _panel() -> None:
        db = get_db()
        jobs = [j for j in list_jobs(db, session_id=session_id, limit=20) if kinds is None or j.kind in kinds]
        running = [j for j in jobs if j.active]
        interrupted = [j for j in jobs if j.status == "interrupted"]
        for job in running:
            cols = st.columns([5, 1])
            cols[0].progress(job.progress, text=f"{job.kind} #{job.id}: {job.message}")
            if cols[1].button("Cancel", key=f"{key}-cancel-{job.id}"):
                cancel_job(db, job.id)
        for job in interrupted[:3]:
            cols = st.columns([5, 1])
            cols[0].warning(f"{job.kind} #{job.id} was interrupted at {job.progress:.0%}.")
            if cols[1].button("Resume", key=f"{key}-resume-{job.id}"):
                resume_job(db_path(), job.id)
        was = st.session_state.get(f"{key}-running", 0)
        st.session_state[f"{key}-running"] = len(running)
        if was and not running:
            st.rerun(scope="app")

    _panel()
