"""The Atlas's evaluation tabs at scale: a synthetic corpus of N documents (50 topics of short texts, tfidf-svd, PCA
map, a labels retrieval run and an OOD run), then each tab opened in headless Chromium on a focused document, timed
until its content is drawn. There is no plain library that draws these views; the figures are wall times (seconds).
    .venv/bin/python bench/evaluation_tabs.py [--n 100000] --json OUT
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import browser_helpers as web
import numpy as np

import embedlab.tasks  # noqa: F401 - registers the job kinds
from embedlab.corpus import Corpus
from embedlab.jobs import run_job
from storage import connect
from storage.corpora import save_corpus
from storage.sessions import ensure_session

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def build(path: Path, n: int) -> dict:
    """The session "s" with corpus "big"; returns the seconds each step took."""
    rng = np.random.default_rng(0)
    topics = [rng.choice(3000, 40, replace=False) for _ in range(50)]
    texts, labels = [], []
    for _ in range(n):
        t = int(rng.integers(50))
        words = list(rng.choice(topics[t], 8)) + list(rng.integers(0, 3000, 4))
        texts.append(" ".join(f"w{w}" for w in words))
        labels.append(f"topic{t}")
    db = connect(path)
    sid = ensure_session(db, "s")
    info = save_corpus(db, sid, Corpus(name="big", source="bench", texts=texts, doc_ids=[f"d{i}" for i in range(n)],
                                       labels=labels, text_col="text", label_col="label"))
    steps = {}
    for name, kind, params in [
        ("embed_s", "embed", {"corpus_id": info.id, "model": "tfidf-svd"}),
        ("map_s", "project", {"corpus_id": info.id, "model": "tfidf-svd", "method": "pca", "n_components": 2}),
        ("retrieval_run_s", "retrieval", {"session_id": sid, "source": "labels", "corpus_id": info.id,
                                          "n_queries": 300, "seed": 0, "max_relevant": 100, "model": "tfidf-svd",
                                          "methods": ["bm25", "dense", "binary-rescore"]}),
        ("ood_run_s", "ood", {"session_id": sid, "id_corpus_id": info.id, "model": "tfidf-svd",
                              "ood_labels": ["topic0", "topic1"], "test": "holdout",
                              "methods": ["knn", "mahalanobis", "msp"]})]:
        t0 = time.perf_counter()
        run_job(db, kind, params, session_id=sid)
        steps[name] = round(time.perf_counter() - t0, 1)
    db.close()
    return steps


def time_tabs(path: Path, n: int) -> dict:
    """Seconds until each tab (or button press) has drawn what shows it is done."""
    out: dict[str, float] = {}
    with web.streamlit_server(path) as url, web.browser() as b:
        page = b.new_page(viewport={"width": 1440, "height": 2200})

        def layers(key: str) -> int:
            return page.evaluate("(key) => { const m = (window.__embedlabMaps || {})[key];"
                                 " return (m && m.layersDrawn) || 0; }", key)

        def step(name: str, action, marker: str, map_key: str | None = None, points: int = n) -> None:
            """Time `action` until `marker` shows in the open tab and, given `map_key`, that view's WebGL map has
            drawn its `points` points with the new layer."""
            before = layers(map_key) if map_key else 0
            t0 = time.perf_counter()
            action()
            page.locator("[role='tabpanel']:visible").get_by_text(marker).first.wait_for(timeout=900_000)
            if map_key:
                web.wait_for_map(page, map_key, points=points, layers=before + 1, timeout_ms=900_000)
            web.wait_for_app(page, 900_000)
            errors = page.locator("[data-testid='stException']").count()
            if errors:
                raise RuntimeError(f"{name}: {page.locator('[data-testid=stException]').first.inner_text()[:500]}")
            out[name] = round(time.perf_counter() - t0, 1)

        def tab(name: str):
            return lambda: page.get_by_role("tab", name=name).click()

        t0 = time.perf_counter()
        page.goto(f"{url}/atlas?session=s&corpus=big&model=tfidf-svd&focus=7")
        web.wait_for_points(page, n)                   # the main map holds every document
        out["atlas_s"] = round(time.perf_counter() - t0, 1)
        step("retrieval_s", tab("Retrieval"), "Top 10 per method", "atlas_rmap_map")
        step("retrieval_next_s", lambda: page.get_by_role("button", name="Next ▶").click(), "Top 10 per method",
             "atlas_rmap_map")
        step("failure_regions_s", tab("Failure regions"), "Worst clusters first", "atlas_fail_map")
        step("why_ood_s", tab("Why OOD"), "ID flagged (FPR)", "atlas_oodx_map")
        if n > 20_000:    # the map comes with the sample, behind a button
            step("compression_focus_s", tab("Compression"), "overlap@10 with exact dense")
            step("compression_sample_layer_s",
                 lambda: page.get_by_role("button", name="Estimate on a sample of 2,000 documents").click(),
                 "Colour the map by the overlap@10 of", "atlas_comp_map", points=2_000)
            step("diagnostics_button_s", tab("Diagnostics"), "Compute the diagnostics")
            step("diagnostics_s", lambda: page.get_by_role("button", name="Compute the diagnostics").click(),
                 "Hubs of tfidf-svd", "atlas_diag_map")
        else:
            step("compression_focus_s", tab("Compression"), "overlap@10 with exact dense", "atlas_comp_map")
            step("diagnostics_s", tab("Diagnostics"), "Hubs of tfidf-svd", "atlas_diag_map")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sqlite"
        result = {"n_docs": args.n, "setup": build(path, args.n)}
        result["tabs"] = time_tabs(path, args.n)
    web.emit(result, args.json)


if __name__ == "__main__":
    main()
