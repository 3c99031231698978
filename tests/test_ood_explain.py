"""Why is a document OOD (issue 14, item 4): the engine (`embedlab.ood.explain`) against brute force on small
synthetic data, against a real stored run (the rebuilt training set is the one the detectors saw), and the Atlas's
"🚨 Why OOD" view through AppTest."""
from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest

from components.ood_plots import score_colour_range
from embedlab.ood.explain import (
    IdReference,
    RunTraining,
    class_means,
    detector_readings,
    explain,
    id_reference,
    load_run_training,
    nearest_class_distance,
    nearest_classes,
    nearest_training,
    percentile_among,
    rows_tested_on,
    run_corpora,
    verdict,
)
from embedlab.ood.run_reading import id_quantile_threshold
from tests.builders import open_page, stored_corpus, use_copy_of, use_database
from tests.map_support import GREY, assert_numeric, click, legend, maps, ringed

METHODS = ["knn", "mahalanobis", "msp", "lof", "prototypes"]
KNN_K = 3
TOPICS = {
    "weather": ["rain", "sunny", "forecast", "cloudy", "umbrella", "temperature"],
    "music": ["song", "playlist", "guitar", "album", "concert", "melody"],
    "banking": ["account", "balance", "transfer", "deposit", "loan", "savings"],
    "oos": ["zebra", "volcano", "knitting", "galaxy", "origami", "dinosaur"],
}


def unit(X):
    X = np.asarray(X, dtype=np.float64)
    return X / np.linalg.norm(X, axis=-1, keepdims=True)


# --- brute force on synthetic data -----------------------------------------------------------------------------


@pytest.fixture
def synthetic():
    rng = np.random.default_rng(7)
    X = unit(rng.normal(size=(40, 6)))
    labels = [["a", "b", "c"][i % 3] for i in range(40)]
    return X, labels, unit(rng.normal(size=6))


def test_nearest_training_documents_are_the_brute_force_ones(synthetic):
    X, _, q = synthetic
    sims = []
    for i in range(len(X)):  # a loop over the training rows
        sims.append((-sum(float(a) * float(b) for a, b in zip(X[i], q)), i))
    want = sorted(sims)[:10]
    pos, got = nearest_training(X, q * 3.0, k=10)  # the query need not be unit length
    assert pos.tolist() == [i for _, i in want]
    assert np.allclose(got, [-s for s, _ in want])
    assert list(got) == sorted(got, reverse=True)
    assert len(nearest_training(X, q, k=100)[0]) == len(X)


def test_nearest_training_breaks_ties_by_position():
    X = unit([[1, 0], [0, 1], [1, 0], [1, 0]])
    assert nearest_training(X, np.array([1.0, 0.0]), k=3)[0].tolist() == [0, 2, 3]


def test_class_means_are_renormalised_means_of_normalised_vectors(synthetic):
    X, labels, q = synthetic
    raw = X * np.arange(1, len(X) + 1)[:, None]  # rows of any length: normalised first
    classes, means = class_means(raw, labels)
    assert classes == ["a", "b", "c"]
    for c, m in zip(classes, means):
        members = [X[i] for i in range(len(X)) if labels[i] == c]
        by_hand = sum(members) / len(members)
        assert np.allclose(m, by_hand / np.linalg.norm(by_hand))
    dist = {c: 1 - float(m @ q) for c, m in zip(classes, means)}
    want = sorted(dist.items(), key=lambda kv: kv[1])[:2]
    got = nearest_classes(classes, means, q, k=2)
    assert [c for c, _ in got] == [c for c, _ in want] and np.allclose([d for _, d in got], [d for _, d in want])
    assert np.isclose(nearest_class_distance(means, q[None, :])[0], want[0][1])


