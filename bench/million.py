"""A million documents on one machine, end to end: ingest with vectors, load, neighbours, maps, clusters, the Atlas.

    .venv/bin/python bench/million.py --n 1000000 --json OUT [--parts ingest,load,neighbours,first_map,full_map,
        clusters,browser,trust] [--work DIR]

A clustered synthetic corpus (short texts of 50 topics, 4 words each, and 384-d unit vectors: topic, subtopic and a
16-d latent variation per topic, plus noise) is written to Parquet with a fixed-size-list float32 column `emb`, then:
- `ingest_s`: `embedlab ingest FILE.parquet --vectors-col emb --vectors-model synthetic` (a subprocess, wall time);
- `load_s`: the stored matrix read back from SQLite (median of 3);
- `top10_ms`: top-10 neighbours of one document as the Atlas's neighbour panel finds them at this size (exact, or
  the persisted IVF index above `embedlab.ann.ANN_MIN_ROWS`; median over 100 documents), with `exact_top10_ms`,
  the index's build time `ann_build_s` and `ann_recall_at_10` against exact top-10 on 500 documents;
- `first_map_s`: `embedlab project --method pca` (a subprocess: load, PCA, store);
- `full_map_s`: `embedlab project --method umap` (UMAP fitted on a sample, the rest placed: `embedlab.projection`);
- `clusters_s`: the Atlas's default clusters at this size with their keyword labels (`embedlab.clusters`);
- `atlas_drawn_s`: a headless Chromium opens the Atlas; navigation until every point of the WebGL map is drawn with
  its colours; then a document is focused (its neighbour panel) and the map coloured by cluster;
- `peak_rss_gb`: the Streamlit server's peak resident memory (VmHWM) after all that;
- `trust_full_100k`, `trust_sampled_100k`: trustworthiness of a full UMAP fit and of the sampled fit + placement on
  the first 100k documents (part `trust`).
The machine's load average is recorded at the start and at the end (other work on the machine slows every figure).
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import browser_helpers as web
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from embedlab.ann import ANN_MIN_ROWS, build_index, load_index, recall_at_k, save_index, use_index
from embedlab.clusters import cluster, keyword_labels
from embedlab.neighbours import top_k
from embedlab.projection import UMAP_FIT_ROWS, project, trustworthiness_score
from storage import connect
from storage.corpora import find_corpus, load_documents
from storage.matrices import find_matrix, list_matrices, load_matrix
from storage.sessions import require_session

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
PARTS = ("ingest", "load", "neighbours", "first_map", "full_map", "clusters", "browser", "trust")
DIM, TOPICS, SUBTOPICS, LATENT = 384, 50, 20, 16
SESSION, CORPUS, VECTORS_MODEL = "million", "million", "synthetic"
MODEL = f"{VECTORS_MODEL} (imported)"
CHUNK = 100_000
# components.atlas_clusters.HDBSCAN_MAX_DOCS: the Atlas's default clusters are HDBSCAN up to here, k-means above (not
# imported: importing the UI's modules starts Streamlit's machinery in this process, where Playwright then hung)
HDBSCAN_MAX_DOCS = 20_000
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "pe", "su", "do", "ga", "hu", "be", "xo", "fy"]


# --- the corpus ----------------------------------------------------------------------------------------------------


def topic_words(seed: int = 0) -> list[list[str]]:
    """Four made-up words per topic (three syllables each), all distinct."""
    rng = np.random.default_rng(seed)
    words: set[str] = set()
    out = []
    for _ in range(TOPICS):
        mine = []
        while len(mine) < 4:
            w = "".join(rng.choice(SYLLABLES, size=3))
            if w not in words:
                words.add(w)
                mine.append(w)
        out.append(mine)
    return out


class Generator:
    """Clustered unit vectors in blocks: topic centre + subtopic offset + a 16-d latent variation of the topic +
    isotropic noise (neighbourhoods of a low intrinsic dimension, as real embeddings have), with a short text per
    document naming its topic's words."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.centres = self.rng.normal(size=(TOPICS, DIM)).astype(np.float32)
        self.subtopics = self.rng.normal(scale=0.5, size=(TOPICS, SUBTOPICS, DIM)).astype(np.float32)
        self.latent = self.rng.normal(scale=0.35, size=(TOPICS, LATENT, DIM)).astype(np.float32)
        self.words = topic_words(seed)
        self.common = ["report", "note", "update", "summary", "memo", "brief"]

    def block(self, start: int, m: int) -> tuple[np.ndarray, list[str], list[str]]:
        rng = self.rng
        topic = rng.integers(0, TOPICS, size=m)
        sub = rng.integers(0, SUBTOPICS, size=m)
        z = rng.standard_normal(size=(m, LATENT), dtype=np.float32)
        X = self.centres[topic] + self.subtopics[topic, sub]
        X += rng.standard_normal(size=(m, DIM), dtype=np.float32) * np.float32(0.15)
        for t in range(TOPICS):
            rows = np.flatnonzero(topic == t)
            X[rows] += z[rows] @ self.latent[t]
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        picks = rng.integers(0, 4, size=(m, 2))
        common = rng.integers(0, len(self.common), size=m)
        texts = [f"{self.common[c]} {start + i}: {self.words[t][a]} {self.words[t][b]} part {s}"
                 for i, (t, s, (a, b), c) in enumerate(zip(topic.tolist(), sub.tolist(), picks.tolist(),
                                                            common.tolist()))]
        return X, texts, [f"topic {t}" for t in topic.tolist()]


