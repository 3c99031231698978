"""Live progress of background jobs, polled from the `jobs` table (survives reruns and reloads)."""
from __future__ import annotations

import streamlit as st

from components.state import get_workspace
from embedlab.jobs import Job
from embedlab.text_display import display_text

POLL_SECONDS = 2.0  # only while a job runs; each refresh of each watching tab costs the job CPU time


def job_status_line(job: Job) -> str:
    return f"{job.kind} · {job.status} · {job.progress:.0%} · {job.message}"


def active_jobs_panel(session_id: int, *, kinds: tuple[str, ...] | None = None, key: str = "jobs") -> None:
    """Running jobs with progress bars, interrupted ones with a Resume button.

    Only while a job of these kinds runs does the panel poll (a fragment refreshing every second); with none
    running it is drawn once, so an idle tab costs the server nothing. When the last job ends, the whole page
    reruns once to show the results."""

    def jobs_now() -> list[Job]:
        return get_workspace().jobs(session_id, kinds=kinds, limit=20)

    def draw(jobs: list[Job]) -> list[Job]:
        ws = get_workspace()
        running = [j for j in jobs if j.active]
        for job in running:
            cols = st.columns([5, 1])
            cols[0].progress(job.progress, text=display_text(f"{job.kind} job #{job.id}: {job.message}"))
            if cols[1].button("Cancel", key=f"{key}-cancel-{job.id}"):
                ws.cancel_job(job.id)
        for job in [j for j in jobs if j.status == "interrupted"][:3]:
            cols = st.columns([5, 1])
            cols[0].warning(display_text(f"{job.kind} job #{job.id} was interrupted at {job.progress:.0%}."))
            if cols[1].button("Resume", key=f"{key}-resume-{job.id}"):
                ws.resume_job(job.id)
                st.rerun(scope="app")
        return running

    jobs = jobs_now()
    if not any(j.active for j in jobs):
        draw(jobs)
        return

    @st.fragment(run_every=POLL_SECONDS)
    def _live_panel() -> None:
        if not draw(jobs_now()):
            st.rerun(scope="app")   # the last job ended: redraw the page with its result, and stop polling

    _live_panel()
