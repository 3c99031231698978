"""One OOD pipeline: `bench-ood --train/--test/--ood` and the page's "ood" job (test source "corpora") give the
same numbers on the same files, and test texts are encoded in the training texts' space (tfidf-svd's fit)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from embedlab.errors import InputError
from embedlab.ood import method_names
from embedlab.runs import OODRun, list_runs, load_run

METRICS = ("auroc", "fpr95", "fpr95_openood", "aupr_in", "aupr_out")
INTENTS = ("book_flight", "play_music", "weather")


@pytest.fixture
def clinc_csvs(shared_data, tmp_path) -> tuple[Path, Path, Path]:
    """A slice of CLINC150 as three CSV files: 3 intents × 20 training texts, 3 × 6 ID test texts, 12 OOD."""
    path = shared_data / "clinc150" / "data_full.json"
    if not path.exists():
        pytest.skip(f"{path} is missing")
    data = json.loads(path.read_text(encoding="utf-8"))

    def take(split: str, n: int) -> list[list[str]]:
        return [row for intent in INTENTS for row in [r for r in data[split] if r[1] == intent][:n]]

    parts = {"train": take("train", 20), "test": take("test", 6), "ood": data["oos_test"][:12]}
    paths = []
    for name, rows in parts.items():
        out = tmp_path / f"{name}.csv"
        with out.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            writer.writerows(rows)
        paths.append(out)
    return paths[0], paths[1], paths[2]


def run_cli(tmp_path: Path, files, model: str) -> tuple[dict, OODRun]:
    """The CLI's JSON, and the run it kept in session "s"."""
    from embedlab.cli import main
    from storage import connect

    out = tmp_path / f"cli-{model}.json"
    train, test, ood = files
    rc = main(["--db", str(tmp_path / "cli.sqlite"), "bench-ood", "--train", str(train), "--test", str(test),
               "--ood", str(ood), "--model", model, "--json", str(out), "--session", "s"])
    assert rc == 0
    db = connect(tmp_path / "cli.sqlite")
    try:
        (header,) = list_runs(db, 1, "ood")
        return json.loads(out.read_text()), load_run(db, header.id)
    finally:
        db.close()


def stored_corpora(db, files) -> tuple[int, list[int]]:
    from embedlab.ingest import load_corpus
    from storage.corpora import save_corpus
    from storage.sessions import ensure_session

    sid = ensure_session(db, "s")
    return sid, [save_corpus(db, sid, load_corpus(p)).id for p in files]


def page_params(sid: int, ids: list[int], model: str, **extra) -> dict:
    return {"session_id": sid, "model": model, "id_corpus_id": ids[0], "test": "corpora",
            "id_test_corpus_id": ids[1], "test_corpus_id": ids[2], **extra}


def run_page(tmp_path: Path, files, model: str) -> OODRun:
    from embedlab.jobs import run_job
    from storage import connect

    db = connect(tmp_path / "page.sqlite")   # another database: nothing the CLI stored is reused
    try:
        sid, ids = stored_corpora(db, files)
        ref = run_job(db, "ood", page_params(sid, ids, model), session_id=sid)
        return load_run(db, int(ref.split(":")[1]))
    finally:
        db.close()