def write_corpus(path: Path, n: int) -> None:
    """The corpus as Parquet: columns text, label and emb (fixed-size list of DIM float32), in row groups."""
    gen = Generator()
    schema = pa.schema([("text", pa.string()), ("label", pa.string()), ("emb", pa.list_(pa.float32(), DIM))])
    with pq.ParquetWriter(path, schema, compression="none") as writer:
        for start in range(0, n, CHUNK):
            X, texts, labels = gen.block(start, min(CHUNK, n - start))
            emb = pa.FixedSizeListArray.from_arrays(pa.array(X.reshape(-1)), DIM)
            writer.write_table(pa.table([pa.array(texts), pa.array(labels), emb], schema=schema))


# --- helpers -------------------------------------------------------------------------------------------------------


def cli(db: Path, *args: str) -> tuple[float, str]:
    """Run `python -m embedlab ARGS --db DB`; (wall seconds, stdout). Fails loudly."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "embedlab", *args, "--db", str(db)], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, check=False)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"embedlab {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return took, proc.stdout


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--parts", default=",".join(PARTS),
                        help="what to measure, comma-separated (default: all): " + ", ".join(PARTS)
                        + "; every part after ingest needs the database that ingest made (--work)")
    parser.add_argument("--work", help="folder for the Parquet file and the database (default: a new temporary "
                                       "one, removed at the end); an existing corpus file there is reused")
    parser.add_argument("--json")
    args = parser.parse_args()
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if parts - set(PARTS):
        parser.error(f"--parts: choose from {', '.join(PARTS)}")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="embedlab-million-"))
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {"n_docs": args.n, "machine": f"{platform.processor() or platform.machine()}, "
                                                 f"{os.cpu_count()} cores", "load_average_start": load_average()}
    try:
        run_parts(args.n, parts, work, result)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    result["load_average_end"] = load_average()
    web.emit(result, args.json)


def run_parts(n: int, parts: set[str], work: Path, result: dict) -> None:
    corpus_file, db_path = work / f"corpus-{n}.parquet", work / f"million-{n}.sqlite"
    if "ingest" in parts:
        if not corpus_file.exists():
            t0 = time.perf_counter()
            write_corpus(corpus_file, n)
            result["generate_s"] = round(time.perf_counter() - t0, 1)
        for stale in work.glob(f"million-{n}.sqlite*"):
            stale.unlink()
        max_mb = str(int(corpus_file.stat().st_size * 1.5 / 2**20) + 64)    # the default 200 MB would refuse it
        took, _ = cli(db_path, "ingest", str(corpus_file), "--vectors-col", "emb", "--vectors-model", VECTORS_MODEL,
                      "--session", SESSION, "--name", CORPUS, "--max-mb", max_mb)
        result["ingest_s"] = round(took, 1)
        result["ingest_peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20, 2)
    needs_db = parts & {"load", "neighbours", "first_map", "full_map", "clusters", "browser"}
    if needs_db and not db_path.exists():
        raise SystemExit(f"{db_path} does not exist: run the ingest part first (with the same --work)")
    X = None
    if parts & {"load", "neighbours"}:
        X, emb_key = load_figures(db_path, result)
    if "neighbours" in parts:
        neighbour_figures(db_path, X, emb_key, result)
    del X
    if "first_map" in parts:
        took, _ = cli(db_path, "project", "--session", SESSION, "--corpus", CORPUS, "--model", MODEL,
                      "--method", "pca")
        result["first_map_s"] = round(took, 1)
    if "full_map" in parts:
        took, out = cli(db_path, "project", "--session", SESSION, "--corpus", CORPUS, "--model", MODEL,
                        "--method", "umap")
        result["full_map_s"] = round(took, 1)
        result["full_map_note"] = (f"UMAP fitted on a sample of {UMAP_FIT_ROWS:,} rows, the rest placed by "
                                   "umap-learn's transform" if n > UMAP_FIT_ROWS else "UMAP on all rows")
    if "clusters" in parts:
        clusters_figures(db_path, n, result)
    if "browser" in parts:
        result.update(browser_figures(db_path, n))
    if "trust" in parts:
        result.update(trust_figures(min(n, 100_000)))


def corpus_matrix(db) -> tuple:
    """The stored embedding matrix of the bench's corpus."""
    info = find_corpus(db, require_session(db, SESSION), CORPUS)
    metas = [m for m in list_matrices(db, info.content_hash, "embedding", corpus_id=info.id) if m.model == MODEL]
    if not metas:
        raise SystemExit(f"no embedding {MODEL!r} of corpus {CORPUS!r}: run the ingest part first")
    return info, metas[0]