def test_class_means_leave_out_documents_without_labels(synthetic):
    X, labels, _ = synthetic
    classes, means = class_means(X, [None if i < 3 else v for i, v in enumerate(labels)])
    members = [X[i] for i in range(3, len(X)) if labels[i] == "a"]
    assert np.allclose(means[0], unit(sum(members)))
    assert class_means(X, None)[0] == [] and class_means(X, [None] * len(X))[0] == []
    assert nearest_classes([], np.zeros((0, 6)), X[0]) == []


def test_percentiles_and_flags_count_the_id_test_scores():
    rng = np.random.default_rng(1)
    is_ood = np.array([False] * 30 + [True] * 10)
    scores = {"good": np.r_[rng.normal(0, 1, 30), rng.normal(3, 1, 10)], "bad": rng.normal(0, 1, 40)}
    metrics = {"good": {"auroc": 0.9}, "bad": {"auroc": 0.5}}
    for position in (0, 5, 31, 39):
        readings = detector_readings(scores, is_ood, position, metrics=metrics)
        assert [r.detector for r in readings] == ["good", "bad"]  # best AUROC first
        for r in readings:
            s = scores[r.detector]
            ids = [v for v, o in zip(s, is_ood) if not o]
            assert r.score == s[position]
            assert r.id_percentile == pytest.approx(100 * sum(v <= s[position] for v in ids) / len(ids))
            t = id_quantile_threshold(s, is_ood)
            assert r.threshold == t and r.flagged == (s[position] >= t)
            assert sum(v < t for v in ids) >= 0.95 * len(ids)  # the FPR95 point accepts 95 % of ID
    assert percentile_among(1.0, [0, 1, 2, 3]) == 50.0


def test_verdict_names_the_case_in_plain_words():
    ref = IdReference(class_distance=0.35, top_similarity=0.6, n=100)
    neighbours = [{"cosine": 0.3, "label": "transfer"}] * 10
    far = verdict(neighbours, [("transfer", 0.62), ("balance", 0.7)], [], ref)
    assert far == ("Far from every training class: nearest class mean 'transfer' at cosine distance 0.62, "
                   "ID test documents are typically within 0.35")
    assert verdict(neighbours, [("transfer", 0.2)], [], ref).startswith("Within the range of class 'transfer'")
    mixed = [{"cosine": 0.9, "label": v} for v in "aaaabbbccc"]
    assert verdict(mixed, [("a", 0.2)], [], ref).startswith("Between classes: its 10 nearest training documents")
    near = [{"cosine": 0.9, "label": "a"}] * 10
    assert verdict(near, [("a", 0.2)], [], ref).startswith("Looks in-distribution")
    assert verdict(near, [], [], IdReference(None, 0.6, 10)).startswith("Close to the training documents")


def test_the_id_reference_says_when_it_is_a_sample():
    """Why OOD read "95 % of the run's 2,000 ID test documents" for a run of 6,750: 2,000 was the sample."""
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    training = RunTraining(rows=np.arange(10), labels=["a", "b"] * 5, vectors=vectors[:10], test_vectors=vectors[10:],
                           id_corpus=None, model="m", matches_run=True)
    is_ood = [False] * 30 + [True] * 10
    _, means = class_means(training.vectors, training.labels)
    sampled = id_reference(training, is_ood, means, limit=20)
    assert (sampled.n, sampled.of) == (20, 30)
    assert sampled.population == "a seeded sample of 20 of the run's 30 ID test documents"
    whole = id_reference(training, is_ood, means)
    assert (whole.n, whole.of) == (30, 30) and whole.population == "the run's 30 ID test documents"
    assert IdReference(0.3, 0.6, 2000, 6750).population == \
        "a seeded sample of 2,000 of the run's 6,750 ID test documents"


# --- a real stored run -----------------------------------------------------------------------------------------


def topic_texts(label: str, n: int) -> list[str]:
    rng = np.random.default_rng(sum(map(ord, label)))
    words = TOPICS[label]
    return [" ".join(rng.choice(words, size=4)) + (f" please {label} {i}" if label != "oos" else f" item {i}")
            for i in range(n)]


