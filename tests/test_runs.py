"""Typed runs (`embedlab.runs`): one writer, one loader that migrates what older versions stored.

`tests/data/runs_schema1.json` holds four runs exactly as the code before issue 21 stored them (raw rows of the runs
table: a Retrieval page job with queries from labels, an OOD page job, `bench-retrieval --session` and `bench-ood
--session` on three CSV files), with the tables that code's Retrieval and OOD pages showed for each. They must
load, migrated to the current schema, and the pages must show the same tables, but for the display changes of
issue 21 spelled out below."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedlab.runs import RUN_SCHEMA, OODRun, RetrievalRun, RunHeader, list_runs, load_run, migrate, save_run
from storage import StorageError, connect
from storage.sessions import ensure_session
from tests.builders import open_page

CAPTURED = json.loads((Path(__file__).parent / "data" / "runs_schema1.json").read_text(encoding="utf-8"))
ROWS = {row[0]: row for row in CAPTURED["rows"]}
PAGE_JOB_RETRIEVAL, PAGE_JOB_OOD, CLI_RETRIEVAL, CLI_OOD = 1, 2, 3, 4
WORK = "/tmp/runs_capture/work"        # where the capture's files were


def store_schema1(db, run_ids=tuple(ROWS)) -> int:
    """The captured rows, inserted as they were stored (same ids, JSON text and times) in session "s"."""
    sid = ensure_session(db, "s")
    for rid in run_ids:
        row = ROWS[rid]
        db.execute("INSERT INTO runs (id, session_id, kind, params_json, metrics_json, details_json, created_at) "
                   "VALUES (?,?,?,?,?,?,?)", [row[0], sid, *row[2:]])
    db.conn.commit()
    return sid


# --- loading and migrating ----------------------------------------------------------------------------------------


def test_runs_stored_before_the_change_load_typed_with_validated_params(db):
    sid = store_schema1(db)
    runs = {rid: load_run(db, rid) for rid in ROWS}
    assert [type(runs[r]) for r in ROWS] == [RetrievalRun, OODRun, RetrievalRun, OODRun]
    assert all(r.schema == 1 and r.session_id == sid for r in runs.values())
    assert runs[PAGE_JOB_RETRIEVAL].params == {
        "source": "labels", "corpus_id": 1, "n_queries": 6, "seed": 0, "model": "tfidf-svd",
        "methods": ["bm25", "dense"], "dataset": "intents", "params": {}, "baseline": "bm25", "max_relevant": None}
    assert runs[PAGE_JOB_OOD].params == {
        "source": "session", "model": "tfidf-svd", "id_corpus_id": 1, "test": "holdout", "fraction": 0.3, "seed": 0,
        "ood_labels": ["oos"], "methods": ["knn", "msp", "mahalanobis"], "params": {"knn": {"k": 3}},
        "corpus": "intents", "dataset": "intents"}
    # the CLI's raw argparse values become the comparison it ran
    assert runs[CLI_RETRIEVAL].params == {
        "source": "beir", "beir_dir": f"{WORK}/beir-tiny", "split": "test", "max_docs": None, "max_queries": None,
        "model": "tfidf-svd", "methods": ["bm25", "dense"], "params": {}, "dataset": "tiny", "baseline": "bm25"}
    assert runs[CLI_OOD].params == {
        "source": "files", "train": f"{WORK}/train.csv", "test": f"{WORK}/test.csv", "ood": f"{WORK}/ood.csv",
        "model": "tfidf-svd", "methods": ["knn", "msp"], "params": {}, "dataset": "train"}
    # the CLI's JSON copies leave the details; fit_s and score_s leave the OOD metrics for the details' timing
    cli = runs[CLI_RETRIEVAL]
    assert not {"methods", "split", "model"} & set(cli.details) and cli.baseline == "bm25" and cli.has_drilldown
    ood = runs[CLI_OOD]
    assert ood.metrics["knn"] == {"auroc": 1.0, "fpr95": 0.0, "fpr95_openood": 0.0, "aupr_in": 1.0, "aupr_out": 1.0,
                                  "auroc_ci": [1.0, 1.0]}
    assert ood.details["timing"] == {"knn": {"fit_s": 0.0, "score_s": 0.0}, "msp": {"fit_s": 0.0, "score_s": 0.0}}
    assert ood.details["n_id"] == 6 and ood.details["n_ood"] == 4 and not ood.scores and not ood.test_idx
    # metrics and details of the page jobs are read as stored
    for rid in (PAGE_JOB_RETRIEVAL, PAGE_JOB_OOD):
        assert runs[rid].metrics == json.loads(ROWS[rid][4]) and runs[rid].details == json.loads(ROWS[rid][5])


def test_the_run_list_migrates_without_reading_the_details(db):
    """The list reads a few keys of the details in SQLite; its params are the loaded run's params."""
    sid = store_schema1(db)
    headers = list_runs(db, sid)
    assert [h.id for h in headers] == [4, 3, 2, 1] and all(type(h) is RunHeader for h in headers)
    for h in headers:
        full = load_run(db, h.id)
        assert (h.params, h.metrics, h.kind, h.created_at, h.schema) == \
            (full.params, full.metrics, full.kind, full.created_at, full.schema)
    assert [h.id for h in list_runs(db, sid, "ood")] == [4, 2]
    assert [h.dataset for h in headers] == ["train", "tiny", "intents", "intents"]