def load_figures(db_path: Path, result: dict) -> tuple[np.ndarray, str]:
    """`load_s`: the embedding read back from SQLite (median of 3, a fresh connection each time)."""
    times = []
    for _ in range(3):
        db = connect(db_path)
        _, meta = corpus_matrix(db)
        t0 = time.perf_counter()
        X = load_matrix(db, meta)
        times.append(time.perf_counter() - t0)
        db.close()
        del X
    db = connect(db_path)
    _, meta = corpus_matrix(db)
    X = load_matrix(db, meta)
    db.close()
    result["load_s"] = round(statistics.median(times), 2)
    result["matrix_gb"] = round(X.nbytes / 2**30, 2)
    return X, meta.cache_key


def neighbour_figures(db_path: Path, X: np.ndarray, emb_key: str, result: dict) -> None:
    """`top10_ms` as the Atlas's neighbour panel finds them (exact up to ANN_MIN_ROWS, the index above), the exact
    figure beside it, and the index's build time and recall@10."""
    rng = np.random.default_rng(7)
    docs = rng.integers(0, len(X), size=100)
    top_k(X, int(docs[0]), k=10)
    exact = [median_time(lambda q=q: top_k(X, int(q), k=10), 1) for q in docs[:20]]
    result["exact_top10_ms"] = round(1000 * statistics.median(exact), 1)
    if not use_index(len(X)):
        result["top10_ms"] = result["exact_top10_ms"]
        result["top10_method"] = f"exact (below {ANN_MIN_ROWS:,} documents)"
        return
    db = connect(db_path)
    t0 = time.perf_counter()
    index = build_index(X)
    result["ann_build_s"] = round(time.perf_counter() - t0, 1)
    meta = find_matrix(db, emb_key)
    save_index(db, index, embedding_key=emb_key, content_hash=meta.content_hash)
    t0 = time.perf_counter()
    index = load_index(db, embedding_key=emb_key, n=len(X))
    result["ann_load_s"] = round(time.perf_counter() - t0, 2)
    db.close()
    index.search(X, int(docs[0]), k=10)
    approx = [median_time(lambda q=q: index.search(X, int(q), k=10), 1) for q in docs]
    result["top10_ms"] = round(1000 * statistics.median(approx), 1)
    result["top10_method"] = (f"IVF index (embedlab.ann): {index.params['nlist']:,} lists, "
                              f"{index.params['nprobe']} probed")
    result["ann_recall_at_10"] = round(recall_at_k(X, index, rng.integers(0, len(X), size=500), k=10), 4)


