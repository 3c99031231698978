"""How tests/data/runs_schema1.json was made: runs as the code before issue 21 (commit 371a166) stored them, and the
tables that code's pages showed for each. Not a test; it only runs against that commit:
    git archive 371a166 | tar -x -C /tmp/old && cd /tmp/old && \
    HEAD_COMMIT=371a166 python <repo>/tests/data/capture_runs_schema1.py OUT.json"""
from __future__ import annotations

import csv
import json
import os
import sqlite3
import sys
from pathlib import Path

import numpy as np

ROOT = Path.cwd()
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from builders import write_beir  # noqa: E402

from embedlab.cli import main  # noqa: E402
from embedlab.corpus import Corpus  # noqa: E402
from embedlab.jobs import run_job  # noqa: E402
from embedlab.retrieval.params import validate_params  # noqa: E402
from storage import connect  # noqa: E402
from storage.corpora import save_corpus  # noqa: E402
from storage.sessions import ensure_session  # noqa: E402

WORK = Path("/tmp/runs_capture/work")
TOPICS = {
    "weather": ["rain", "sunny", "forecast", "cloudy", "umbrella", "temperature"],
    "music": ["song", "playlist", "guitar", "album", "concert", "melody"],
    "banking": ["account", "balance", "transfer", "deposit", "loan", "savings"],
    "travel": ["flight", "hotel", "passport", "airport", "luggage", "booking"],
    "oos": ["zebra", "volcano", "knitting", "galaxy", "origami", "dinosaur"],
}


def texts_of(label: str, n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed + sum(map(ord, label)))
    return [" ".join(rng.choice(TOPICS[label], size=4)) + f" {label} note {i}" for i in range(n)]


def labelled() -> Corpus:
    texts, ys = [], []
    for label in TOPICS:
        texts += texts_of(label, 8)
        ys += [label] * 8
    return Corpus(name="intents", source="test", texts=texts, doc_ids=[str(i) for i in range(len(texts))],
                  labels=ys, label_col="label")


def tiny_beir() -> Path:
    docs, queries, qrels = [], [], []
    for t, name in enumerate(["weather", "music", "banking"]):
        for j, text in enumerate(texts_of(name, 3, seed=1)):
            docs.append({"_id": f"{name}-{j}", "title": f"note {t}-{j}", "text": text})
            qrels.append((f"q-{name}", f"{name}-{j}", 1))
        queries.append({"_id": f"q-{name}", "text": " ".join(TOPICS[name][:3])})
    return write_beir(WORK / "beir-tiny", docs, queries, qrels)


def csv_file(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(rows)
    return path


def page_tables(row: tuple, page: str) -> list[dict]:
    """The tables today's page shows when `row` is the session's only run."""
    from streamlit.testing.v1 import AppTest

    path = WORK / f"page-{row[0]}.sqlite"
    path.unlink(missing_ok=True)
    db = connect(path)
    sid = ensure_session(db, "s")
    db.execute("INSERT INTO runs (id, session_id, kind, params_json, metrics_json, details_json, created_at) "
               "VALUES (?,?,?,?,?,?,?)", [row[0], sid, *row[2:]])
    db.conn.commit()
    db.close()
    os.environ["EMBEDLAB_DB"] = str(path)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["session"] = "s"
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return [{"columns": [str(c) for c in df.value.columns],
             "rows": json.loads(df.value.astype(str).to_json(orient="values"))} for df in at.dataframe]


def run() -> None:
    out = Path(sys.argv[1])
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / "head.sqlite"
    path.unlink(missing_ok=True)
    db = connect(path)
    sid = ensure_session(db, "s")
    info = save_corpus(db, sid, labelled())
    run_job(db, "retrieval", validate_params({"session_id": sid, "source": "labels", "corpus_id": info.id,
                                              "n_queries": 6, "seed": 0, "model": "tfidf-svd",
                                              "methods": ["bm25", "dense"], "dataset": info.name}),
            session_id=sid)
    run_job(db, "ood", {"session_id": sid, "model": "tfidf-svd", "id_corpus_id": info.id, "test": "holdout",
                        "fraction": 0.3, "seed": 0, "ood_labels": ["oos"], "methods": ["knn", "msp", "mahalanobis"],
                        "params": {"knn": {"k": 3}}}, session_id=sid)
    db.close()
    beir = tiny_beir()
    assert main(["--db", str(path), "bench-retrieval", "--beir", str(beir), "--model", "tfidf-svd",
                 "--methods", "bm25,dense", "--session", "s", "--json", str(WORK / "r.json")]) == 0
    train = csv_file(WORK / "train.csv", [(t, lab) for lab in ("weather", "music", "banking")
                                          for t in texts_of(lab, 6, seed=2)])
    test = csv_file(WORK / "test.csv", [(t, lab) for lab in ("weather", "music", "banking")
                                        for t in texts_of(lab, 2, seed=3)])
    ood = csv_file(WORK / "ood.csv", [(t, "oos") for t in texts_of("oos", 4, seed=4)])
    assert main(["--db", str(path), "bench-ood", "--train", str(train), "--test", str(test), "--ood", str(ood),
                 "--model", "tfidf-svd", "--methods", "knn,msp", "--session", "s",
                 "--json", str(WORK / "o.json")]) == 0
    raw = sqlite3.connect(path)
    rows = raw.execute("SELECT id, session_id, kind, params_json, metrics_json, details_json, created_at FROM runs "
                       "ORDER BY id").fetchall()
    raw.close()
    captured = {
        "about": "runs as the code before issue 21 (commit " + os.environ.get("HEAD_COMMIT", "?") + ") stored "
                 "them: 1 a Retrieval page job (queries from labels), 2 an OOD page job (holdout), 3 "
                 "`bench-retrieval --session`, 4 `bench-ood --session` (three CSV files); with the tables that "
                 "code's page showed for each when it was the session's only run. Built by "
                 "tests/data/capture_runs_schema1.py; do not edit by hand.",
        "columns": ["id", "session_id", "kind", "params_json", "metrics_json", "details_json", "created_at"],
        "rows": [list(r) for r in rows],
        "page_tables": {str(r[0]): page_tables(r, "pages/retrieval.py" if r[2] == "retrieval" else "pages/ood.py")
                        for r in rows},
    }
    out.write_text(json.dumps(captured, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print("captured", [(r[0], r[2]) for r in rows], "->", out)


if __name__ == "__main__":
    run()