def build_db(path, *, with_run: bool = True, other_corpus: bool = False):
    """Session "s": corpus "intents" (4 x 24 documents, "oos" among them), tfidf-svd, a 2-D PCA map, an OOD
    holdout run with "oos" as OOD (and, with `other_corpus`, a run testing another corpus "strange" as OOD)."""
    import embedlab.tasks  # noqa: F401 - registers the job kinds
    from embedlab.embedding.cache import compute_embedding
    from embedlab.jobs import run_job
    from storage import connect

    db = connect(path)
    texts, labels = [], []
    for label in TOPICS:
        texts += topic_texts(label, 24)
        labels += [label] * 24
    sid, info = stored_corpus(db, texts, labels, name="intents", doc_ids=[f"d{i}" for i in range(len(texts))])
    compute_embedding(db, texts, "tfidf-svd", content_hash=info.content_hash, corpus_id=info.id)
    run_job(db, "project", {"corpus_id": info.id, "model": "tfidf-svd", "method": "pca", "n_components": 2},
            session_id=sid)
    params = {"session_id": sid, "model": "tfidf-svd", "id_corpus_id": info.id, "test": "holdout",
              "fraction": 0.3, "seed": 0, "ood_labels": ["oos"], "methods": METHODS, "params": {"knn": {"k": KNN_K}}}
    runs = [int(run_job(db, "ood", params, session_id=sid).split(":")[1])] if with_run else []
    if other_corpus:
        _, other = stored_corpus(db, [f"volcano galaxy {w} thing {i}" for i, w in
                                      enumerate(["music", "rain", "loan", "zebra"] * 5)], name="strange")
        runs.append(int(run_job(db, "ood", {**params, "test": "corpus", "test_corpus_id": other.id,
                                             "ood_labels": []}, session_id=sid).split(":")[1]))
    db.close()
    return path, info, runs


@pytest.fixture(scope="module")
def explain_db(tmp_path_factory):
    return build_db(tmp_path_factory.mktemp("ood-explain") / "template.sqlite", other_corpus=True)


@pytest.fixture
def stored_run(explain_db, tmp_path):
    from embedlab.runs import load_run
    from storage import connect

    template, info, runs = explain_db
    path = tmp_path / "embedlab.sqlite"
    shutil.copy(template, path)
    db = connect(path)
    yield db, info, [load_run(db, r) for r in runs]
    db.close()


def test_rebuilt_training_set_is_the_one_the_detectors_saw(stored_run):
    db, info, (run, _) = stored_run
    training = load_run_training(db, run)
    d = run.details
    assert training.matches_run and len(training.rows) == d["n_train"] == 3 * (24 - round(0.3 * 24))
    test_rows = {int(r) for c, r in d["test_idx"] if int(c) == info.id}
    assert not test_rows & set(training.rows.tolist())
    assert sorted(set(training.labels)) == ["banking", "music", "weather"]
    for position in range(len(d["is_ood"])):
        found = explain(training, run, position)
        rows = [n["row"] for n in found.neighbours]
        assert len(rows) == 10 and not set(rows) & test_rows  # never a test document
        # every detector's score is the run's stored score for this document
        assert {r.detector: r.score for r in found.readings} == {m: d["scores"][m][position] for m in METHODS}
        # knn scores 1 - (k-th nearest cosine): the rebuilt training set and vectors are the detector's
        assert d["scores"]["knn"][position] == pytest.approx(1 - found.neighbours[KNN_K - 1]["cosine"], abs=1e-5)
        assert len(found.classes) == 2 and found.classes[0][1] <= found.classes[1][1]


def test_a_corpus_tested_as_ood_is_explained_in_the_training_space(stored_run):
    db, info, (_, run) = stored_run
    stored = run_corpora(db, run)
    strange = next(c for c in stored.values() if c.name == "strange")
    positions, rows = rows_tested_on(run, stored, strange.id)
    assert rows.tolist() == list(range(20)) and all(run.details["is_ood"][p] for p in positions)
    assert len(rows_tested_on(run, stored, info.id)[0]) == run.details["n_id"]
    training = load_run_training(db, run)
    assert training.matches_run and training.id_corpus.id == info.id
    found = explain(training, run, int(positions[0]))
    assert run.details["scores"]["knn"][positions[0]] == pytest.approx(
        1 - found.neighbours[KNN_K - 1]["cosine"], abs=1e-5)


