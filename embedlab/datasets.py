"""Bundled demo samples and the shared real datasets (BEIR folders, CLINC150, AG News)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from embedlab.embedding.embedders import DEFAULT_MODEL
from embedlab.errors import InputError
from embedlab.ingest import load_corpus
from embedlab.jobs import submit_job
from embedlab.tasks import find_projection, map_params
from storage.corpora import CorpusInfo, list_corpora, save_corpus
from storage.db import connect
from storage.sessions import ensure_session

ROOT = Path(__file__).resolve().parents[1]
SAMPLES_DIR = ROOT / "data" / "samples"
DEMO_SESSION = "demo"


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    kind: str  # sample | beir | clinc150 | table
    path: Path
    description: str
    licence: str


SAMPLES = {
    "ag-news-sample": DatasetInfo(
        "ag-news-sample", "sample", SAMPLES_DIR / "ag_news_sample.csv",
        "1,000 AG News articles, 4 topics (World, Sports, Business, Sci/Tech)",
        "research / non-commercial (Zhang et al. 2015)"),
    "clinc150-sample": DatasetInfo(
        "clinc150-sample", "sample", SAMPLES_DIR / "clinc150_sample.csv",
        "1,100 CLINC150 queries: 30 intents + 200 out-of-scope (label oos)",
        "CC BY 3.0 (Larson et al. 2019)"),
}


def shared_data_dir() -> Path | None:
    """`EMBEDLAB_SHARED_DATA`, else `../shared/data` beside the repository, if it exists."""
    candidate = Path(os.environ.get("EMBEDLAB_SHARED_DATA") or ROOT.parent / "shared" / "data")
    return candidate if candidate.is_dir() else None


def list_datasets() -> list[DatasetInfo]:
    """The bundled samples, then the shared datasets found beside the repository."""
    found = list(SAMPLES.values())
    shared = shared_data_dir()
    if shared:
        for folder in sorted(p for p in shared.iterdir() if p.is_dir()):
            licence = _licence_line(folder)
            if (folder / "qrels").is_dir():
                found.append(DatasetInfo(folder.name, "beir", folder, "BEIR folder (corpus, queries, qrels)", licence))
            elif (folder / "data_full.json").exists():
                found.append(DatasetInfo(folder.name, "clinc150", folder / "data_full.json",
                                         "CLINC150 intents with out-of-scope queries", licence))
            else:
                for f in sorted(folder.glob("*.csv")):
                    found.append(DatasetInfo(f"{folder.name}/{f.name}", "table", f, "table", licence))
    return found


def _licence_line(folder: Path) -> str:
    source = folder / "SOURCE.txt"
    if not source.exists():
        return ""
    for line in source.read_text(errors="replace").splitlines():
        if line.lower().startswith(("licence", "license")):
            return line.split(":", 1)[-1].split(" (")[0].strip().rstrip(".;")
    return ""


def get_dataset(name: str) -> DatasetInfo:
    for d in list_datasets():
        if d.name == name:
            return d
    raise InputError(f"unknown dataset {name!r}; known: {', '.join(d.name for d in list_datasets())}")


def load_sample(db: sqlite_utils.Database, session_id: int, name: str) -> CorpusInfo:
    """Ingest a bundled sample into a session (a second call returns the corpus already there)."""
    info = SAMPLES[name]
    for existing in list_corpora(db, session_id):
        if existing.name == name:
            return existing
    corpus = load_corpus(info.path, name=name, text_col="text", label_col="label")
    return save_corpus(db, session_id, corpus)


def ensure_demo(db_path: str | os.PathLike, *, compute: bool = True) -> list[int]:
    """The `demo` session with both samples; with `compute`, background jobs embed and map those not done yet.

    Idempotent: a restarted app resubmits only what is missing (stored chunks are reused).
    """
    db = connect(db_path)
    try:
        sid = ensure_session(db, DEMO_SESSION)
        corpus_ids = [load_sample(db, sid, name).id for name in SAMPLES]
        todo = [cid for cid in corpus_ids if find_projection(db, cid, DEFAULT_MODEL, method="umap") is None]
    finally:
        db.close()
    if compute:
        for cid in todo:
            submit_job(db_path, "project", map_params(cid, DEFAULT_MODEL),
                       session_id=sid)
    return corpus_ids
