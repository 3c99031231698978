"""minilm-static (issue 23), measured: its one-time distillation, `embed --model minilm-static` of AG News test
against a bare model2vec `StaticModel.encode` of the same texts, its neighbours against MiniLM's, and SciFact.

Everything runs from a temporary model cache (`EMBEDLAB_MODEL_CACHE`), so the distillation is always measured (the
installation's own cache is neither used nor changed): `distill_s` is `StaticEmbedder().prepare()` in this process,
its imports of transformers and model2vec's distiller included (`distill_cpu_s`: its CPU time, every thread's: on a
busy machine the wall time is the share of it the process got). Then, `--repeats` times, `python -m embedlab embed
--model minilm-static` of the N AG News descriptions (test.csv's third column) on a fresh database: `embed_s` is the
time the command prints (texts read, vectors computed and stored), `embed_wall_s` the subprocess's wall time (Python
start and imports too); alternating with it, the bare recipe: `StaticModel.from_pretrained(folder).encode(texts)`
(`bare_s`, loading included). Medians; `ratio` = bare_s / embed_s. `overlap@10`: the mean share of each text's 10
nearest neighbours (cosine, itself excluded) under minilm-static that are also among its 10 under all-MiniLM-L6-v2
(EmbedLab's default embedder, its default backend). SciFact: `bench-retrieval --beir --methods dense` test nDCG@10
with minilm-static (and with MiniLM too with --minilm-scifact: minutes on 2 cores).
    .venv/bin/python bench/static_quality.py [--n 7600] [--repeats 3] [--max-docs N] [--minilm-scifact] --json OUT
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from browser_helpers import ROOT, emit

from embedlab.compression_neighbours import corpus_exact, overlap_at_k
from embedlab.corpus import Corpus
from embedlab.embedding import DEFAULT_MODEL, STATIC_MODEL
from embedlab.embedding.embedders import default_backend, get_embedder
from embedlab.embedding.static import StaticEmbedder
from storage import connect
from storage.corpora import save_corpus
from storage.sessions import ensure_session

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA = ROOT.parent / "shared" / "data"
AGNEWS = DATA / "ag-news-test" / "test.csv"
SCIFACT = DATA / "beir-scifact"
MINILM_SCIFACT_NDCG10 = 0.647086    # the project's figure: bench-retrieval --beir scifact, dense, MiniLM (bf16; fp32: 0.6451)
EMBED_LINE = re.compile(r"embedded corpus .*: (\d+) x (\d+) with (\S+) in ([0-9.]+) s")


def agnews_texts(n: int) -> list[str]:
    with AGNEWS.open(newline="", encoding="utf-8") as fh:
        return [row[2] for _, row in zip(range(n), csv.reader(fh))]


def cpu_seconds() -> float:
    """CPU time of this process so far, every thread's (user + system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EMBEDLAB_DB", "EMBEDLAB_DEMO")}
    out["HF_HUB_OFFLINE"] = "1"
    return out


def cli(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "embedlab", *args], cwd=ROOT, env=env(), capture_output=True,
                          text=True, timeout=3600, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"embedlab {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc


def cli_embed(workdir: Path, texts: list[str], run: int) -> tuple[float, float, str]:
    """(seconds the command prints, its wall seconds, its stderr) of `embed --model minilm-static` on a fresh
    database holding `texts`."""
    path = workdir / f"embed-{run}.sqlite"
    db = connect(path)
    save_corpus(db, ensure_session(db, "s"), Corpus(name="agnews", source="test.csv", texts=texts,
                                                     doc_ids=[str(i) for i in range(len(texts))]))
    db.close()
    t0 = time.perf_counter()
    proc = cli("--db", str(path), "embed", "--session", "s", "--corpus", "agnews", "--model", STATIC_MODEL)
    wall = time.perf_counter() - t0
    m = EMBED_LINE.search(proc.stdout)
    if m is None or int(m.group(1)) != len(texts) or m.group(3) != STATIC_MODEL:
        raise SystemExit(f"unexpected embed output: {proc.stdout[-1000:]}")
    for leftover in workdir.glob(f"{path.name}*"):
        leftover.unlink(missing_ok=True)
    return float(m.group(4)), wall, proc.stderr


