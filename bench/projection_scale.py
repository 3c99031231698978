"""Map and neighbour timings at scale, against the plain libraries in the same run.

Synthetic data: `--clusters` Gaussian clusters on the unit sphere in `--dim` dimensions (cluster sizes
and spreads vary), L2-normalised like sentence embeddings. Reports:
- `project(X)` with EmbedLab's defaults (PCA to 50, seeded, tuned epochs) vs `umap.UMAP(metric="cosine")`
  with the library's defaults (unseeded, so parallel), each after a warm-up that pays numba's compilation;
- trustworthiness and kNN overlap of both layouts;
- `top_k` for one query (median of `--queries`) vs `X @ q` + `np.argsort`;
- neighbour_overlap between two spaces of the same documents (full or sampled).

    .venv/bin/python bench/projection_scale.py --n 20000 --json artifacts/projection_20k.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from embedlab.compare import mean_neighbour_overlap, neighbour_overlap
from embedlab.neighbours import l2_normalise, top_k
from embedlab.projection import knn_overlap, project, trustworthiness_score


def clustered_sphere(n: int, dim: int, clusters: int, seed: int, *,
                     intrinsic: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Clusters on the unit sphere with local structure: centre + an `intrinsic`-dim Gaussian in the
    cluster's own random subspace + a little isotropic noise. Sizes (Dirichlet) and spreads vary."""
    rng = np.random.default_rng(seed)
    centres = l2_normalise(rng.standard_normal((clusters, dim)))
    sizes = rng.dirichlet(np.full(clusters, 2.0))
    truth = np.sort(rng.choice(clusters, size=n, p=sizes))
    spread = rng.uniform(0.25, 0.45, size=clusters).astype(np.float32)
    X = np.empty((n, dim), dtype=np.float32)
    for c in range(clusters):
        rows = np.flatnonzero(truth == c)
        basis = rng.standard_normal((intrinsic, dim), dtype=np.float32) / np.sqrt(dim)
        z = rng.standard_normal((len(rows), intrinsic), dtype=np.float32)
        X[rows] = centres[c] + spread[c] * (z @ basis)
    X += rng.standard_normal((n, dim), dtype=np.float32) * np.float32(0.3 / np.sqrt(dim))
    order = rng.permutation(n)
    return l2_normalise(X[order]), truth[order]


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--clusters", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--plain-n", type=int, default=None,
                    help="rows for the plain umap run (default: all; cap it when it would take too long)")
    ap.add_argument("--skip-plain", action="store_true")
    ap.add_argument("--variants", default="",
                    help="extra project() runs, ';'-separated, e.g. 'n_epochs=100;pca_dims=384;seed=None'")
    ap.add_argument("--overlap", choices=["full", "sample", "none"], default="full",
                    help="neighbour_overlap for all documents (full) or mean over 2,000 (sample)")
    ap.add_argument("--parts", default="ours,plain,topk,overlap",
                    help="what to run, comma-separated: ours (with --variants), plain, topk, overlap")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    parts = {p.strip() for p in args.parts.split(",")}
    if args.skip_plain:
        parts.discard("plain")
    if args.overlap == "none":
        parts.discard("overlap")

    if parts & {"ours", "plain"}:
        import umap  # noqa: F401 - third-party, heavy: imported before the timings, and only when a map is made

    X, _ = clustered_sphere(args.n, args.dim, args.clusters, args.seed)
    result: dict = {"n": args.n, "dim": args.dim, "clusters": args.clusters, "machine": platform.machine(),
                    "cpus": os.cpu_count(), "load_before": list(os.getloadavg())}
    print(f"data: {args.n} x {args.dim}, {args.clusters} clusters; load {result['load_before'][0]:.2f}", flush=True)

    if "ours" in parts:
        # Warm-up: numba compiles umap's and pynndescent's kernels once per process.
        warm = X[: min(args.n, 6000)]
        _, result["ours_warmup_s"] = timed(lambda: project(warm, n_epochs=5))
        print(f"warm-up ours (numba compile): {result['ours_warmup_s']:.1f} s", flush=True)

        info: dict = {}
        Y, t_ours = timed(lambda: project(X, info=info))
        ours = {"seconds": round(t_ours, 2), "stages": info["seconds"], "n_epochs": info["n_epochs"],
                "pca_dims": info["pca_dims"], "metric": info["metric"],
                "trustworthiness": round(trustworthiness_score(X, Y), 4), "knn_overlap": round(knn_overlap(X, Y), 4)}
        result["ours"] = ours
        print(f"ours: {t_ours:.1f} s {info['seconds']} trust {ours['trustworthiness']} overlap {ours['knn_overlap']}",
              flush=True)

        for variant in [v.strip() for v in args.variants.split(";") if v.strip()]:
            kwargs = {key.strip(): (None if val.strip() == "None" else float(val) if "." in val else int(val))
                      for key, val in (item.split("=") for item in variant.split(","))}
            vinfo: dict = {}
            Yv, tv = timed(lambda: project(X, info=vinfo, **kwargs))
            result.setdefault("variants", {})[variant] = {
                "seconds": round(tv, 2), "stages": vinfo["seconds"],
                "trustworthiness": round(trustworthiness_score(X, Yv), 4), "knn_overlap": round(knn_overlap(X, Yv), 4)}
            print(f"ours with {variant}: {result['variants'][variant]}", flush=True)

    if "plain" in parts:
        import umap

        warm = X[: min(args.n, 6000)]
        n_plain = min(args.n, args.plain_n or args.n)
        Xp = X[:n_plain]
        _, warm_plain = timed(lambda: umap.UMAP(metric="cosine", n_epochs=5).fit_transform(warm))
        print(f"warm-up plain: {warm_plain:.1f} s", flush=True)
        Yp, t_plain = timed(lambda: umap.UMAP(metric="cosine").fit_transform(Xp))
        plain = {"n": n_plain, "seconds": round(t_plain, 2), "warmup_s": round(warm_plain, 2),
                 "trustworthiness": round(trustworthiness_score(Xp, Yp), 4),
                 "knn_overlap": round(knn_overlap(Xp, Yp), 4)}
        if n_plain == args.n:
            if "ours" in result:
                plain["ratio_plain_over_ours"] = round(t_plain / result["ours"]["seconds"], 2)
        result["plain_umap"] = plain
        print(f"plain umap (n={n_plain}): {t_plain:.1f} s trust {plain['trustworthiness']} "
              f"overlap {plain['knn_overlap']}", flush=True)

    if "topk" in parts:
        rng = np.random.default_rng(1)
        queries = rng.choice(args.n, size=args.queries, replace=False)
        top_k(X, int(queries[0]), k=10)
        ours_ms, base_ms = [], []
        for q in queries:
            _, t = timed(lambda: top_k(X, int(q), k=10))
            ours_ms.append(t * 1e3)
            _, t = timed(lambda: np.argsort(-(X @ X[q]))[1:11])
            base_ms.append(t * 1e3)
        result["top_k"] = {"k": 10, "load": round(os.getloadavg()[0], 2),
                           "ms_median": round(float(np.median(ours_ms)), 2),
                           "ms_p90": round(float(np.percentile(ours_ms, 90)), 2),
                           "baseline_ms_median": round(float(np.median(base_ms)), 2),
                           "ratio_baseline_over_ours": round(float(np.median(base_ms) / np.median(ours_ms)), 2)}
        print(f"top_k one query: {result['top_k']}", flush=True)

    if "overlap" in parts:
        # A second "model": the same documents through a random projection to 256 dims plus noise.
        proj = np.random.default_rng(2).standard_normal((args.dim, 256)).astype(np.float32)
        X2 = l2_normalise(X @ proj + 0.02 * np.random.default_rng(3).standard_normal((args.n, 256), dtype=np.float32))
        if args.overlap == "full":
            per_doc, t = timed(lambda: neighbour_overlap(X, X2, k=10))
            value = float(per_doc.mean())
        else:
            value, t = timed(lambda: mean_neighbour_overlap(X, X2, k=10, sample=2000))
        result["neighbour_overlap"] = {"mode": args.overlap, "seconds": round(t, 2), "mean": round(value, 4)}
        print(f"neighbour_overlap ({args.overlap}): {result['neighbour_overlap']}", flush=True)

    result["load_after"] = list(os.getloadavg())
    print_table(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


def print_table(r: dict) -> None:
    rows = []
    if "ours" in r:
        rows.append(("project umap (ours)", f"{r['ours']['seconds']:.1f} s",
                     f"trust {r['ours']['trustworthiness']:.3f}  overlap {r['ours']['knn_overlap']:.3f}"))
    if "plain_umap" in r:
        p = r["plain_umap"]
        rows.append((f"umap.UMAP(cosine) n={p['n']}", f"{p['seconds']:.1f} s",
                     f"trust {p['trustworthiness']:.3f}  overlap {p['knn_overlap']:.3f}"
                     + (f"  ratio {p['ratio_plain_over_ours']:.2f}x" if "ratio_plain_over_ours" in p else "")))
    for e, v in r.get("variants", {}).items():
        rows.append((f"project, {e}", f"{v['seconds']:.1f} s",
                     f"trust {v['trustworthiness']:.3f}  overlap {v['knn_overlap']:.3f}"))
    if "top_k" in r:
        t = r["top_k"]
        rows.append(("top_k 1 query (median)", f"{t['ms_median']:.1f} ms",
                     f"baseline X@q+argsort {t['baseline_ms_median']:.1f} ms  "
                     f"ratio {t['ratio_baseline_over_ours']:.2f}x"))
    if "neighbour_overlap" in r:
        o = r["neighbour_overlap"]
        rows.append((f"neighbour_overlap ({o['mode']})", f"{o['seconds']:.1f} s", f"mean {o['mean']:.3f}"))
    width = max([len(a) for a, _, _ in rows] + [1])
    print(f"\nn = {r['n']} x {r['dim']}")
    for a, b, c in rows:
        print(f"{a:<{width}}  {b:>9}  {c}")


if __name__ == "__main__":
    main()
