"""The "ood" job on a small synthetic labelled corpus, the helpers that read a stored run, and the OOD page."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from embedlab.corpus import Corpus
from embedlab.errors import InputError
from embedlab.jobs import run_job
from embedlab.ood import disabled_methods
from embedlab.ood.run_reading import confusion_at, id_quantile_threshold, review_lists
from embedlab.ood.split import split_corpus
from embedlab.runs import list_runs, load_run
from embedlab.text_display import display_text
from map_support import maps
from storage.corpora import save_corpus
from storage.sessions import ensure_session

ROOT = Path(__file__).resolve().parents[1]
METHODS = ["knn", "msp", "mahalanobis", "lof"]
TOPICS = {
    "weather": ["rain", "sunny", "forecast", "cloudy", "umbrella", "temperature"],
    "music": ["song", "playlist", "guitar", "album", "concert", "melody"],
    "banking": ["account", "balance", "transfer", "deposit", "loan", "savings"],
    "travel": ["flight", "hotel", "passport", "airport", "luggage", "booking"],
    "oos": ["zebra", "volcano", "knitting", "galaxy", "origami", "dinosaur"],
}


def topic_texts(label: str, n: int = 30, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed + sum(map(ord, label)))
    words = TOPICS[label]
    return [" ".join(rng.choice(words, size=4)) + f" please {label} {i}" if label != "oos" else
            " ".join(rng.choice(words, size=4)) + f" item {i}" for i in range(n)]


def labelled_corpus(name: str = "intents", labels=("weather", "music", "banking", "travel", "oos"),
                    with_labels: bool = True) -> Corpus:
    texts, ys = [], []
    for label in labels:
        texts += topic_texts(label)
        ys += [label] * 30
    return Corpus(name=name, source="test", texts=texts, doc_ids=[str(i) for i in range(len(texts))],
                  labels=ys if with_labels else None, label_col="label" if with_labels else None)


@pytest.fixture
def stored(db):
    sid = ensure_session(db, "s")
    info = save_corpus(db, sid, labelled_corpus())
    return db, sid, info


def ood_params(sid: int, corpus_id: int, **extra) -> dict:
    return {"session_id": sid, "model": "tfidf-svd", "id_corpus_id": corpus_id, "test": "holdout",
            "fraction": 0.3, "seed": 0, "ood_labels": ["oos"], "methods": METHODS, "params": {"knn": {"k": 3}},
            **extra}


def test_job_stores_a_run_with_metrics_and_per_sample_scores(stored):
    db, sid, info = stored
    ref = run_job(db, "ood", ood_params(sid, info.id), session_id=sid)
    assert ref.startswith("run:")
    run = load_run(db, int(ref.split(":")[1]))
    assert run.kind == "ood" and run.params["corpus"] == "intents"
    assert set(run.metrics) == set(METHODS)
    for name, m in run.metrics.items():
        for key in ("auroc", "fpr95", "fpr95_openood", "aupr_in", "aupr_out"):
            assert 0.0 <= m[key] <= 1.0, (name, key)
        lo, hi = m["auroc_ci"]
        assert 0.0 <= lo <= hi <= 1.0
    d = run.details
    n_test = d["n_id"] + d["n_ood"]
    assert d["n_ood"] == 30 and d["n_id"] == 4 * 9  # round(0.3 · 30) held out per label
    assert len(d["test_idx"]) == len(d["is_ood"]) == len(d["test_labels"]) == n_test
    assert all(len(d["scores"][m]) == n_test for m in METHODS)
    assert all(len(d["roc"][m]["fpr"]) == len(d["roc"][m]["tpr"]) <= 300 for m in METHODS)
    assert {d["test_labels"][i] for i, o in enumerate(d["is_ood"]) if o} == {"oos"}
    # the logistic head on four disjoint vocabularies, hold-out seeds 0-9 here: 1.000; chance: 0.25
    assert d["disabled"] == {} and d["id_accuracy"] > 0.8
    assert d["n_train"] == 4 * 21
    json.dumps(run.details)  # plain JSON
    # disjoint vocabularies, easy: each of the four methods, hold-out seeds 0-9 here: 1.000; random scores: 0.5
    assert all(m["auroc"] > 0.8 for m in run.metrics.values())


def test_job_on_another_corpus_and_held_out_labels(stored):
    db, sid, info = stored
    other = save_corpus(db, sid, labelled_corpus("other", labels=("oos",), with_labels=False))
    params = ood_params(sid, info.id, test="corpus", test_corpus_id=other.id, ood_labels=[],
                        near_ood_labels=["travel"], id_labels=["weather", "music"], methods=["knn", "msp"])
    run = load_run(db, int(run_job(db, "ood", params).split(":")[1]))
    d = run.details
    assert d["n_ood"] == 30 + 30 and d["n_id"] == 2 * 9 and d["n_left_out"] == 60  # banking and oos left out
    assert {tuple(x)[0] for x in d["test_idx"]} == {info.id, other.id}
    assert run.params["test_corpus"] == "other"


def test_no_labels_disables_label_methods_with_the_reason(db):
    sid = ensure_session(db, "s")
    plain = save_corpus(db, sid, labelled_corpus("plain", labels=("weather", "music"), with_labels=False))
    outliers = save_corpus(db, sid, labelled_corpus("outliers", labels=("oos",), with_labels=False))
    params = {"session_id": sid, "model": "tfidf-svd", "id_corpus_id": plain.id, "test": "corpus",
              "test_corpus_id": outliers.id, "methods": ["knn", "msp", "mahalanobis", "mcm"]}
    run = load_run(db, int(run_job(db, "ood", params).split(":")[1]))
    assert set(run.metrics) == {"knn"}
    assert set(run.details["disabled"]) == {"msp", "mahalanobis", "mcm"}
    assert all("needs labels" in why for why in run.details["disabled"].values())
    with pytest.raises(InputError, match="none of the chosen methods can run"):
        run_job(db, "ood", {**params, "methods": ["msp"]})


def test_bad_requests_are_refused_with_one_clear_line(stored):
    db, sid, info = stored
    with pytest.raises(InputError, match="nothing to test as OOD"):
        run_job(db, "ood", ood_params(sid, info.id, ood_labels=[]))
    with pytest.raises(InputError, match="do not occur"):
        run_job(db, "ood", ood_params(sid, info.id, ood_labels=["nope"]))
    with pytest.raises(InputError, match="both in-distribution and OOD"):
        run_job(db, "ood", ood_params(sid, info.id, id_labels=["oos", "music"]))
    with pytest.raises(InputError, match="another corpus"):
        run_job(db, "ood", ood_params(sid, info.id, test="corpus", test_corpus_id=info.id))
    assert list_runs(db, sid, "ood") == []


def test_a_copied_run_reads_its_documents_from_its_own_session(stored):
    from embedlab.ood.run_reading import resolve_run_corpora
    from storage.sessions import delete_session, duplicate_session, get_session_id

    db, sid, info = stored
    run_job(db, "ood", ood_params(sid, info.id, methods=["knn"]))
    copy_id = get_session_id(db, duplicate_session(db, "s", "copy"))
    copied = load_run(db, list_runs(db, copy_id, "ood")[0].id)
    delete_session(db, "s")  # the original corpus id is gone; the copy holds the same documents under another id
    resolved = resolve_run_corpora(db, copied)
    assert list(resolved) == [info.id] and resolved[info.id].session_id == copy_id
    assert resolved[info.id].id != info.id and resolved[info.id].content_hash == info.content_hash


def test_split_and_label_status():
    labels = ["a"] * 10 + ["b"] * 10 + ["oos"] * 5
    split = split_corpus(labels, ood_labels=["oos"], fraction=0.3, seed=1)
    assert sorted(np.r_[split.train, split.id_test].tolist()) == list(range(20))
    assert split.ood.tolist() == list(range(20, 25)) and len(split.id_test) == 6
    assert split_corpus(labels, ood_labels=["oos"], fraction=0.3, seed=1).id_test.tolist() == split.id_test.tolist()
    assert disabled_methods(["knn", "msp"], ["a"] * 5) == {"msp": "needs at least two labels in the "
                                                                  "in-distribution set"}
    assert disabled_methods(["knn", "mcm"], None)["mcm"].startswith("needs labels")


def test_confusion_counts_at_a_threshold_by_hand():
    scores = [0.1, 0.4, 0.35, 0.8, 0.6, 0.2]
    is_ood = [0, 0, 1, 1, 1, 0]
    # flagged (≥ 0.35): 0.4 (ID), 0.35 (OOD), 0.8 (OOD), 0.6 (OOD) → TP 3, FP 1; accepted: 0.1, 0.2 (ID) → TN 2
    assert confusion_at(scores, is_ood, 0.35) == {"tp": 3, "fp": 1, "tn": 2, "fn": 0, "tpr": 1.0, "fpr": 1 / 3}
    # flagged (≥ 0.5): 0.8, 0.6 → TP 2, FN 1 (0.35), FP 0, TN 3
    assert confusion_at(scores, is_ood, 0.5) == {"tp": 2, "fp": 0, "tn": 3, "fn": 1, "tpr": 2 / 3, "fpr": 0.0}
    lists = review_lists(scores, is_ood, 0.5, limit=2)
    assert lists == {"most_ood": [3, 4], "false_alarms": [], "missed": [2]}
    assert review_lists(scores, is_ood, 0.35)["false_alarms"] == [1]
    # the FPR95 operating point accepts ≥ 95 % of ID: here all three ID scores
    t = id_quantile_threshold(scores, is_ood)
    assert confusion_at(scores, is_ood, t)["fp"] == 0 and t > 0.4


# ---- the page --------------------------------------------------------------------------------------------------

def open_page(session: str = "s"):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["session"] = session
    at.run()
    at.switch_page("pages/ood.py")
    at.run()
    return at


def test_page_renders_without_corpora_and_without_runs(app_env):
    from storage import connect

    db = connect(app_env)
    ensure_session(db, "s")
    at = open_page()
    assert not at.exception, at.exception
    info = save_corpus(db, ensure_session(db, "s"), labelled_corpus())
    at = open_page()
    assert not at.exception, at.exception
    assert at.multiselect(key=f"ood_labels_{info.id}").value == ["oos"]  # marked OOD by default
    assert not at.button(key="ood_run").disabled  # so a comparison can run as the page opens


def test_page_shows_a_stored_run(app_env):
    from storage import connect

    db = connect(app_env)
    sid = ensure_session(db, "s")
    info = save_corpus(db, sid, labelled_corpus())
    ref = run_job(db, "ood", ood_params(sid, info.id), session_id=sid)
    stored = load_run(db, int(ref.split(":")[1])).metrics
    at = open_page()
    assert not at.exception, at.exception
    frames = [df.value for df in at.dataframe]
    results = next(f for f in frames if "AUROC ↑" in f.columns)
    assert set(results["method"]) == set(METHODS)
    shown = {row["method"]: row for _, row in results.iterrows()}  # the stored run's values, as the page prints them
    for method, m in stored.items():
        assert float(shown[method]["AUROC ↑"].split()[0]) == pytest.approx(m["auroc"], abs=5e-5), method
        assert shown[method]["AUROC 95 % CI"] == f"{m['auroc_ci'][0]:.3f}–{m['auroc_ci'][1]:.3f}", method
    most_ood = next(f for f in frames if "text" in f.columns)
    assert len(most_ood) == 50 and "oos" in set(most_ood["label"])
    assert [m.label for m in at.metric][:2] == ["OOD caught (TPR)", "ID flagged (FPR)"]
    assert any(i.value.startswith("No UMAP map") for i in at.info)  # no projection yet

    from embedlab.projection import projection_params
    from embedlab.tasks import projection_key
    from storage.matrices import save_matrix

    key = projection_key(db, info.id, "tfidf-svd", projection_params(method="umap"))
    coords = np.random.default_rng(0).normal(size=(info.n_docs, 2)).astype(np.float32)
    save_matrix(db, coords, cache_key=key, kind="projection", model="tfidf-svd", corpus_id=info.id,
                content_hash=info.content_hash)
    at = open_page()
    assert not at.exception, at.exception
    assert not any(i.value.startswith("No UMAP map") for i in at.info)
    run = load_run(db, int(ref.split(":")[1]))
    method = at.selectbox(key=f"ood_detector_{run.id}").value
    (shown_map,) = maps(at).values()                       # the WebGL map of the test corpus, scores as colours
    tested = {int(r): bool(o) for (_, r), o in zip(run.test_idx, run.is_ood)}
    assert all(shown_map.tag_of(i) == ("not tested" if i not in tested else "OOD test" if tested[i] else "ID test")
               for i in range(info.n_docs))
    grey = len(shown_map.layer["palette"]) - 1
    assert {i for i in range(info.n_docs) if shown_map.codes[i] == grey} == set(range(info.n_docs)) - set(tested)
    assert shown_map.layer["title"] == f"{method} score"


def test_results_table_stars_the_best_of_each_column_and_shows_the_interval():
    from components.ood_plots import results_frame

    metrics = {"a": {"auroc": 0.8, "auroc_ci": [0.7, 0.9], "fpr95": 0.3, "fpr95_openood": 0.5, "aupr_in": 0.9,
                     "aupr_out": 0.7},
               "b": {"auroc": 0.9, "auroc_ci": [0.85, 0.95], "fpr95": 0.4, "fpr95_openood": 0.2, "aupr_in": 0.8,
                     "aupr_out": 0.7}}
    frame = results_frame(metrics)
    assert list(frame["method"]) == ["b", "a"]  # by AUROC
    assert list(frame.columns) == ["method", "AUROC ↑", "AUROC 95 % CI", "FPR95 ↓", "FPR95 OpenOOD ↓", "AUPR-In ↑",
                                   "AUPR-Out ↑"]
    assert frame["AUROC ↑"].str.endswith("★").tolist() == [True, False]
    assert frame["FPR95 ↓"].str.endswith("★").tolist() == [False, True]  # lower is better
    assert frame["AUPR-Out ↑"].str.endswith("★").tolist() == [True, True]  # ties: both
    assert frame["AUROC 95 % CI"].tolist() == ["0.850–0.950", "0.700–0.900"]


def test_document_text_never_reaches_raw_html():
    for path in ("pages/ood.py", "components/ood_plots.py"):
        assert "unsafe_allow_html" not in (ROOT / path).read_text()


def test_page_greys_out_label_detectors_without_labels(app_env):
    from storage import connect

    db = connect(app_env)
    sid = ensure_session(db, "s")
    save_corpus(db, sid, labelled_corpus("plain", labels=("weather", "music"), with_labels=False))
    save_corpus(db, sid, labelled_corpus("outliers", labels=("oos",), with_labels=False))
    at = open_page()
    at.selectbox(key="ood_id_corpus").set_value("plain").run()
    assert not at.exception, at.exception
    assert at.checkbox(key="ood_use_mahalanobis_False").disabled
    assert not at.checkbox(key="ood_use_mahalanobis_False").value
    assert any(c.value.startswith("⛔ Unavailable: needs labels") for c in at.caption)
    assert at.button(key="ood_run").disabled  # nothing is OOD until another corpus is picked
    at.selectbox(key="ood_test_corpus").set_value("outliers").run()
    assert not at.button(key="ood_run").disabled


def test_run_button_submits_a_job_whose_run_the_page_then_shows(app_env):
    from embedlab.jobs import list_jobs, wait_for
    from storage import connect

    db = connect(app_env)
    sid = ensure_session(db, "s")
    save_corpus(db, sid, labelled_corpus())
    at = open_page()
    at.selectbox(key="ood_model").set_value("tfidf-svd")
    for name in ("mahalanobis", "rmd", "energy", "mcm", "vim", "lof", "iforest", "prototypes"):
        at.checkbox(key=f"ood_use_{name}_True").uncheck()
    at.number_input(key="ood_p_knn_k").set_value(2)
    at.run()
    at.button(key="ood_run").click().run()
    assert not at.exception, at.exception
    job = wait_for(db, list_jobs(db, session_id=sid, kind="ood")[0].id, timeout=60)
    assert job.status == "done", job.message
    assert job.params["methods"] == ["knn", "msp"] and job.params["params"]["knn"] == {"k": 2}
    assert job.params["ood_labels"] == ["oos"] and job.params["model"] == "tfidf-svd"
    at.run()
    assert not at.exception, at.exception
    results = next(df.value for df in at.dataframe if "AUROC ↑" in df.value.columns)
    assert set(results["method"]) == {"knn", "msp"}


def test_page_opens_on_a_corpus_it_can_test_and_guides_instead_of_erring(app_env):
    from storage import connect

    db = connect(app_env)
    sid = ensure_session(db, "s")
    save_corpus(db, sid, labelled_corpus("plain", labels=("weather", "music"), with_labels=False))
    intents = save_corpus(db, sid, labelled_corpus())                       # has an "oos" label
    at = open_page()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    assert at.selectbox(key="ood_id_corpus").value == "intents"             # not the first corpus: a testable one
    assert at.multiselect(key=f"ood_labels_{intents.id}").value == ["oos"]
    assert not at.button(key="ood_run").disabled

    # only labelled corpora without an OOD-like label: guidance, not an error, before the user did anything
    db2 = connect(app_env)
    sid2 = ensure_session(db2, "t")
    topics = save_corpus(db2, sid2, labelled_corpus("topics", labels=("weather", "music", "banking", "travel")))
    at = open_page("t")
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    assert at.selectbox(key="ood_id_corpus").value == "topics"
    assert any(i.value.startswith("Nothing is marked OOD yet") for i in at.info)
    assert at.button(key="ood_run").disabled
    at.multiselect(key=f"ood_near_{topics.id}").set_value(["travel"]).run()   # doing what the guidance says
    assert not at.exception and not at.error
    assert not any(i.value.startswith("Nothing is marked OOD yet") for i in at.info)
    assert not at.button(key="ood_run").disabled

    # an unlabelled corpus alone: the guidance says what to add
    db3 = connect(app_env)
    save_corpus(db3, ensure_session(db3, "u"), labelled_corpus("lonely", labels=("weather",), with_labels=False))
    at = open_page("u")
    assert not at.exception and not at.error
    assert any("no other corpus is left" in i.value for i in at.info) and at.button(key="ood_run").disabled


def test_page_runs_the_corpora_test_source(app_env):
    """ID test from a second corpus, OOD from a third: every in-distribution document trains."""
    from embedlab.jobs import list_jobs, wait_for
    from storage import connect

    db = connect(app_env)
    sid = ensure_session(db, "s")
    train = save_corpus(db, sid, labelled_corpus("train", labels=("weather", "music", "banking")))
    id_test = save_corpus(db, sid, Corpus(name="id-test", source="test",
                                          texts=topic_texts("weather", 10, seed=7) + topic_texts("music", 10, seed=7),
                                          doc_ids=[str(i) for i in range(20)], labels=["weather"] * 10 + ["music"] * 10,
                                          label_col="label"))
    outliers = save_corpus(db, sid, labelled_corpus("outliers", labels=("oos",), with_labels=False))
    at = open_page()
    at.selectbox(key="ood_id_corpus").set_value("train").run()
    at.selectbox(key="ood_model").set_value("tfidf-svd")
    at.radio(key="ood_id_test_from").set_value("corpus").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="ood_id_test_corpus").options == ["id-test", "outliers"]
    at.selectbox(key="ood_id_test_corpus").set_value("id-test").run()
    ood_pick = at.selectbox(key="ood_test_corpus")
    assert ood_pick.options == ["(none)", "outliers"]                         # not the ID test corpus again
    assert at.button(key="ood_run").disabled                                  # nothing OOD yet: guidance
    assert any(i.value.startswith("Nothing is marked OOD yet") for i in at.info)
    ood_pick.set_value("outliers").run()
    assert not at.exception and not at.error
    assert any(c.value.startswith(f"Training: 90 documents · ID test: 20 (every document of "
                                  f"“{display_text('id-test')}”) · OOD test: 30") for c in at.caption)
    for name in ("mahalanobis", "rmd", "energy", "mcm", "vim", "lof", "iforest", "prototypes"):
        at.checkbox(key=f"ood_use_{name}_True").uncheck()
    at.run()
    at.button(key="ood_run").click().run()
    assert not at.exception, at.exception
    job = wait_for(db, list_jobs(db, session_id=sid, kind="ood")[0].id, timeout=60)
    assert job.status == "done", job.message
    assert job.params["test"] == "corpora" and job.params["id_test_corpus_id"] == id_test.id
    assert job.params["test_corpus_id"] == outliers.id and job.params["id_corpus_id"] == train.id
    at.run()
    assert not at.exception, at.exception
    run = load_run(db, list_runs(db, sid, "ood")[0].id)
    assert run.details["n_train"] == 90 and run.details["n_id"] == 20 and run.details["n_ood"] == 30
    setup = next(df.value for df in at.dataframe if "in-distribution" in df.value.columns)
    assert setup["ID test"].iloc[0].startswith("every document of id-test") and "held out" not in setup.columns
