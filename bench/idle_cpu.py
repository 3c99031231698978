"""What idle browser tabs cost the Streamlit server: CPU share per tab on each page, and the slowdown of an
embedding job with tabs open.

Setup (with the engine, before the server starts): a temporary database with session `idle` holding the bundled
CLINC150 sample (1,100 short texts) embedded with tfidf-svd and mapped with UMAP, so every page has something to
draw (the Atlas draws its map), and a session `embed` with AG News slices for the embedding runs. Then
`streamlit run app.py` on a free port, and Debian's headless chromium (Playwright) opens N tabs on each page in turn
(Corpora, Atlas, Retrieval, OOD, Sessions, at the URLs the app's navigation serves them, e.g. `/` for the default
page and `/atlas`, each with `?session=idle`), waits until every tab has rendered (no "Running" indicator; on the
Atlas, the map drawn), lets it settle for 2 s, then reads the server's CPU time (utime + stime of all its threads
and any child process, from /proc) over S seconds. `per_page[page]` = server CPU seconds / S / N: the share of one
core per idle tab.

`embed_slowdown_with_idle_tabs` = median docs/s with 0 tabs / median docs/s with 5 tabs (1.0: no slowdown; 2.0:
twice as slow), of an all-MiniLM-L6-v2 embedding (the default backend) of `--embed-docs` AG News test
descriptions (a fresh slice each run, so nothing is cached), run in one of two ways:
  --embed-in server (default): a job in the server, started through the Corpora page ("Embed only"), after a
      warm-up job has loaded torch and the model there. With 0 tabs, the tab that started it is closed at once;
      with 5, five tabs are open on the Corpora page while it runs (each shows its progress, as a person watching
      would see it). docs/s = documents / (job first seen in the database -> job done), polled every 0.2 s.
  --embed-in cli: `python -m embedlab embed` in a subprocess on a fresh copy of a database holding the slice,
      while the server has 0 tabs and then 5 idle tabs open on the Corpora page (the CLI's own docs/s: model
      load + encode + storing). This measures only what idle tabs take from other processes.
Runs alternate 0, 5, 0, 5, ... (`--repeats` each).

    .venv/bin/python bench/idle_cpu.py [--tabs 5] [--seconds 20] [--embed-docs 1500] [--embed-in server|cli]
                                       [--repeats 1] [--json OUT]
    (smoke test: --tabs 2 --seconds 5 --embed-docs 300)
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import browser_helpers as web
from browser_helpers import ROOT, emit

import embedlab.tasks  # noqa: F401 - registers the job kinds
from embedlab.corpus import Corpus
from embedlab.datasets import load_sample
from embedlab.embedding.embedders import DEFAULT_MODEL
from embedlab.jobs import run_job
from embedlab.tasks import map_params
from storage import connect
from storage.corpora import save_corpus
from storage.sessions import ensure_session

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PAGES = ["corpora", "atlas", "retrieval", "ood", "sessions"]
SESSION = "idle"
EMBED_SESSION = "embed"
AGNEWS = ROOT.parent / "shared" / "data" / "ag-news-test" / "test.csv"
SETTLE_S = 2.0
SAMPLE_DOCS = 1100        # the CLINC150 sample's documents: the Atlas's map draws them all
WARMUP_DOCS = 64


def log(msg: str) -> None:
    print(f"[idle_cpu] {msg}", file=sys.stderr, flush=True)


def agnews_slices(n: int, count: int) -> list[list[str]]:
    """`count` disjoint slices of n AG News test descriptions (the third column)."""
    with AGNEWS.open(newline="", encoding="utf-8") as fh:
        texts = [row[2] for row in csv.reader(fh)]
    if n * count > len(texts):
        raise SystemExit(f"--embed-docs {n} x {count} runs needs {n * count} documents; test.csv has {len(texts)}")
    return [texts[i * n:(i + 1) * n] for i in range(count)]


def add_corpus(db, session_id: int, name: str, texts: list[str]) -> None:
    save_corpus(db, session_id, Corpus(name=name, source="test.csv", texts=texts,
                                       doc_ids=[str(i) for i in range(len(texts))]))


def build_server_db(path: Path, slices: list[list[str]]) -> None:
    """Session `idle`: the CLINC150 sample embedded (tfidf-svd) and mapped (UMAP), built with the engine; with
    `slices`, session `embed` with corpora `warmup` and `agnews-0`, `agnews-1`, ... (not embedded)."""
    db = connect(path)
    sid = ensure_session(db, SESSION)
    corpus = load_sample(db, sid, "clinc150-sample")
    run_job(db, "project", map_params(corpus.id, "tfidf-svd"), session_id=sid)
    if slices:
        sid = ensure_session(db, EMBED_SESSION)
        add_corpus(db, sid, "warmup", [f"warm-up document {i}: " + t for i, t in enumerate(slices[0][:WARMUP_DOCS])])
        for i, texts in enumerate(slices):
            add_corpus(db, sid, f"agnews-{i}", texts)
    db.close()


def open_tabs(b, url: str, name: str, n: int, session: str = SESSION):
    """A browser context with n tabs on page `name` (`url`: the page's URL) of `session`, each rendered; returns
    the context."""
    ctx = b.new_context(viewport={"width": 1400, "height": 900})
    pages = [ctx.new_page() for _ in range(n)]
    for p in pages:
        p.goto(f"{url}?session={session}", wait_until="commit")
    for p in pages:
        web.wait_for_app(p, timeout_ms=180_000)
        if name == "atlas":
            web.wait_for_points(p, SAMPLE_DOCS, timeout_ms=180_000)     # the WebGL map, every document drawn
            web.wait_for_app(p, timeout_ms=180_000)
        if p.locator("[data-testid='stException']").count():
            raise RuntimeError(f"an exception is shown on {name}: {p.inner_text('[data-testid=stException]')[:500]}")
        if p.get_by_text("Page not found").count():
            raise RuntimeError(f"{url} is not a page of the app")
    return ctx


def server_share(pid: int, seconds: float) -> float:
    """Server CPU seconds per wall second over `seconds` (1.0 = one core busy)."""
    c0, t0 = web.cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    c1, t1 = web.cpu_seconds(pid), time.monotonic()
    return (c1 - c0) / (t1 - t0)


# --- embedding in the server, started through the page -------------------------------------------------------------

def job_row(db: Path, corpus: str) -> tuple | None:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute("SELECT j.status, j.message FROM jobs j JOIN corpora c ON c.id = "
                           "json_extract(j.params_json, '$.corpus_id') WHERE j.kind = 'embed' AND c.name = ? "
                           "ORDER BY j.id DESC LIMIT 1", [corpus]).fetchone()
    finally:
        con.close()


def server_embed(b, urls: dict, db: Path, corpus: str, n_docs: int, tabs: int, timeout_s: float = 3600) -> float:
    """docs/s of an "Embed only" job on `corpus` started through the Corpora page, with `tabs` tabs on Corpora
    open while it runs (0: the starting tab is closed at once)."""
    starter = open_tabs(b, urls["corpora"], "corpora", 1, EMBED_SESSION)
    page = starter.pages[0]
    web.choose(page, "Corpus", corpus)
    page.get_by_role("button", name="Embed only").click()
    deadline = time.monotonic() + 60
    while job_row(db, corpus) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no embedding job for {corpus} a minute after the click")
        time.sleep(0.05)
    t0 = time.monotonic()
    starter.close()
    watchers = open_tabs(b, urls["corpora"], "corpora", tabs, EMBED_SESSION) if tabs else None
    while True:
        status, message = job_row(db, corpus)
        if status == "done":
            break
        if status not in ("queued", "running"):
            raise RuntimeError(f"the embedding job of {corpus} ended {status}: {message}")
        if time.monotonic() - t0 > timeout_s:
            raise RuntimeError(f"the embedding job of {corpus} did not finish in {timeout_s:.0f} s")
        time.sleep(0.2)
    elapsed = time.monotonic() - t0
    if watchers is not None:
        watchers.close()
    return n_docs / elapsed


# --- embedding in a CLI subprocess ---------------------------------------------------------------------------------

EMBED_LINE = re.compile(r"embedded corpus .*: (\d+) x \d+ with .* in ([0-9.]+) s")


def cli_embed(workdir: Path, texts: list[str], run: int) -> float:
    """docs/s of `python -m embedlab embed` on a fresh database holding `texts` (nothing cached)."""
    path = workdir / f"embed-{run}.sqlite"
    db = connect(path)
    add_corpus(db, ensure_session(db, "embed"), "agnews", texts)
    db.close()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("EMBEDLAB_DB", None)
    out = subprocess.run([sys.executable, "-m", "embedlab", "embed", "--db", str(path), "--session", "embed",
                          "--corpus", "agnews", "--model", DEFAULT_MODEL], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=3600, check=False)
    m = EMBED_LINE.search(out.stdout)
    if out.returncode != 0 or m is None:
        raise RuntimeError(f"embed failed ({out.returncode}): {out.stdout[-1000:]} {out.stderr[-2000:]}")
    for leftover in path.parent.glob(f"{path.name}*"):
        leftover.unlink(missing_ok=True)
    return int(m.group(1)) / float(m.group(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tabs", type=int, default=5, help="idle tabs per page (default 5)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring window per page (default 20)")
    parser.add_argument("--embed-docs", type=int, default=1500,
                        help="AG News documents per embedding run (default 1500; 0 skips the slowdown ratio)")
    parser.add_argument("--embed-in", choices=["server", "cli"], default="server",
                        help="where the embedding runs (default: a job in the server, started through the page)")
    parser.add_argument("--embed-tabs", type=int, default=5, help="tabs on Corpora during the slowed runs")
    parser.add_argument("--repeats", type=int, default=1, help="embedding runs per condition (median)")
    parser.add_argument("--json", help="write the result here too")
    args = parser.parse_args()

    conditions = [tabs for _ in range(args.repeats) for tabs in (0, args.embed_tabs)] if args.embed_docs else []
    slices = agnews_slices(args.embed_docs, len(conditions)) if conditions else []
    per_page: dict[str, float] = {}
    docs_s: dict[int, list[float]] = {0: [], args.embed_tabs: []}
    with tempfile.TemporaryDirectory(prefix="idle-cpu-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        server_db = tmp / "idle.sqlite"
        build_server_db(server_db, slices if args.embed_in == "server" else [])
        log(f"database built in {time.perf_counter() - t0:.1f} s")

        with web.streamlit_server(server_db, timeout=180) as url, web.browser() as b:
            pid = web.server_pid(url)
            # a first visit pays the server's imports and caches (not an idle cost) and reads the pages' URLs
            ctx = open_tabs(b, f"{url}/", "the default page", 1)
            urls = web.page_urls(ctx.pages[0])
            ctx.close()
            baseline = server_share(pid, min(args.seconds, 5.0))
            log(f"server {pid} at {url}; no tab open: {baseline:.2%} of a core")
            for name in PAGES:
                ctx = open_tabs(b, urls[name], name, args.tabs)
                time.sleep(SETTLE_S)
                share = server_share(pid, args.seconds)
                per_page[name] = round(share / args.tabs, 4)
                log(f"{name}: {args.tabs} idle tabs -> server at {share:.2%} of a core, {per_page[name]:.2%} per tab")
                ctx.close()

            if conditions and args.embed_in == "server":
                t1 = time.perf_counter()
                server_embed(b, urls, server_db, "warmup", WARMUP_DOCS, 0)
                log(f"warm-up job (torch and the model loaded in the server) in {time.perf_counter() - t1:.1f} s")
            for run, tabs in enumerate(conditions):
                if args.embed_in == "server":
                    rate = server_embed(b, urls, server_db, f"agnews-{run}", args.embed_docs, tabs)
                else:
                    ctx = open_tabs(b, urls["corpora"], "corpora", tabs) if tabs else None
                    time.sleep(SETTLE_S if tabs else 0)
                    rate = cli_embed(tmp, slices[run], run)
                    if ctx is not None:
                        ctx.close()
                docs_s[tabs].append(rate)
                log(f"embedding {args.embed_docs} docs ({args.embed_in}) with {tabs} tabs on Corpora: "
                    f"{rate:.1f} docs/s")

    slowdown = None
    if conditions:
        slowdown = round(statistics.median(docs_s[0]) / statistics.median(docs_s[args.embed_tabs]), 3)
    result = {"tabs": args.tabs, "per_page": per_page, "max_per_tab": max(per_page.values()),
              "embed_slowdown_with_idle_tabs": slowdown}
    log(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; window {args.seconds} s; "
        f"embedding in the {args.embed_in}, docs/s by tabs open: {docs_s}")
    emit(result, args.json)


if __name__ == "__main__":
    main()