def test_a_duplicated_session_resolves_the_run_to_its_own_corpora(stored_run):
    """Runs keep the ids of the corpora they ran on; another copy of the documents is found by content."""
    db, info, (run, _) = stored_run
    moved = replace(run, params={**run.params, "id_corpus_id": 999},
                    details={**run.details, "corpora": {"999": run.details["corpora"][str(info.id)]},
                             "test_idx": [[999, r] for _, r in run.details["test_idx"]]})
    assert run_corpora(db, moved)[999].id == info.id
    assert load_run_training(db, moved).matches_run


# --- the Atlas view ----------------------------------------------------------------------------------------------

PAGE = "pages/atlas.py"
TAB = "🚨 Why OOD"


@pytest.fixture(scope="module")
def atlas_ood_db(tmp_path_factory):
    return build_db(tmp_path_factory.mktemp("atlas-ood") / "template.sqlite")


@pytest.fixture
def atlas_ood_env(atlas_ood_db, tmp_path, monkeypatch):
    template, info, runs = atlas_ood_db
    path = use_copy_of(template, tmp_path, monkeypatch)
    from embedlab.runs import load_run
    from storage import connect

    db = connect(path)
    run = load_run(db, runs[0])
    db.close()
    return path, info, run


def flagged_ood(run: dict, method: str) -> list[int]:
    d = run.details
    s = np.asarray(d["scores"][method])
    t = id_quantile_threshold(s, d["is_ood"])
    return [i for i in np.argsort(-s, kind="stable") if d["is_ood"][i] and s[i] >= t]


def test_why_ood_tab_explains_a_flagged_document(atlas_ood_env):
    path, info, run = atlas_ood_env
    d = run.details
    best = max(run.metrics, key=lambda m: run.metrics[m]["auroc"])
    position = flagged_ood(run, best)[0]
    row = int(d["test_idx"][position][1])
    at = open_page(PAGE, session="s", state={"atlas_tab": TAB, "atlas_focus": row})
    assert not at.exception, at.exception
    assert at.selectbox(key="atlas_oodx_detector_%d" % run.id).value == best  # best AUROC by default
    threshold = at.slider(key=f"atlas_oodx_threshold_{run.id}_{best}").value
    assert threshold == pytest.approx(id_quantile_threshold(d["scores"][best], d["is_ood"]))
    assert {m.label for m in at.metric} >= {"OOD caught (TPR)", "ID flagged (FPR)"}

    detectors = next(t.value for t in at.dataframe if "detector" in t.value.columns)
    shown = dict(zip(detectors["detector"], detectors["score"]))
    assert shown == {m: d["scores"][m][position] for m in METHODS}
    assert detectors.set_index("detector").loc[best, "flagged"].endswith("yes")

    # the nearest class mean, by hand from the rebuilt training rows
    from embedlab.embedding.space import EmbeddingSpace
    from storage import connect
    from storage.corpora import load_labels

    db = connect(path)
    try:
        X = unit(EmbeddingSpace.for_corpus(db, info.id, "tfidf-svd").documents())
        labels = load_labels(db, info.id)
    finally:
        db.close()
    test_rows = {int(r) for _, r in d["test_idx"]}
    train = [i for i in range(len(labels)) if i not in test_rows]
    means = {c: unit(sum(X[i] for i in train if labels[i] == c)) for c in {labels[i] for i in train}}
    nearest = min(means, key=lambda c: 1 - means[c] @ X[row])
    classes = next(t.value for t in at.dataframe if "class" in t.value.columns)
    assert classes["class"].iloc[0] == nearest
    assert classes["cosine distance"].iloc[0] == pytest.approx(1 - means[nearest] @ X[row], abs=1e-6)
    neighbours = next(t.value for t in at.dataframe if "cosine" in t.value.columns and "rank" in t.value.columns)
    assert len(neighbours) == 10 and not set(neighbours["doc"]) & test_rows
    assert any(("far from" in m.value.lower() or "no training document" in m.value.lower()) for m in at.warning)

    layer = maps(at)["atlas_oodx_map"]
    scores = np.asarray(d["scores"][best])
    rows = [int(r) for _, r in d["test_idx"]]
    values = np.full(info.n_docs, np.nan)
    values[rows] = scores
    # the test documents in the colour of the detector's score, the rest grey and named so
    assert_numeric(layer, f"{best} score", values, *score_colour_range(scores))
    assert legend(layer)[f"not tested ({info.n_docs - len(rows)})"] == GREY
    # ID and OOD test documents say which they are (the Plotly map drew them as two marker symbols)
    kinds = {r: "OOD test" if ood else "ID test" for r, ood in zip(rows, d["is_ood"])}
    assert all(layer.tag_of(i) == kinds.get(i, "not tested") for i in range(info.n_docs))
    flagged = [r for r, sc in zip(rows, scores) if sc >= threshold]
    (name, ring), = ringed(layer).items()                    # the flagged documents, ringed
    assert name == f"flagged (score ≥ {threshold:.4g})" and sorted(ring) == sorted(flagged) and row in ring
    assert layer.layer["focus"] == row and "★ focus" in legend(layer)
    other = next(r for r in flagged if r != row)
    click(at, "atlas_oodx_map", other)                      # a click on a flagged document explains it
    assert not at.exception, at.exception
    assert at.session_state["atlas_focus"] == other and maps(at)["atlas_oodx_map"].layer["focus"] == other