def assert_same_numbers(tmp_path: Path, files, model: str) -> dict:
    cli, cli_run = run_cli(tmp_path, files, model)
    run = run_page(tmp_path, files, model)
    assert (cli["n_id"], cli["n_ood"]) == (run.details["n_id"], run.details["n_ood"]) == (18, 12)
    assert cli["model"] == model and "skipped" not in cli and run.disabled == {}
    assert list(cli["methods"]) == list(run.metrics)  # every detector, in the same order
    for name, metrics in cli["methods"].items():
        for key in METRICS:
            assert metrics[key] == run.metrics[name][key], (model, name, key)
        assert metrics["auroc_ci"] == run.metrics[name]["auroc_ci"], (model, name)
    assert cli["id_accuracy"] == run.details["id_accuracy"]
    assert run.params["id_test_corpus"] == "test" and run.params["test_corpus"] == "ood"
    # the stored runs: one writer, the same comparison (the CLI's files where the page has its corpora)
    shared = ("model", "methods", "params", "dataset")
    assert {k: cli_run.params[k] for k in shared} == {k: run.params[k] for k in shared} == \
        {"model": model, "methods": method_names(), "params": {}, "dataset": "train"}
    train, test, ood = files
    assert cli_run.params == {"source": "files", "train": str(train), "test": str(test), "ood": str(ood),
                              **{k: run.params[k] for k in shared}}
    assert run.params["source"] == "session" and "session_id" not in run.params
    assert cli_run.metrics == run.metrics and set(cli_run.details) == set(run.details)
    for key in ("scores", "is_ood", "roc", "id_accuracy", "n_id", "n_ood", "n_train", "disabled"):
        assert cli_run.details[key] == run.details[key], key
    assert cli_run.test_labels[:18] == run.test_labels[:18]      # bench-ood ignores the OOD file's labels
    assert cli_run.test_idx == [] and len(run.test_idx) == 30        # a CLI run's texts are not stored
    return cli


def test_cli_and_page_give_the_same_numbers_with_tfidf(tmp_path, clinc_csvs):
    cli = assert_same_numbers(tmp_path, clinc_csvs, "tfidf-svd")
    # the bug this pipeline fixes: test texts refitted into a space of their own gave AUROC 0.0-0.26
    assert cli["methods"]["knn"]["auroc"] > 0.7


@pytest.mark.slow
def test_cli_and_page_give_the_same_numbers_with_minilm(tmp_path, clinc_csvs):
    cli = assert_same_numbers(tmp_path, clinc_csvs, "all-MiniLM-L6-v2")
    assert all(m["auroc"] > 0.8 for m in cli["methods"].values()), cli["methods"]