def test_the_writer_stores_the_current_schema_and_the_loader_reads_it_unchanged(db):
    sid = ensure_session(db, "s")
    params = {"session_id": sid, "source": "labels", "corpus_id": 3, "model": "m", "methods": ["bm25"],
              "params": {}, "baseline": "bm25", "dataset": "c"}
    rid = save_run(db, sid, "retrieval", params, {"bm25": {"ndcg@10": 0.5}}, {"n_docs": 3})
    run = load_run(db, rid)
    assert run.schema == RUN_SCHEMA and run.params == {k: v for k, v in params.items() if k != "session_id"}
    assert run.details == {"n_docs": 3}
    stored = json.loads(db.execute("SELECT details_json FROM runs WHERE id = ?", [rid]).fetchone()[0])
    assert stored == {"n_docs": 3, "schema": RUN_SCHEMA}
    assert migrate("retrieval", run.params, run.metrics, stored) == (run.params, run.metrics, run.details, RUN_SCHEMA)
    with pytest.raises(ValueError):
        save_run(db, sid, "other", {}, {}, {})


def test_odd_old_shapes_load_with_the_promised_keys(db):
    """Runs that older code and hand-made sessions hold (no params at all, a metrics value that is not a mapping)
    still load, with every key their kind promises."""
    sid = ensure_session(db, "s")
    for kind in ("retrieval", "ood"):
        db.execute("INSERT INTO runs (session_id, kind, params_json, metrics_json, details_json, created_at) "
                   "VALUES (?, ?, '{}', '{\"dense\": {\"ndcg@10\": 0.5}, \"note\": 3}', '{}', 'then')", [sid, kind])
    db.conn.commit()
    retrieval, ood = (load_run(db, h.id) for h in reversed(list_runs(db, sid)))
    assert retrieval.baseline == "dense" and retrieval.methods == ["dense"] and retrieval.source == "beir"
    assert ood.params["methods"] == ["dense"] and ood.source == "session" and ood.params["params"] == {}
    with pytest.raises(StorageError, match="no run 99"):
        load_run(db, 99)


# --- the pages show the same tables --------------------------------------------------------------------------------

