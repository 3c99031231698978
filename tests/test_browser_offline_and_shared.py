"""Issue 20 in a real browser: the app loads nothing from the network, and a job started on the Corpora page is seen
finishing by another process that lists sessions every 3 s while the pages never show a database error."""
from __future__ import annotations

import ast
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.browser_support import (ROOT, browser, require_chromium, screenshot, streamlit_server, wait_for_app,
                                   wait_for_points)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def _leaves_the_machine(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme not in ("data", "blob", "about", "chrome", "devtools") and parsed.hostname not in LOCAL_HOSTS


@pytest.fixture(scope="module")
def mapped_db(tmp_path_factory) -> Path:
    """Session "s" with the CLINC sample, its tfidf-svd embedding and a PCA map (so the Atlas draws a map)."""
    require_chromium()
    import embedlab.tasks  # noqa: F401 - job kinds
    from embedlab.datasets import load_sample
    from embedlab.jobs import run_job
    from storage import connect
    from storage.sessions import ensure_session

    path = tmp_path_factory.mktemp("offline") / "offline.sqlite"
    db = connect(path)
    sid = ensure_session(db, "s")
    corpus = load_sample(db, sid, "clinc150-sample")
    run_job(db, "project", {"corpus_id": corpus.id, "model": "tfidf-svd", "method": "pca"}, session_id=sid)
    db.close()
    return path


def test_no_page_loads_anything_from_the_network(mapped_db: Path) -> None:
    """Every page, every Atlas tab and popover, with every request that would leave the machine blocked and
    recorded: none is made (the favicon and the icons are local)."""
    outside: list[str] = []

    def guard(route) -> None:
        if _leaves_the_machine(route.request.url):
            outside.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    with streamlit_server(mapped_db) as url, browser() as b:
        context = b.new_context(viewport={"width": 1400, "height": 900})
        context.route("**/*", guard)
        page = context.new_page()
        for name in ["", "atlas", "retrieval", "ood", "sessions"]:
            page.goto(f"{url}/{name}?session=s")
            wait_for_app(page)
            assert page.locator("[data-testid='stException']").count() == 0, name
        page.goto(f"{url}/atlas?session=s")
        wait_for_app(page)
        assert wait_for_points(page, 1100, timeout_ms=120_000) == 1100      # the WebGL map, every document
        tabs = page.locator("[role='tab']")
        for i in range(tabs.count()):
            tabs.nth(i).click()
            wait_for_app(page)
            for popover in page.locator("[data-testid='stPopover'] button").all():
                if popover.is_visible():
                    popover.click()
                    page.wait_for_timeout(300)
                    page.keyboard.press("Escape")
        screenshot(page, "offline-atlas")
        context.close()
    assert outside == []


WATCHER = """
import sqlite3, subprocess, sys, time
db, stop = sys.argv[1], sys.argv[2]
import os
while not os.path.exists(stop):
    listing = subprocess.run([sys.executable, "-m", "embedlab", "--db", db, "sessions", "list"],
                             capture_output=True, text=True)
    c = sqlite3.connect(db)                      # what a user's `sqlite3 lab.sqlite "select ..."` does
    jobs = c.execute("SELECT kind, status FROM jobs ORDER BY id").fetchall()
    c.close()
    print(repr((listing.returncode, listing.stdout.strip(), listing.stderr.strip(), jobs)), flush=True)
    time.sleep(3)
"""


def test_another_process_sees_a_page_job_finish(tmp_path: Path) -> None:
    """Upload on the Corpora page, "Ingest and map" (MiniLM, then UMAP); a second process lists sessions every 3 s
    (the CLI, and a plain sqlite3 reader): it sees the job finish and the embedding complete, and no page shows a
    database error while it does, across a reload in the middle of the job."""
    require_chromium()
    from storage import connect
    from storage.sessions import ensure_session

    db_path = tmp_path / "shared.sqlite"
    db = connect(db_path)
    ensure_session(db, "s")
    db.close()
    sample = (ROOT / "data" / "samples" / "ag_news_sample.csv").read_text(encoding="utf-8").splitlines()
    upload = tmp_path / "news.csv"
    upload.write_text("\n".join(sample[:301]) + "\n", encoding="utf-8")          # header + 300 documents
    stop = tmp_path / "stop"
    watcher = subprocess.Popen([sys.executable, "-c", WATCHER, str(db_path), str(stop)], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
    seen: list[tuple] = []
    reader = threading.Thread(target=lambda: seen.extend(ast.literal_eval(line) for line in watcher.stdout), daemon=True)
    reader.start()
    errors_on_page: list[str] = []
    try:
        with streamlit_server(db_path) as url, browser() as b:
            page = b.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{url}/?session=s")
            wait_for_app(page)
            page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(upload))
            page.get_by_text("300 rows").wait_for(timeout=60_000)
            page.get_by_role("button", name="Ingest and map").click()
            page.get_by_text("Ingested 300 documents").wait_for(timeout=120_000)
            deadline = time.monotonic() + 600
            reloaded = False
            while time.monotonic() < deadline:
                body = page.locator("[data-testid='stMain']").inner_text()
                if "database error" in body.lower() or "disk i/o" in body.lower():
                    errors_on_page.append(body)
                    break
                if not reloaded and seen and any(s == "running" for _, s in seen[-1][3]):
                    page.reload()
                    wait_for_app(page)
                    reloaded = True
                if seen and seen[-1][3] and all(s == "done" for _, s in seen[-1][3]) and "embeddings=1" in seen[-1][1]:
                    break
                page.wait_for_timeout(1000)
            page.goto(f"{url}/?session=s")
            wait_for_app(page)
            assert "database error" not in page.locator("[data-testid='stMain']").inner_text().lower()
            screenshot(page, "shared-db-corpora-after-job")
    finally:
        stop.touch()
        watcher.wait(timeout=60)
        reader.join(timeout=10)
    assert errors_on_page == []
    assert seen, "the watcher printed nothing"
    assert all(rc == 0 and not err for rc, _, err, _ in seen), [s for s in seen if s[0] or s[2]]
    assert any(any(status == "running" for _, status in jobs) for *_, jobs in seen), "never saw the job running"
    last = seen[-1]
    assert "s\tcorpora=1\tdocuments=300\tembeddings=1" in last[1]
    assert last[3] and all(status == "done" for _, status in last[3]), last
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM matrices WHERE kind = 'projection' AND complete = 1").fetchone()[0] == 1
    finally:
        conn.close()