def _sklearn_fit_then_transform(train_texts: list[str], other_texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """What tfidf-svd must give: TF-IDF + SVD fitted on the training texts only, then applied to the others."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline

    vec = TfidfVectorizer(max_features=50_000, sublinear_tf=True, stop_words="english", min_df=1)
    n_terms = len(vec.fit(train_texts).vocabulary_)
    k = max(1, min(256, len(train_texts) - 1, n_terms - 1))
    k = min(k, int(np.linalg.matrix_rank(vec.transform(train_texts).toarray())))   # no direction beyond the rank
    pipe = make_pipeline(vec, TruncatedSVD(n_components=k, random_state=0)).fit(train_texts)

    def unit(x):
        x = np.asarray(x, dtype=np.float64)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    return unit(pipe.transform(train_texts)), unit(pipe.transform(other_texts))


@pytest.mark.parametrize("side", ["cli", "page"])
def test_tfidf_test_texts_are_encoded_with_the_training_fit(tmp_path, clinc_csvs, db, side):
    from embedlab.ingest import load_corpus
    from embedlab.ood.bench import bench_task, read_bench_sets
    from embedlab.ood.comparison import embed_task
    from embedlab.ood.corpus_task import task_from_corpora

    train, test, ood = clinc_csvs
    if side == "cli":
        task = bench_task(read_bench_sets(train=train, test=test, ood=ood), "tfidf-svd", db)
    else:
        sid, ids = stored_corpora(db, clinc_csvs)
        task = task_from_corpora(db, page_params(sid, ids, "tfidf-svd")).task
    emb = embed_task(task)
    texts = {p: list(load_corpus(p).texts) for p in clinc_csvs}
    want_train, want_test = _sklearn_fit_then_transform(texts[train], texts[test] + texts[ood])
    assert emb.train.shape == want_train.shape and emb.test.shape == want_test.shape
    sign = np.sign((emb.train * want_train).sum(0))   # an SVD component is defined up to its sign
    np.testing.assert_allclose(emb.train * sign, want_train, atol=1e-5)
    np.testing.assert_allclose(emb.test * sign, want_test, atol=1e-5)
    assert emb.is_ood.tolist() == [False] * 18 + [True] * 12


def test_corpora_source_checks_its_corpora(db, clinc_csvs):
    from embedlab.jobs import run_job

    sid, ids = stored_corpora(db, clinc_csvs)
    with pytest.raises(InputError, match="pick the in-distribution test corpus"):
        run_job(db, "ood", {**page_params(sid, ids, "tfidf-svd"), "id_test_corpus_id": None})
    with pytest.raises(InputError, match="in-distribution test corpus must be another corpus"):
        run_job(db, "ood", {**page_params(sid, ids, "tfidf-svd"), "id_test_corpus_id": ids[0]})
    with pytest.raises(InputError, match="test corpus must be another corpus"):
        run_job(db, "ood", {**page_params(sid, ids, "tfidf-svd"), "test_corpus_id": ids[1]})
    with pytest.raises(InputError, match="no longer exists"):
        run_job(db, "ood", {**page_params(sid, ids, "tfidf-svd"), "test_corpus_id": 9999})
    with pytest.raises(InputError, match="nothing to test as OOD"):
        run_job(db, "ood", {**page_params(sid, ids, "tfidf-svd"), "test_corpus_id": None})
    with pytest.raises(InputError, match="whole number"):
        run_job(db, "ood", {**page_params(sid, ids, "tfidf-svd"), "test": "holdout", "seed": "x"})
    # labels marked OOD in the in-distribution corpus join the OOD side; nothing is held out
    ref = run_job(db, "ood", {**page_params(sid, ids, "tfidf-svd"), "ood_labels": ["weather"],
                              "methods": ["knn", "msp"]})
    d = load_run(db, int(ref.split(":")[1])).details
    assert (d["n_train"], d["n_id"], d["n_ood"]) == (40, 18, 20 + 12)
    assert [x[0] for x in d["test_idx"]] == [ids[1]] * 18 + [ids[0]] * 20 + [ids[2]] * 12


def test_one_label_rule_for_every_caller():
    from embedlab.ood import disabled_methods
    from embedlab.ood.comparison import run_ood_comparison
    from embedlab.ood.label_rules import MISSING_LABEL, NO_LABELS, ONE_LABEL, checked_labels

    rng = np.random.default_rng(0)
    X_train, X_test = rng.normal(size=(40, 4)), rng.normal(size=(10, 4))
    is_ood = np.r_[np.zeros(5, bool), np.ones(5, bool)]
    for labels, why in ((None, NO_LABELS), (["a"] * 40, ONE_LABEL), (["a", None] * 20, MISSING_LABEL)):
        out = run_ood_comparison(X_train, labels, X_test, is_ood, interval=False)
        assert set(out["methods"]) == {"knn", "lof", "iforest"}, labels
        assert set(out["skipped"].values()) == {why}
        assert out["skipped"] == disabled_methods(list(out["skipped"]), labels)
        with pytest.raises(InputError, match=f"'msp' {why}"):
            run_ood_comparison(X_train, labels, X_test, is_ood, ["msp"])
        with pytest.raises(InputError, match=f"'rmd' {why}"):
            checked_labels(labels, 40, "rmd")
    assert checked_labels(["a", "b"] * 20, 40, "rmd").tolist() == ["a", "b"] * 20
    with pytest.raises(InputError, match="3 labels for 40"):
        checked_labels(["a", "b", "c"], 40, "rmd")


def test_cli_refuses_bad_input_with_exit_2_before_the_database(tmp_path, capsys):
    from embedlab.cli import main

    db = tmp_path / "never.sqlite"
    missing = str(tmp_path / "missing.json")
    for argv in (["--train", "a.csv"], ["--clinc", missing, "--ood", "b.csv"], ["--clinc", missing],
                 ["--clinc", missing, "--methods", "knn,nope"]):
        assert main(["--db", str(db), "bench-ood", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
    assert not db.exists()