# What issue 21 changed on purpose, per run: (table index, column) -> the new cells. Sizes are decimal now (1 kB =
# 1,000 bytes: 1,912 B read "1.9 KB" at 1,024 and now "1.9 kB"; 5,600 B "5.5 KB", now "5.6 kB"); build_s is not
# ranked (no ★) and a build under 5 ms reads "<0.01" (not "0.00"); a CLI run's dataset is its dataset's name, not
# the path it was read from (retrieval) or nothing (OOD); a bench-ood run's set-up names its files instead of
# claiming a 30 % hold-out.
CHANGED = {
    PAGE_JOB_RETRIEVAL: {(1, "index_bytes"): ["1.9 kB ★", "5.6 kB"], (1, "build_s"): ["0.03", "<0.01"]},
    CLI_RETRIEVAL: {(0, "dataset"): ["tiny"], (1, "build_s"): ["<0.01", "<0.01"]},
    PAGE_JOB_OOD: {},
    CLI_OOD: {(0, "dataset"): ["train"]},
}
CLI_OOD_SETUP = {"columns": ["in-distribution", "ID test", "OOD"],
                 "rows": [[f"{WORK}/train.csv", f"{WORK}/test.csv", f"{WORK}/ood.csv"]]}


def expected_tables(rid: int) -> list[dict]:
    tables = json.loads(json.dumps(CAPTURED["page_tables"][str(rid)]))
    for (index, column), cells in CHANGED[rid].items():
        col = tables[index]["columns"].index(column)
        assert len(cells) == len(tables[index]["rows"])
        assert [row[col] for row in tables[index]["rows"]] != cells, (rid, column)    # a change, not a restatement
        for row, cell in zip(tables[index]["rows"], cells):
            row[col] = cell
    if rid == CLI_OOD:
        tables[1] = CLI_OOD_SETUP
    return tables


@pytest.mark.parametrize("rid", list(ROWS))
def test_a_run_stored_before_the_change_shows_the_same_tables(app_env, rid):
    db = connect(app_env)
    store_schema1(db, [rid])
    db.close()
    at = open_page("pages/retrieval.py" if ROWS[rid][2] == "retrieval" else "pages/ood.py", session="s")
    assert not at.exception, at.exception
    shown = [{"columns": [str(c) for c in df.value.columns],
              "rows": json.loads(df.value.astype(str).to_json(orient="values"))} for df in at.dataframe]
    assert shown == expected_tables(rid)


def test_a_bench_ood_run_shows_its_scores_on_the_ood_page(app_env, tmp_path):
    """`bench-ood --session` now keeps per-document scores as the page's job does: the OOD page draws its ROC and
    histograms, and says why a run read from files has no map and no document lists."""
    import csv

    from embedlab.cli import main

    words = {"weather": "rain sunny forecast cloudy", "music": "song playlist guitar album",
             "oos": "zebra volcano knitting galaxy"}
    files = {}
    for name, rows in (("train", [(f"{words[w]} {i}", w) for w in ("weather", "music") for i in range(8)]),
                       ("test", [(f"{words[w]} {i} again", w) for w in ("weather", "music") for i in range(3)]),
                       ("ood", [(f"{words['oos']} {i}", "oos") for i in range(4)])):
        files[name] = tmp_path / f"{name}.csv"
        with files[name].open("w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([("text", "label"), *rows])
    assert main(["--db", str(app_env), "bench-ood", "--train", str(files["train"]), "--test", str(files["test"]),
                 "--ood", str(files["ood"]), "--model", "tfidf-svd", "--methods", "knn,msp", "--session", "s"]) == 0
    db = connect(app_env)
    (header,) = list_runs(db, 1, "ood")
    run = load_run(db, header.id)
    db.close()
    assert run.schema == RUN_SCHEMA and len(run.scores["knn"]) == len(run.is_ood) == 10 and run.test_idx == []
    at = open_page("pages/ood.py", session="s")
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 3                                    # ROC, histogram, every detector's
    assert any("came from files" in c.value for c in at.caption)
    setup = next(df.value for df in at.dataframe if "in-distribution" in df.value.columns)
    assert setup.iloc[0].tolist() == [str(files["train"]), str(files["test"]), str(files["ood"])]
