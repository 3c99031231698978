"""`embedlab project` (UMAP 2-D) of AG News test in a fresh process, against umap-learn in a fresh process.

The README's row "`project` of the 7,600 in a fresh process, numba cache warm". The first `--n` rows of AG News
test.csv (title + description) are ingested into a database (`--db`, kept between runs so the MiniLM embedding is
computed once; a temporary one by default) and embedded with `--model`. Then, `--runs` times each, in a fresh
subprocess:
- `embedlab project --method umap --seed S` (a new seed per run, so each run computes a map and none is a cache hit),
  wall time of the whole command: imports, loading the matrix, UMAP with the project's numba cache (warmed by a first
  untimed run), storing the map;
- umap-learn alone: `umap.UMAP(metric="cosine").fit_transform(X)` on the same stored matrix, timed from its imports
  on, with numba's default cache (what a plain user's script pays per process).
`ratio` = median plain / median ours.

    .venv/bin/python bench/project_time.py [--n 7600] [--runs 3] [--db PATH] [--json OUT]
"""
from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from browser_helpers import ROOT, emit

from embedlab.workspace import Workspace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
AGNEWS = ROOT.parent / "shared" / "data" / "ag-news-test" / "test.csv"
SESSION, CORPUS = "bench", "ag-news"

PLAIN = r"""
import sys, time
t0 = time.perf_counter()
import numpy as np
import umap
X = np.load(sys.argv[1])
Y = umap.UMAP(metric="cosine").fit_transform(X)
assert Y.shape == (len(X), 2)
print(time.perf_counter() - t0)
"""


def cli(db: Path, *args: str) -> float:
    """Run `embedlab --db DB ARGS…` in a fresh process; its wall time (raises with its stderr on failure)."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "embedlab", "--db", str(db), *args], cwd=ROOT, capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"embedlab {' '.join(args)} failed: {out.stderr[-2000:]}")
    return time.perf_counter() - t0


def prepare(db: Path, n: int, model: str, work: Path) -> Path:
    """The corpus ingested and embedded (once per database); its matrix saved as .npy for the plain run."""
    ws = Workspace.open(db)
    try:
        sid = ws.session_id(SESSION)
        known = sid is not None and any(c.name == CORPUS for c in ws.corpora(sid))
    finally:
        ws.close()
    if not known:
        with AGNEWS.open(encoding="utf-8", newline="") as fh:
            rows = [r for _, r in zip(range(n), csv.reader(fh))]
        table = work / "ag-news.csv"
        with table.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["label", "text"])
            writer.writerows([[r[0], f"{r[1]}. {r[2]}"] for r in rows])
        cli(db, "ingest", str(table), "--session", SESSION, "--name", CORPUS, "--text-col", "text",
            "--label-col", "label")
    cli(db, "embed", "--session", SESSION, "--corpus", CORPUS, "--model", model)   # a cache hit once done
    ws = Workspace.open(db)
    try:
        info = next(c for c in ws.corpora(ws.session_id(SESSION)) if c.name == CORPUS)
        X = ws.load_matrix(ws.embedding(info, model).id)
    finally:
        ws.close()

    path = work / "X.npy"
    np.save(path, X)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=7600, help="the first N rows of AG News test (default 7,600)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--db", help="a database to keep the embedding in between runs (default: a temporary one)")
    parser.add_argument("--json", help="write the result here too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="project-time-") as tmp:
        work = Path(tmp)
        db = Path(args.db) if args.db else work / "bench.sqlite"
        X = prepare(db, args.n, args.model, work)
        project = ["project", "--session", SESSION, "--corpus", CORPUS, "--model", args.model, "--method", "umap"]
        seed0 = int(time.time()) % 100_000 * 10          # seeds no earlier run of this database has used
        cli(db, *project, "--seed", str(seed0))          # warms the project's numba cache (untimed)
        ours = [cli(db, *project, "--seed", str(seed0 + 1 + i)) for i in range(args.runs)]
        plain = []
        for _ in range(args.runs):
            out = subprocess.run([sys.executable, "-c", PLAIN, str(X)], cwd=work, capture_output=True, text=True,
                                 check=True, env={k: v for k, v in os.environ.items()
                                                  if k not in ("NUMBA_CACHE_DIR", "EMBEDLAB_NUMBA_CACHE")})
            plain.append(float(out.stdout.strip().splitlines()[-1]))
    result = {"n_docs": args.n, "model": args.model, "project_s": round(statistics.median(ours), 2),
              "project_s_runs": [round(t, 2) for t in ours], "plain_umap_s": round(statistics.median(plain), 2),
              "plain_umap_s_runs": [round(t, 2) for t in plain],
              "ratio": round(statistics.median(plain) / statistics.median(ours), 2),
              "load_average": [round(v, 2) for v in os.getloadavg()]}
    emit(result, args.json)


if __name__ == "__main__":
    main()