def scifact_ndcg10(workdir: Path, model: str, max_docs: int | None) -> dict:
    out = workdir / f"scifact-{model}.json"
    extra = ["--max-docs", str(max_docs)] if max_docs else []
    t0 = time.perf_counter()
    cli("--db", str(workdir / "scifact.sqlite"), "bench-retrieval", "--beir", str(SCIFACT), "--split", "test",
        "--model", model, "--methods", "dense", "--json", str(out), *extra)
    result = json.loads(out.read_text())
    return {"ndcg@10": round(float(result["methods"]["dense"]["ndcg@10"]), 6), "n_docs": result["n_docs"],
            "n_queries": result["n_queries"], "seconds": round(time.perf_counter() - t0, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=7600, help="AG News test texts (default: all 7,600)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-docs", type=int, help="SciFact: only this many documents (default: all 5,183)")
    parser.add_argument("--minilm-scifact", action="store_true",
                        help=f"also SciFact with MiniLM (else its known figure, {MINILM_SCIFACT_NDCG10})")
    parser.add_argument("--json")
    args = parser.parse_args()
    load_before = os.getloadavg()
    texts = agnews_texts(args.n)
    with tempfile.TemporaryDirectory(prefix="static-quality-") as tmp:
        work = Path(tmp)
        os.environ["EMBEDLAB_MODEL_CACHE"] = str(work / "model-cache")     # this process and its subprocesses
        heard: list[str] = []
        static = StaticEmbedder()
        t0, cpu0 = time.perf_counter(), cpu_seconds()
        folder = static.prepare(progress=lambda _f, m: heard.append(m))
        distill_s, distill_cpu_s = time.perf_counter() - t0, cpu_seconds() - cpu0
        print(f"[static_quality] distilled in {distill_s:.1f} s: {heard[-1] if heard else ''}", file=sys.stderr)

        from model2vec import StaticModel

        embed_s, wall_s, bare_s, stderr_lines = [], [], [], set()
        for run in range(args.repeats):
            printed, wall, err = cli_embed(work, texts, run)
            embed_s.append(printed)
            wall_s.append(wall)
            stderr_lines |= {line.split(":")[0] for line in err.splitlines() if line.strip()}
            t0 = time.perf_counter()
            bare = StaticModel.from_pretrained(str(folder)).encode(texts)
            bare_s.append(time.perf_counter() - t0)
        ours = static.encode(texts)
        bare = bare / np.maximum(np.linalg.norm(bare, axis=1, keepdims=True), 1e-12)
        cos = np.sum(ours * bare, axis=1)[np.linalg.norm(ours, axis=1) > 0]
        print("[static_quality] embedding with MiniLM for the overlap", file=sys.stderr)
        t0 = time.perf_counter()
        minilm = get_embedder(DEFAULT_MODEL).encode(texts)
        minilm_s = time.perf_counter() - t0
        overlap = overlap_at_k(corpus_exact(ours), corpus_exact(minilm))
        rng = np.random.default_rng(0)
        chance = overlap_at_k(np.array([rng.choice(len(texts), 10, replace=False) for _ in range(len(texts))]),
                              corpus_exact(minilm))
        print("[static_quality] SciFact", file=sys.stderr)
        scifact = {STATIC_MODEL: scifact_ndcg10(work, STATIC_MODEL, args.max_docs)}
        if args.minilm_scifact:
            scifact[DEFAULT_MODEL] = scifact_ndcg10(work, DEFAULT_MODEL, args.max_docs)
    emit({"model": STATIC_MODEL, "dim": int(ours.shape[1]), "distill_s": round(distill_s, 2),
          "distill_cpu_s": round(distill_cpu_s, 1), "distill_progress_reports": len(heard),
          "n_docs": len(texts), "repeats": args.repeats,
          "embed_s": round(statistics.median(embed_s), 3), "embed_s_runs": [round(s, 3) for s in embed_s],
          "embed_wall_s": round(statistics.median(wall_s), 3),
          "bare_s": round(statistics.median(bare_s), 3), "bare_s_runs": [round(s, 3) for s in bare_s],
          "ratio": round(statistics.median(bare_s) / statistics.median(embed_s), 3),
          "min_cosine_vs_bare": round(float(cos.min()), 6),
          "embed_stderr_kinds": sorted(stderr_lines),
          "overlap@10_with_minilm": round(float(overlap.mean()), 4),
          "overlap@10_random": round(float(chance.mean()), 4),
          "minilm_encode_s": round(minilm_s, 1), "minilm_backend": default_backend(),
          "scifact_dense_ndcg@10": scifact,
          "minilm_scifact_dense_ndcg@10_known": MINILM_SCIFACT_NDCG10,
          "load_average": {"before": [round(v, 2) for v in load_before],
                           "after": [round(v, 2) for v in os.getloadavg()]},
          "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"}, args.json)


if __name__ == "__main__":
    main()
