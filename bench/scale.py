"""100k documents on one machine: storage load, exact neighbours, UMAP, the Atlas map in Chromium, cold start.

Each figure comes with the plain library doing the same work in the same run where one exists.
    .venv/bin/python bench/scale.py --n 100000 [--baseline-n 20000] [--parts load,neighbours,umap,browser] --json OUT
Synthetic data: clustered 384-d unit vectors (50 clusters) and short synthetic texts.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import browser_helpers as web
import numpy as np
from synthetic import build_db, clustered

from embedlab.map_colours import categorical_colour
from embedlab.scatter_layer import layer_of
from embedlab.scatter_payload import pack_layer, pack_points
from embedlab.neighbours import top_k
from embedlab.projection import project
from storage import connect
from storage.matrices import load_matrix, save_matrix

os.environ.setdefault("HF_HUB_OFFLINE", "1")
PARTS = ("load", "neighbours", "umap", "browser")


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def browser_figures(db_path: Path, n: int) -> dict:
    """Cold start (server start to the first rendered page) and the Atlas's WebGL map of `n` documents: bytes
    received and the time until every point is drawn with its colours."""
    out: dict = {}
    t0 = time.perf_counter()
    with web.streamlit_server(db_path) as url, web.browser() as b:
        out["server_health_s"] = round(time.perf_counter() - t0, 2)
        page = b.new_page(viewport={"width": 1500, "height": 1000})
        page.goto(f"{url}/?session=scale")
        web.wait_for_app(page)
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
            points = web.wait_for_map(page, "atlas_map", points=n, timeout_ms=180_000)["points"]   # all, coloured
            drawn = time.perf_counter() - t1
            web.wait_for_app(page, timeout_ms=180_000)
            out[f"map_draw_{attempt}_s"] = round(drawn, 2)
            out[f"map_points_{attempt}"] = int(points)
            out[f"ws_bytes_{attempt}"] = received["bytes"]
            page.close()
    out["map_draw_s"] = out["map_draw_cached_s"]
    return out


def load_figures(X: np.ndarray, work: Path) -> dict:
    """Our chunked BLOBs vs np.load of the same matrix from an .npy file (medians of 5), and that the load is exact."""
    db = connect(work / "load.sqlite")
    meta = save_matrix(db, X, cache_key="bench", kind="embedding")
    out = {"load_s": round(median_time(lambda: load_matrix(db, meta), 5), 3)}
    np.save(work / "x.npy", X)
    out["load_npy_s"] = round(median_time(lambda: np.load(work / "x.npy"), 5), 3)
    out["load_exact"] = bool(np.array_equal(load_matrix(db, meta), X))
    db.close()
    return out


def neighbour_figures(X: np.ndarray) -> dict:
    """Exact top-10 neighbours of one document vs X @ q + argsort (medians over 50 documents)."""
    queries = np.random.default_rng(1).integers(0, len(X), size=50)
    top_k(X, int(queries[0]), k=10)
    ours = [median_time(lambda q=q: top_k(X, int(q), k=10), 1) for q in queries]
    plain = [median_time(lambda q=q: np.argsort(-(X @ X[q]))[:11], 1) for q in queries]
    return {"neighbours_ms": round(1000 * statistics.median(ours), 2),
            "neighbours_plain_ms": round(1000 * statistics.median(plain), 2)}


def umap_figures(X: np.ndarray, labels: np.ndarray, baseline_n: int) -> tuple[dict, np.ndarray]:
    """Ours (PCA-50, tuned epochs) at n; both paths at baseline_n against umap-learn's defaults; the WebGL map's
    payload (`map_bytes`: coordinates and label colours; up to 100k points the hover snippets come on top, once).
    Returns the figures and the map."""
    t0 = time.perf_counter()
    coords = project(X, method="umap")
    out: dict = {"umap_s": round(time.perf_counter() - t0, 1)}
    if baseline_n:
        import umap  # third-party, heavy: only this comparison needs it

        Xb = X[:baseline_n]
        t0 = time.perf_counter()
        project(Xb, method="umap")
        ours_b = time.perf_counter() - t0
        t0 = time.perf_counter()
        umap.UMAP(metric="cosine").fit_transform(Xb)
        plain_b = time.perf_counter() - t0
        out.update(umap_baseline_n=baseline_n, umap_ours_at_baseline_s=round(ours_b, 1),
                   umap_plain_defaults_s=round(plain_b, 1), umap_ratio=round(plain_b / ours_b, 2))
    layer = layer_of(categorical_colour("label", [f"topic {c}" for c in labels]))
    out["map_bytes"] = len(pack_points(coords, key="atlas_map", height=640)) + \
        len(pack_layer(layer, key="atlas_map", n=len(coords), coords=coords))   # the WebGL map's two payloads
    return out, coords


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--baseline-n", type=int, default=20_000,
                        help="rows for the umap-learn-defaults comparison (the plain library is slow at 100k)")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help="what to measure, comma-separated (default: all): " + ", ".join(PARTS)
                        + "; browser needs umap")
    parser.add_argument("--skip-browser", action="store_true", help="the same as leaving browser out of --parts")
    parser.add_argument("--json")
    args = parser.parse_args()
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if args.skip_browser:
        parts.discard("browser")
    if parts - set(PARTS) or ("browser" in parts and "umap" not in parts):
        parser.error(f"--parts: choose from {', '.join(PARTS)} (browser needs umap)")

    result: dict = {"n": args.n, "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"}
    X, labels = clustered(args.n)
    work = Path(tempfile.mkdtemp(prefix="embedlab-scale-"))
    if "load" in parts:
        result.update(load_figures(X, work))
    if "neighbours" in parts:
        result.update(neighbour_figures(X))
    if "umap" in parts:
        figures, coords = umap_figures(X, labels, args.baseline_n)
        result.update(figures)
        if "browser" in parts:
            build_db(work / "atlas.sqlite", X, labels, coords)
            result.update(browser_figures(work / "atlas.sqlite", args.n))
    web.emit(result, args.json)


if __name__ == "__main__":
    main()
