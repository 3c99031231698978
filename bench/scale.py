"""100k documents on one machine: storage load, exact neighbours, UMAP, the Atlas map in Chromium, cold start.

Each figure comes with the plain library doing the same work in the same run where one exists.
    .venv/bin/python bench/scale.py --n 100000 [--baseline-n 20000] --json OUT
Synthetic data: clustered 384-d unit vectors (50 clusters) and short synthetic texts.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def clustered(n: int, dim: int = 384, clusters: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    labels = rng.integers(0, clusters, size=n)
    X = centres[labels] + rng.normal(scale=0.6, size=(n, dim)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32), labels


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def build_db(path: Path, X: np.ndarray, labels: np.ndarray, coords: np.ndarray) -> None:
    """A session `scale` whose corpus has X stored as its default-model embedding and coords as its UMAP map."""
    from embedlab.corpus import Corpus
    from embedlab.embedding.embedders import DEFAULT_MODEL, get_embedder
    from embedlab.embedding.cache import cache_key
    from embedlab.projection import projection_params
    from embedlab.tasks import projection_key
    from storage import connect
    from storage.corpora import save_corpus
    from storage.matrices import save_matrix
    from storage.sessions import ensure_session

    db = connect(path)
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta"]
    texts = [f"document {i} about topic {c} {words[i % 8]} {words[c % 8]}" for i, c in enumerate(labels)]
    corpus = Corpus(name="synthetic", source="bench", texts=texts, doc_ids=[str(i) for i in range(len(texts))],
                    labels=[f"topic {c}" for c in labels], text_col="text", label_col="label")
    info = save_corpus(db, ensure_session(db, "scale"), corpus)
    save_matrix(db, X, cache_key=cache_key(get_embedder(DEFAULT_MODEL), info.content_hash), kind="embedding",
                model=DEFAULT_MODEL, corpus_id=info.id, content_hash=info.content_hash)
    pkey = projection_key(db, info.id, DEFAULT_MODEL, projection_params(method="umap"))
    save_matrix(db, coords, cache_key=pkey, kind="projection", model=DEFAULT_MODEL,
                params=projection_params(method="umap"), corpus_id=info.id, content_hash=info.content_hash)
    db.close()


def browser_figures(db_path: Path) -> dict:
    """Cold start (server start to the first rendered page) and the Atlas map: bytes received and draw time."""
    from tests.browser_support import browser, streamlit_server, wait_for_app

    out: dict = {}
    t0 = time.perf_counter()
    with streamlit_server(db_path) as url, browser() as b:
        out["server_health_s"] = round(time.perf_counter() - t0, 2)
        page = b.new_page(viewport={"width": 1500, "height": 1000})
        page.goto(f"{url}/?session=scale")
        wait_for_app(page)
        out["cold_start_s"] = round(time.perf_counter() - t0, 2)
        for attempt in ("first", "cached"):
            received = {"bytes": 0}

            def on_ws(ws, received=received):
                ws.on("framereceived", lambda payload: received.__setitem__(
                    "bytes", received["bytes"] + len(payload if isinstance(payload, (bytes, str)) else b"")))

            page = b.new_page(viewport={"width": 1500, "height": 1000})
            page.on("websocket", on_ws)
            t1 = time.perf_counter()
            page.goto(f"{url}/atlas?session=scale")
            page.wait_for_function(
                "() => { const p = document.querySelector('.js-plotly-plot');"
                " return p && p._fullData && p._fullData.reduce((s, t) => s + (t.x ? t.x.length : 0), 0) > 0"
                " && p.querySelector('canvas'); }", timeout=180_000)
            drawn = time.perf_counter() - t1
            points = page.evaluate("() => document.querySelector('.js-plotly-plot')._fullData"
                                   ".reduce((s, t) => s + (t.x ? t.x.length : 0), 0)")
            wait_for_app(page, timeout_ms=180_000)
            out[f"map_draw_{attempt}_s"] = round(drawn, 2)
            out[f"map_points_{attempt}"] = int(points)
            out[f"ws_bytes_{attempt}"] = received["bytes"]
            page.close()
    out["map_draw_s"] = out["map_draw_cached_s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--baseline-n", type=int, default=20_000,
                        help="rows for the umap-learn-defaults comparison (the plain library is slow at 100k)")
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()

    from embedlab.map_colours import categorical_colour
    from embedlab.map_figure import build_map_figure, map_payload_bytes
    from embedlab.neighbours import top_k
    from embedlab.projection import project
    from storage import connect
    from storage.matrices import load_matrix, save_matrix

    result: dict = {"n": args.n, "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"}
    X, labels = clustered(args.n)
    work = Path(tempfile.mkdtemp(prefix="embedlab-scale-"))

    # Storage: our chunked BLOBs vs np.load of the same matrix from an .npy file.
    db = connect(work / "load.sqlite")
    meta = save_matrix(db, X, cache_key="bench", kind="embedding")
    result["load_s"] = round(median_time(lambda: load_matrix(db, meta), 5), 3)
    np.save(work / "x.npy", X)
    result["load_npy_s"] = round(median_time(lambda: np.load(work / "x.npy"), 5), 3)
    db.close()

    # Exact top-10 neighbours of one document vs X @ q + argsort.
    rng = np.random.default_rng(1)
    queries = rng.integers(0, args.n, size=50)
    top_k(X, int(queries[0]), k=10)
    ours = [median_time(lambda q=q: top_k(X, int(q), k=10), 1) for q in queries]
    plain = [median_time(lambda q=q: np.argsort(-(X @ X[q]))[:11], 1) for q in queries]
    result["neighbours_ms"] = round(1000 * statistics.median(ours), 2)
    result["neighbours_plain_ms"] = round(1000 * statistics.median(plain), 2)

    # UMAP: ours (PCA-50, tuned epochs) at n; both paths at baseline-n against umap-learn's defaults.
    t0 = time.perf_counter()
    coords = project(X, method="umap")
    result["umap_s"] = round(time.perf_counter() - t0, 1)
    if args.baseline_n:
        import umap

        Xb = X[: args.baseline_n]
        t0 = time.perf_counter()
        project(Xb, method="umap")
        ours_b = time.perf_counter() - t0
        t0 = time.perf_counter()
        umap.UMAP(metric="cosine").fit_transform(Xb)
        plain_b = time.perf_counter() - t0
        result.update(umap_baseline_n=args.baseline_n, umap_ours_at_baseline_s=round(ours_b, 1),
                      umap_plain_defaults_s=round(plain_b, 1), umap_ratio=round(plain_b / ours_b, 2))

    fig = build_map_figure(coords, categorical_colour("label", [f"topic {c}" for c in labels]))
    result["map_bytes"] = map_payload_bytes(fig)

    if not args.skip_browser:
        build_db(work / "atlas.sqlite", X, labels, coords)
        result.update(browser_figures(work / "atlas.sqlite"))
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
