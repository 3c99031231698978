"""OOD comparisons and the bench-ood object: synthetic embeddings, a fake embedder, and one real CLINC150 run."""
from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from embedlab.errors import InputError
from embedlab.ood import bench
from embedlab.ood.bench import export_clinc_csvs, run_ood_bench
from embedlab.ood.clinc import LabelledTexts
from embedlab.ood.comparison import run_ood_comparison
from tests.fakes import FakeEmbedder

METRICS = {"auroc", "fpr95", "fpr95_openood", "aupr_in", "aupr_out"}
INTENTS = ["book_flight", "play_music", "weather", "set_alarm"]


def topic_embed(texts: list[str]) -> np.ndarray:
    """Texts about an intent point near that intent's axis; anything else is noise in the other directions."""
    out = np.zeros((len(texts), 16))
    for i, text in enumerate(texts):
        rng = np.random.default_rng(int(hashlib.md5(text.encode()).hexdigest()[:8], 16))
        hit = [j for j, intent in enumerate(INTENTS) if intent.split("_")[0] in text]
        out[i] = rng.normal(size=16) * 0.2
        if hit:
            out[i, hit[0]] += 3
        else:
            out[i, 8:] += 1
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


class TopicEmbedder(FakeEmbedder):
    """`topic_embed` as an embedder; records the size of every encode call."""

    name = "topic-fake"

    def __init__(self) -> None:
        super().__init__(dim=16)
        self.calls: list[int] = []

    def identity(self) -> dict:
        return {"embedder": "topic-fake", "version": 1}

    def encode(self, texts, *, batch_size=None, progress=None) -> np.ndarray:
        self.calls.append(len(texts))
        if progress:
            progress(1.0, "done")
        return topic_embed(list(texts))


@pytest.fixture
def fake_embedding():
    return TopicEmbedder()


@pytest.fixture
def clinc_file(tmp_path) -> Path:
    def rows(n, tag):
        return [[f"{intent.split('_')[0]} request {tag} {i}", intent] for intent in INTENTS for i in range(n)]
    data = {"train": rows(25, "tr") + [["what is the meaning of life", "oos"]], "val": rows(2, "va"),
            "test": rows(10, "te"), "oos_train": [["tell me a joke", "oos"]], "oos_val": [["a joke", "oos"]],
            "oos_test": [[f"random chit chat number {i}", "oos"] for i in range(20)]}
    path = tmp_path / "data_full.json"
    path.write_text(json.dumps(data))
    return path


def _synthetic(seed=0, labelled=True):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 8)) * 4
    X_train = np.vstack([c + rng.normal(size=(40, 8)) for c in centres])
    X_test = np.vstack([c + rng.normal(size=(10, 8)) for c in centres] + [rng.normal(size=(15, 8)) * 4])
    y_train = np.repeat(["a", "b", "c"], 40) if labelled else None
    y_test = list(np.repeat(["a", "b", "c"], 10)) + [None] * 15
    return X_train, y_train, X_test, np.r_[np.zeros(30, bool), np.ones(15, bool)], y_test


def test_comparison_returns_metrics_and_scores_per_method():
    X_train, y_train, X_test, is_ood, y_test = _synthetic()
    seen = []
    out = run_ood_comparison(X_train, y_train, X_test, is_ood, ["knn", "msp", "vim"], y_test=y_test,
                             params={"knn": {"k": 3}}, progress=lambda f, m: seen.append((f, m)))
    assert list(out["methods"]) == ["knn", "msp", "vim"] and out["n_id"] == 30 and out["n_ood"] == 15
    for name, metrics in out["methods"].items():
        assert METRICS <= set(metrics) and all(0 <= metrics[k] <= 1 for k in METRICS)
        assert metrics["auroc_ci"][0] <= metrics["auroc"] <= metrics["auroc_ci"][1]
        assert out["scores"][name].shape == (45,)
    assert 0.9 < out["id_accuracy"] <= 1
    assert seen[-1] == (1.0, "done") and all(0 <= f <= 1 for f, _ in seen)
    assert out["head_fit_s"] >= 0 and out["methods"]["msp"]["fit_s"] < 1  # the shared head is fitted once
    no_head = run_ood_comparison(X_train, y_train, X_test, is_ood, ["knn"], y_test=y_test)
    assert no_head["id_accuracy"] is None and no_head["head_fit_s"] is None  # no head when no method uses it


def test_comparison_skips_label_methods_without_labels_unless_named():
    X_train, _, X_test, is_ood, _ = _synthetic(labelled=False)
    out = run_ood_comparison(X_train, None, X_test, is_ood)
    assert set(out["methods"]) == {"knn", "lof", "iforest"}
    assert set(out["skipped"]) == {"mahalanobis", "rmd", "msp", "energy", "mcm", "vim", "prototypes"}
    with pytest.raises(InputError, match="'rmd' needs labels"):
        run_ood_comparison(X_train, None, X_test, is_ood, ["knn", "rmd"])
    with pytest.raises(InputError, match="unknown OOD method.*valid"):
        run_ood_comparison(X_train, None, X_test, is_ood, ["knn", "odin"])
    with pytest.raises(InputError, match="dimensions"):
        run_ood_comparison(X_train, None, X_test[:, :4], is_ood, ["knn"])