def plotly_array(value) -> np.ndarray:
    """A Plotly JSON array: a list, or {"dtype", "bdata"} (base64 of the raw values)."""
    import base64

    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value)


def test_why_ood_tab_without_focus_lists_the_flagged_documents(atlas_ood_env):
    _, _, run = atlas_ood_env
    at = open_page(PAGE, session="s", state={"atlas_tab": TAB, "atlas_focus": None})
    assert not at.exception, at.exception
    table = next(t.value for t in at.dataframe if "truth" in t.value.columns)
    best = max(run.metrics, key=lambda m: run.metrics[m]["auroc"])
    s = np.asarray(run.details["scores"][best])
    assert table["score"].is_monotonic_decreasing
    assert table["score"].min() >= id_quantile_threshold(s, run.details["is_ood"])
    assert any("Focus a test document" in c.value for c in at.caption)
    # a document that trained the detectors is not explained
    train_row = next(i for i in range(96) if i not in {int(r) for _, r in run.details["test_idx"]})
    at.session_state["atlas_focus"] = train_row
    at.run()
    assert not at.exception and any("not a test document" in c.value for c in at.caption)


def test_why_ood_tab_without_a_run_says_how_to_make_one(tmp_path, monkeypatch):
    path, _, _ = build_db(tmp_path / "bare.sqlite", with_run=False)
    use_database(path, monkeypatch)
    at = open_page(PAGE, session="s", state={"atlas_tab": TAB})
    assert not at.exception, at.exception
    assert any("No OOD run tests documents" in c.value and "OOD page" in c.value for c in at.caption)