def clusters_figures(db_path: Path, n: int, result: dict) -> None:
    """`clusters_s`: the Atlas's default clusters at this size (HDBSCAN on the map up to HDBSCAN_MAX_DOCS, k-means
    on the embedding above) with their keyword labels; the documents' texts are read first (not timed)."""
    db = connect(db_path)
    info, meta = corpus_matrix(db)
    X = load_matrix(db, meta)
    texts = [d["text"] for d in load_documents(db, info.id)]
    db.close()
    method = "hdbscan" if n <= HDBSCAN_MAX_DOCS else "kmeans"
    t0 = time.perf_counter()
    ids = cluster(X, method=method, n_clusters=10)
    keywords = keyword_labels(texts, ids)
    result["clusters_s"] = round(time.perf_counter() - t0, 1)
    result["clusters_method"] = method
    result["clusters_labels"] = [keywords[c] for c in sorted(keywords)[:3]]


def browser_figures(db_path: Path, n: int) -> dict:
    """`atlas_drawn_s`: a fresh server, the Atlas opened until every point of its WebGL map is drawn with its
    colours; then a document focused and the map coloured by cluster (`focus_clusters_s`: until that map is drawn
    and the page has finished); `peak_rss_gb`: the server's peak resident memory (VmHWM, its process tree)."""
    out: dict = {}
    with web.streamlit_server(db_path, timeout=180) as url, web.browser() as b:
        pid = web.server_pid(url)
        page = b.new_page(viewport={"width": 1500, "height": 1000})
        t0 = time.perf_counter()
        page.goto(f"{url}/atlas?session={SESSION}")
        state = web.wait_for_map(page, "atlas_map", points=n, timeout_ms=900_000)
        out["atlas_drawn_s"] = round(time.perf_counter() - t0, 1)
        out["atlas_points"] = int(state["points"])
        web.wait_for_app(page, timeout_ms=900_000)
        page.close()
        page = b.new_page(viewport={"width": 1500, "height": 1000})
        focus = n // 3
        t0 = time.perf_counter()
        page.goto(f"{url}/atlas?session={SESSION}&focus={focus}&colour=cluster")
        web.wait_for_map(page, "atlas_map", points=n, timeout_ms=900_000)
        web.wait_for_app(page, timeout_ms=900_000)
        page.get_by_text(f"Document #{focus}").first.wait_for(timeout=900_000)
        out["focus_clusters_s"] = round(time.perf_counter() - t0, 1)
        out["neighbours_approximate_shown"] = page.get_by_text("Approximate neighbours").count() > 0
        out["coloured_by"] = web.map_layer(page, "atlas_map").get("legend", {}).get("title") \
            if isinstance(web.map_layer(page, "atlas_map").get("legend"), dict) else None
        page.close()
        out["peak_rss_gb"] = round(sum(peak_rss_kb(p) for p in web.process_tree(pid)) / 2**20, 2)
    return out


def peak_rss_kb(pid: int) -> int:
    """A process's peak resident set (VmHWM, kB); 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def trust_figures(n: int) -> dict:
    """Trustworthiness (2,000 sampled documents) of a full UMAP fit of n documents and of a fit on a tenth of them
    with the rest placed (`fit_rows`: what the map of 1M documents does with UMAP_FIT_ROWS), with both times."""
    gen = Generator()
    X = np.concatenate([gen.block(s, min(CHUNK, n - s))[0] for s in range(0, n, CHUNK)])
    out: dict = {"trust_n": n}
    for name, fit in (("full", None), ("sampled", n // 10)):
        t0 = time.perf_counter()
        Y = project(X, method="umap", fit_rows=fit)
        out[f"trust_{name}_umap_s"] = round(time.perf_counter() - t0, 1)
        out[f"trust_{name}"] = round(trustworthiness_score(X, Y), 4)
    out["trust_sampled_fit_rows"] = n // 10
    return out


if __name__ == "__main__":
    main()