def test_bench_on_clinc_gives_the_design_json(clinc_file, fake_embedding):
    out = run_ood_bench(clinc=clinc_file, methods=["knn", "rmd", "msp", "mcm"], model=fake_embedding)
    assert {"dataset", "model", "n_id", "n_ood", "methods"} <= set(out)
    assert (out["dataset"], out["model"], out["n_id"], out["n_ood"]) == ("clinc150", "topic-fake", 40, 20)
    assert list(out["methods"]) == ["knn", "rmd", "msp", "mcm"]
    for metrics in out["methods"].values():
        assert METRICS <= set(metrics) and all(0 <= metrics[k] <= 1 for k in METRICS)
        assert metrics["auroc"] > 0.9
    assert out["id_accuracy"] == 1.0
    json.dumps(out)  # plain JSON, no numpy types
    assert fake_embedding.calls[:3] == [100, 40, 20]  # train without 'oos'; ID test; oos_test
    assert set(out["timing_s"]) == {"embed", "head_fit", "total"}


def test_bench_rejects_bad_requests_before_embedding(clinc_file, fake_embedding):
    with pytest.raises(InputError, match="unknown OOD method.*valid methods: knn"):
        run_ood_bench(clinc=clinc_file, methods=["knn", "nope"], model=fake_embedding)
    with pytest.raises(InputError, match="either"):
        run_ood_bench(clinc=clinc_file, train=clinc_file, model=fake_embedding)
    with pytest.raises(InputError, match="all three"):
        run_ood_bench(train=clinc_file, model=fake_embedding)
    with pytest.raises(InputError, match="unknown parameter"):
        run_ood_bench(clinc=clinc_file, methods=["knn"], params={"knn": {"kk": 3}}, model=fake_embedding)
    assert fake_embedding.calls == []


def _read_csv_fallback(path, text_col=None, label_col=None):
    """Private stand-in for embedlab.ingest.load_corpus while ingestion is not in the tree."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return LabelledTexts([r["text"] for r in rows], [r["label"] for r in rows])


def test_exported_csvs_reproduce_the_clinc_numbers(clinc_file, tmp_path, fake_embedding, monkeypatch):
    try:
        import embedlab.ingest  # noqa: F401
    except ImportError:
        monkeypatch.setattr(bench, "_read_corpus", _read_csv_fallback)
    train, test, ood = export_clinc_csvs(clinc_file, tmp_path / "csv")
    assert [p.name for p in (train, test, ood)] == ["train.csv", "test.csv", "ood.csv"]
    with open(train, newline="") as f:
        assert next(csv.reader(f)) == ["text", "label"]
    methods = ["knn", "mahalanobis", "energy", "lof"]
    from_clinc = run_ood_bench(clinc=clinc_file, methods=methods, model=fake_embedding)
    from_files = run_ood_bench(train=train, test=test, ood=ood, methods=methods, model=fake_embedding)
    assert from_files["dataset"] == "train"
    for name in methods:
        for key in METRICS | {"auroc_ci"}:
            assert from_files["methods"][name][key] == from_clinc["methods"][name][key]
    assert (from_files["n_id"], from_files["n_ood"], from_files["id_accuracy"]) == \
        (from_clinc["n_id"], from_clinc["n_ood"], from_clinc["id_accuracy"])


def test_fake_embedder_through_the_real_cache(clinc_file, db):
    """The real embedding cache with a fake model: bench-ood caches, a second run embeds only the 20 OOD texts
    (fewer than CACHE_ENCODINGS_FROM: not worth a stored matrix)."""
    from embedlab.embedding.space import CACHE_ENCODINGS_FROM

    fake = FakeEmbedder(dim=16)
    first = run_ood_bench(clinc=clinc_file, model=fake, methods=["knn", "iforest"], db=db)
    n = fake.encoded
    assert n == 100 + 40 + 20
    second = run_ood_bench(clinc=clinc_file, model=fake, methods=["knn", "iforest"], db=db)
    assert fake.encoded - n == 20 < CACHE_ENCODINGS_FROM
    for name in ("knn", "iforest"):
        assert {k: first["methods"][name][k] for k in METRICS} == {k: second["methods"][name][k] for k in METRICS}


@pytest.mark.slow
def test_real_clinc_subset(shared_data):
    """all-MiniLM-L6-v2 on stratified CLINC150: 10 train per intent, 300 test, 100 out-of-scope (1,900 texts to
    embed). The full bench gives 0.96-0.97 for these three methods."""
    from embedlab.embedding.space import embed_texts
    from embedlab.ood.clinc import load_clinc

    path = shared_data / "clinc150" / "data_full.json"
    if not path.exists():
        pytest.skip(f"{path} is missing")
    data = load_clinc(path)

    def per_intent(split, n):
        taken: dict[str, int] = {}
        keep = []
        for i, y in enumerate(split.labels):
            if taken.get(y, 0) < n:
                taken[y] = taken.get(y, 0) + 1
                keep.append(i)
        return [split.texts[i] for i in keep], [split.labels[i] for i in keep]

    train_texts, train_labels = per_intent(data["train"], 10)
    test_texts, test_labels = per_intent(data["test"], 2)
    ood_texts = data["oos_test"].texts[:100]
    X = embed_texts(None, train_texts + test_texts + ood_texts, "all-MiniLM-L6-v2")
    X_train, X_test = X[:len(train_texts)], X[len(train_texts):]
    is_ood = np.r_[np.zeros(len(test_texts), bool), np.ones(len(ood_texts), bool)]
    out = run_ood_comparison(X_train, train_labels, X_test, is_ood, ["knn", "msp", "rmd"],
                             y_test=test_labels + [None] * len(ood_texts))
    assert (len(train_texts), out["n_id"], out["n_ood"]) == (1500, 300, 100)
    for name, metrics in out["methods"].items():
        assert metrics["auroc"] > 0.85, (name, metrics)
    assert out["id_accuracy"] > 0.8