def test_why_ood_tab_on_a_corpus_tested_as_ood_explains_with_the_training_corpus(explain_db, tmp_path,
                                                                                monkeypatch):
    """The Atlas of the corpus a run tested as OOD: its documents are coloured and explained by their nearest
    documents of the in-distribution corpus (another corpus than the map's)."""
    from embedlab.embedding.cache import compute_embedding
    from embedlab.jobs import run_job
    from embedlab.runs import load_run
    from storage import connect
    from storage.corpora import list_corpora, load_texts

    template, info, runs = explain_db
    path = tmp_path / "embedlab.sqlite"
    shutil.copy(template, path)
    db = connect(path)
    strange = next(c for c in list_corpora(db, info.session_id) if c.name == "strange")
    compute_embedding(db, load_texts(db, strange.id), "tfidf-svd", content_hash=strange.content_hash,
                      corpus_id=strange.id)
    run_job(db, "project", {"corpus_id": strange.id, "model": "tfidf-svd", "method": "pca", "n_components": 2},
            session_id=info.session_id)
    run = load_run(db, runs[1])
    db.close()
    use_database(path, monkeypatch)
    at = open_page(PAGE, session="s", state={"atlas_corpus": "strange", "atlas_tab": TAB})
    at.session_state["atlas_focus"] = 0
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="atlas_oodx_run").value == run.id  # the holdout run does not test "strange"
    position = next(i for i, (c, r) in enumerate(run.details["test_idx"]) if c == strange.id and r == 0)
    detectors = next(t.value for t in at.dataframe if "detector" in t.value.columns)
    assert dict(zip(detectors["detector"], detectors["score"])) == {
        m: run.details["scores"][m][position] for m in METHODS}
    neighbours = next(t.value for t in at.dataframe if "cosine" in t.value.columns and "rank" in t.value.columns)
    intents = connect(path)
    texts = load_texts(intents, info.id)
    intents.close()
    held_out = {r for c, r in run.details["test_idx"] if c == info.id}
    assert len(neighbours) == 10 and not set(neighbours["doc"]) & held_out
    assert all(t[:30] == texts[r][:30] for t, r in zip(neighbours["text"], neighbours["doc"]))  # intents' texts
    assert any("(in intents," in m.value for m in at.markdown)


def test_the_atlas_colours_the_main_map_by_an_ood_runs_score(atlas_ood_env):
    """DESIGN's Atlas "colour by OOD score": each run testing this corpus offers its best detector's score; tested
    documents carry the run's stored score, untested (training) ones are grey, not the lowest colour."""
    path, info, run = atlas_ood_env
    d = run.details
    best = max(run.metrics, key=lambda m: run.metrics[m]["auroc"])
    choice = f"OOD score: run #{run.id} · {best}"
    at = open_page(PAGE, session="s", state={"atlas_colour": choice})
    assert not at.exception, at.exception
    assert choice in at.selectbox(key="atlas_colour").options
    main = maps(at)["atlas_map"]
    tested = {int(r): float(s) for (_, r), s in zip(d["test_idx"], d["scores"][best])}
    values = [tested.get(i) for i in range(info.n_docs)]       # None: not tested
    assert_numeric(main, f"{best} OOD score", values)          # tested: the bin of the stored score; else grey
    assert np.flatnonzero(main.codes == len(main.layer["palette"]) - 1).tolist() == sorted(
        set(range(info.n_docs)) - set(tested))
    assert legend(main)[f"no {best} OOD score ({info.n_docs - len(tested)})"] == GREY


def test_the_ood_page_opens_its_run_on_the_atlas(atlas_ood_env):
    """"Open this run on the Atlas": the Why OOD tab, on the corpus holding the run's OOD documents, with the run and
    the page's detector picked."""
    path, info, run = atlas_ood_env
    rid = run.id
    at = open_page("pages/ood.py", session="s", state={"share_linked_run": {"ood": rid}}, timeout=120)
    assert not at.exception, at.exception
    method = at.selectbox(key=f"ood_detector_{rid}").options[1]      # not the default (the best AUROC)
    at.selectbox(key=f"ood_detector_{rid}").select(method).run()
    at.button(key=f"ood-atlas-{rid}").click().run()
    assert not at.exception, at.exception
    assert at.session_state["atlas_tab"] == "🚨 Why OOD" and at.selectbox(key="atlas_corpus").value == info.name
    assert at.selectbox(key="atlas_oodx_run").value == rid
    assert at.selectbox(key=f"atlas_oodx_detector_{rid}").value == method
