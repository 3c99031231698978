"""OOD detectors, metrics and the CLINC150 loader on small synthetic data where the answer is known."""
from __future__ import annotations

import json

import numpy as np
import pytest

from embedlab.errors import InputError
from embedlab.ood import REGISTRY, describe_methods, get_detector, method_names, parse_methods, unavailable_reason
from embedlab.ood.clinc import holdout, load_clinc, split_by_labels
from embedlab.ood.evaluate import (aupr_in, aupr_out, auroc, auroc_interval, fpr95, fpr95_openood, ood_metrics,
                                   roc_points, weighted_auroc)
from embedlab.registry import Param

ALL = ["knn", "mahalanobis", "rmd", "msp", "energy", "mcm", "vim", "lof", "iforest", "prototypes"]
LABELS = ["book_flight", "play_music", "weather"]


@pytest.fixture(scope="module")
def blobs():
    """ID: three well-separated Gaussian clusters in 16-d; OOD: a fourth cluster far from all three."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16)) * 4
    def draw(c, n): return centres[c] + rng.normal(size=(n, 16))
    X_train = np.vstack([draw(c, 60) for c in range(3)])
    y_train = np.repeat(LABELS, 60)
    X_test = np.vstack([draw(c, 20) for c in range(3)] + [draw(3, 40)])
    is_ood = np.r_[np.zeros(60, bool), np.ones(40, bool)]
    return X_train, y_train, X_test, is_ood, centres


def fake_prompt_embedder(centres):
    """Embeds 'book flight' (etc.) to its cluster centre: what a good model would do for label names."""
    words = [label.replace("_", " ") for label in LABELS]
    return lambda texts: np.stack([centres[words.index(t)] for t in texts])


def test_registry_lists_the_ten_design_methods():
    assert method_names() == ALL
    for record in describe_methods():
        cls = REGISTRY[record["name"]]
        assert cls.description and "\n" not in cls.description
        assert all(isinstance(p, Param) for p in cls.param_specs) and isinstance(cls.needs_labels, bool)
        assert record["params"] == cls.param_specs
    assert {n for n in ALL if REGISTRY[n].needs_labels} == {"mahalanobis", "rmd", "msp", "energy", "mcm", "vim",
                                                          "prototypes"}
    assert unavailable_reason("rmd", has_labels=False).startswith("needs labels")
    assert unavailable_reason("knn", has_labels=False) is None


def test_unknown_method_names_the_valid_ones():
    with pytest.raises(InputError, match="unknown OOD method.*nope.*valid methods: knn, mahalanobis"):
        parse_methods("knn,nope")
    with pytest.raises(InputError, match="unknown OOD method"):
        get_detector("odin")
    with pytest.raises(InputError, match="unknown parameter.*kk.*valid: k"):
        get_detector("knn", kk=3)
    assert parse_methods(" knn, msp ,knn") == ["knn", "msp"]


@pytest.mark.parametrize("name", ALL)
def test_detector_separates_far_ood_and_flipping_flips_auroc(name, blobs):
    X_train, y_train, X_test, is_ood, centres = blobs
    detector = get_detector(name)
    detector.fit(X_train, y_train, embed_fn=fake_prompt_embedder(centres))
    scores = detector.score(X_test)
    assert scores.shape == (len(X_test),) and np.isfinite(scores).all()
    # every method here: 1.000, the lowest OOD score 0.48-1.75 standard deviations above the highest ID score;
    # iforest and prototypes seeds 0-9: 1.000; random scores: 0.43-0.51
    assert auroc(scores, is_ood) > 0.95
    assert auroc(scores, ~is_ood) == pytest.approx(1 - auroc(scores, is_ood))


@pytest.mark.parametrize("name", [n for n in ALL if REGISTRY[n].needs_labels])
def test_label_methods_refuse_a_set_without_labels(name, blobs):
    with pytest.raises(InputError, match="needs labels"):
        get_detector(name).fit(blobs[0], None, embed_fn=lambda t: np.ones((len(t), 16)))


def test_knn_is_the_kth_cosine_distance():
    X_train = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    q = np.array([[2.0, 0.0]])
    assert get_detector("knn").fit(X_train).score(q)[0] == pytest.approx(0.0)
    assert get_detector("knn", k=2).fit(X_train).score(q)[0] == pytest.approx(1 - np.sqrt(0.5))
    assert get_detector("knn", k=3).fit(X_train).score(q)[0] == pytest.approx(1.0)


def test_rmd_is_class_md_minus_class_agnostic_md(blobs):
    X_train, y_train, X_test, _, _ = blobs
    md = get_detector("mahalanobis", eps=0).fit(X_train, y_train).score(X_test)
    rmd = get_detector("rmd", eps=0).fit(X_train, y_train).score(X_test)
    centred = X_train - X_train.mean(0)
    prec = np.linalg.inv(centred.T @ centred / len(X_train))
    d = X_test - X_train.mean(0)
    md0 = np.einsum("ij,jk,ik->i", d, prec, d)
    np.testing.assert_allclose(rmd, md - md0, rtol=1e-6, atol=1e-6)


def test_vim_centres_and_dimension(blobs):
    X_train, y_train, X_test, is_ood, _ = blobs
    for centre in ("origin", "mean"):
        scores = get_detector("vim", dim=4, centre=centre).fit(X_train, y_train).score(X_test)
        assert auroc(scores, is_ood) > 0.95  # both centres, data seeds 0-9 here: 1.000; random scores: 0.43-0.51
    with pytest.raises(InputError, match="dim must be between"):
        get_detector("vim", dim=16).fit(X_train, y_train)
    with pytest.raises(InputError, match="centre must be"):
        get_detector("vim", centre="median").fit(X_train, y_train)
    assert get_detector("vim", dim=0).fit(X_train, y_train)._null.shape == (16, 8)  # reference rule: half
    assert get_detector("vim").fit(X_train, y_train)._null.shape == (16, 8)  # default 16, capped at half


def test_mcm_prompts_use_words_and_template(blobs):
    X_train, y_train, _, _, centres = blobs
    seen = []
    def embed(texts):
        seen.extend(texts)
        return np.ones((len(texts), 16))
    get_detector("mcm", template="a question about {label}").fit(X_train, y_train, embed_fn=embed)
    assert seen == ["a question about book flight", "a question about play music", "a question about weather"]
    with pytest.raises(InputError, match="needs the embedding model"):
        get_detector("mcm").fit(X_train, y_train)
    # zero-shot: label names alone are enough
    det = get_detector("mcm").fit(X_train[:0].reshape(0, 16), None, label_names=LABELS,
                                  embed_fn=fake_prompt_embedder(centres))
    scores = det.score(centres)
    # a label's own centre: minus the softmax (T = 1) of its cosine to its own prompt, the top one
    unit = centres[:3] / np.linalg.norm(centres[:3], axis=1, keepdims=True)
    cos = unit @ unit.T
    np.testing.assert_allclose(scores[:3], -np.exp(1.0 - np.log(np.exp(cos).sum(1))), rtol=1e-6)
    # the fourth centre, named by no label, is the most OOD: data seeds 0-9 here, 0.02-0.22 above the label centres
    # (0.22 on this seed); a detector returning noise orders it first 1 time in 4
    assert scores[3] > scores[:3].max()


# ---- metrics ---------------------------------------------------------------------------------------------------

def test_auroc_and_aupr_by_hand():
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    is_ood = np.array([False, False, True, True])
    assert auroc(scores, is_ood) == pytest.approx(0.75)  # 3 of 4 (OOD, ID) pairs ordered right
    # OpenOOD's trapezoid under (recall, precision) = (0,1) (.5,1) (.5,.5) (1,2/3): 0.5 + 0.5·(2/3 + 1/2)/2
    assert aupr_out(scores, is_ood) == pytest.approx(19 / 24)
    assert aupr_in(scores, is_ood) == pytest.approx(19 / 24)
    assert auroc([0.5, 0.5], [False, True]) == pytest.approx(0.5)  # ties count half


def test_the_two_fpr95_readings_differ_as_designed():
    # 20 ID scores 1..20; 20 OOD scores: two hide among ID-like low scores (0 and 0.5), 18 are high (21..38).
    id_scores = np.arange(1, 21, dtype=float)
    ood_scores = np.r_[0.0, 0.5, np.arange(21, 39, dtype=float)]
    scores = np.r_[id_scores, ood_scores]
    is_ood = np.r_[np.zeros(20, bool), np.ones(20, bool)]
    # Hendrycks/KNN: accept ID with score ≤ 19 (19/20 = 95 % of ID) → OOD accepted: 0 and 0.5 → 2/20
    assert fpr95(scores, is_ood) == pytest.approx(0.10)
    # OpenOOD: to catch 19/20 of OOD, flag score ≥ 0.5 → every ID sample is flagged
    assert fpr95_openood(scores, is_ood) == pytest.approx(1.0)
    # and the other way round: OOD all high except that ID has one very high outlier
    id_scores2 = np.r_[np.arange(1, 20, dtype=float), 100.0]
    ood_scores2 = np.arange(50, 70, dtype=float)
    s2, o2 = np.r_[id_scores2, ood_scores2], is_ood
    assert fpr95(s2, o2) == pytest.approx(0.0)          # threshold 19 accepts no OOD
    assert fpr95_openood(s2, o2) == pytest.approx(0.05)  # flag ≥ 51: only the ID outlier 100


def test_metrics_are_bounded_and_perfect_separation_is_perfect():
    scores = np.r_[np.zeros(10), np.ones(5)]
    is_ood = np.r_[np.zeros(10, bool), np.ones(5, bool)]
    m = ood_metrics(scores, is_ood)
    assert m["auroc"] == 1 and m["fpr95"] == 0 and m["fpr95_openood"] == 0
    assert m["aupr_in"] == pytest.approx(1) and m["aupr_out"] == pytest.approx(1)
    rng = np.random.default_rng(1)
    m = ood_metrics(rng.normal(size=300), rng.random(300) < 0.3)
    assert all(0 <= m[k] <= 1 for k in ("auroc", "fpr95", "fpr95_openood", "aupr_in", "aupr_out"))
    with pytest.raises(InputError, match="both"):
        auroc([1.0, 2.0], [True, True])


def test_weighted_auroc_matches_sklearn_with_sample_weights():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    scores = rng.integers(0, 8, 200).astype(float)  # many ties
    is_ood = rng.random(200) < 0.4
    w = rng.integers(0, 4, size=(3, 200)).astype(float)
    got = weighted_auroc(scores, is_ood, w)
    for row, value in zip(w, got):
        assert value == pytest.approx(roc_auc_score(is_ood, scores, sample_weight=row))
    assert weighted_auroc(scores, is_ood, np.ones(200))[0] == pytest.approx(roc_auc_score(is_ood, scores))


def test_auroc_interval_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(3)
    is_ood = rng.random(2000) < 0.2
    scores = rng.normal(size=2000) + is_ood
    lo, hi = auroc_interval(scores, is_ood, seed=7)
    # width, data seeds 3-12 x bootstrap seeds 0, 1, 7 here: 0.042-0.058, the estimate at least 0.019 inside each
    # end; the same bootstrap on 100 rows (a resample of the wrong size): 0.19-0.21
    assert 0 <= lo < auroc(scores, is_ood) < hi <= 1 and hi - lo < 0.1
    assert auroc_interval(scores, is_ood, seed=7) == [lo, hi]


def test_roc_points_for_plotting():
    rng = np.random.default_rng(4)
    is_ood = rng.random(3000) < 0.3
    pts = roc_points(rng.normal(size=3000) + is_ood, is_ood, max_points=100)
    assert len(pts["fpr"]) <= 101 and pts["fpr"][0] == 0 and pts["tpr"][-1] == 1
    assert np.all(np.diff(pts["fpr"]) >= 0)


# ---- CLINC150 and test-set builders ------------------------------------------------------------------------------

def _clinc(tmp_path, **overrides):
    data = {"train": [["book me a flight", "book_flight"], ["play a song", "play_music"]],
            "val": [["fly me to rome", "book_flight"]],
            "test": [["a flight to paris", "book_flight"], ["some jazz please", "play_music"]],
            "oos_train": [["what is love", "oos"]], "oos_val": [["how tall is it", "oos"]],
            "oos_test": [["tell me a joke", "oos"]]}
    data.update(overrides)
    path = tmp_path / "data_full.json"
    path.write_text(json.dumps(data))
    return path


def test_clinc_loader_reads_every_split(tmp_path):
    data = load_clinc(_clinc(tmp_path))
    assert set(data) == {"train", "val", "test", "oos_train", "oos_val", "oos_test"}
    assert data["train"].texts == ["book me a flight", "play a song"]
    assert data["oos_test"].labels == ["oos"]
    assert load_clinc(tmp_path)["test"].labels == ["book_flight", "play_music"]  # a folder holding data_full.json


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    (json.dumps({"train": [], "test": []}), "missing split.*oos_test"),
    (json.dumps({"train": {"a": 1}, "test": [], "oos_test": []}), "'train' must be a list"),
    (json.dumps({"train": [["ok", "x"], ["only text"]], "test": [], "oos_test": []}), "'train', item 2"),
    (json.dumps({"train": [["ok", 3]], "test": [], "oos_test": []}), "item 1"),
])
def test_clinc_loader_rejects_a_malformed_file(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as err:
        load_clinc(path)
    assert "bad.json" in str(err.value)
    with pytest.raises(InputError, match="no such file"):
        load_clinc(tmp_path / "missing.json")


def test_split_by_labels_and_holdout():
    texts = [f"t{i}" for i in range(12)]
    labels = ["a", "b", "oos"] * 4
    id_part, ood_part = split_by_labels(texts, labels, ["oos"])
    assert ood_part.texts == ["t2", "t5", "t8", "t11"] and set(id_part.labels) == {"a", "b"}
    with pytest.raises(InputError, match="do not occur"):
        split_by_labels(texts, labels, ["zzz"])
    kept, held = holdout(texts, labels, fraction=0.25, seed=0)
    assert len(held) == 3 and sorted(held.labels) == ["a", "b", "oos"]  # one of each label: stratified
    assert sorted(kept.texts + held.texts, key=lambda t: int(t[1:])) == texts
    assert holdout(texts, labels, fraction=0.25, seed=0) == (kept, held)
    kept, held = holdout(texts, None, fraction=0.5, seed=1)
    assert len(held) == 6 and held.labels is None
    with pytest.raises(InputError, match="between 0 and 1"):
        holdout(texts, fraction=1.5)
