"""Space diagnostics against brute-force computations on small data, and the CLI's JSON contract."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import skew
from sklearn.decomposition import PCA

from embedlab.cli import main
from embedlab.diagnostics import diagnose, k_occurrence, mean_cosine, pca_dims, rankme, top_hubs

KEYS = ["model", "n_docs", "dim", "rankme", "hubness_skew@10", "anti_hub_fraction@10", "max_k_occurrence@10",
        "mean_cosine", "pca_dims_90"]


@pytest.fixture
def X():
    rng = np.random.default_rng(7)
    base = rng.normal(size=(150, 24)) * np.linspace(3, 0.1, 24)   # anisotropic: a few dominant directions
    return (base + 0.8).astype(np.float32)                         # and an offset: a positive mean cosine


def _unit(X):
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def test_rankme_matches_the_paper_formula_on_the_full_svd(X):
    sigma = np.linalg.svd(_unit(X.astype(np.float64)), compute_uv=False)
    p = sigma / sigma.sum() + 1e-7
    assert rankme(X) == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-6)
    assert rankme(np.eye(16, dtype=np.float32)) == pytest.approx(16, rel=1e-4)       # every direction used
    assert rankme(np.ones((16, 8), dtype=np.float32)) == pytest.approx(1, abs=1e-3)  # one direction


def test_k_occurrence_matches_a_brute_force_loop(X):
    S = _unit(X) @ _unit(X).T
    np.fill_diagonal(S, -np.inf)
    brute = np.zeros(len(X), dtype=int)
    for row in S:
        brute[np.argsort(-row)[:10]] += 1
    counts = k_occurrence(X, 10)
    assert counts.tolist() == brute.tolist() and counts.sum() == 10 * len(X)
    out = diagnose(X, model="m")
    assert out["hubness_skew@10"] == pytest.approx(skew(brute), abs=1e-4)
    assert out["anti_hub_fraction@10"] == pytest.approx((brute == 0).mean(), abs=1e-6)
    assert out["max_k_occurrence@10"] == brute.max()
    assert top_hubs(X, 3)[0] == (int(np.argmax(brute)), int(brute.max()))


def test_mean_cosine_and_pca_dims_match_their_definitions(X):
    S = _unit(X.astype(np.float64)) @ _unit(X.astype(np.float64)).T
    pairs = S[np.triu_indices(len(X), 1)]
    assert mean_cosine(X) == pytest.approx(pairs.mean(), abs=1e-6)
    assert mean_cosine(X) > 0.1            # the offset makes the space anisotropic
    ratios = np.cumsum(PCA().fit(X.astype(np.float64)).explained_variance_ratio_)
    assert pca_dims(X) == int(np.argmax(ratios >= 0.9) + 1)
    assert 1 < pca_dims(X) < 24


def test_cli_writes_the_design_keys(tmp_path, capsys):
    db, src, out = tmp_path / "d.sqlite", tmp_path / "c.csv", tmp_path / "diag.json"
    words = ["cats", "stocks", "goal", "rain", "code", "music"]
    src.write_text("text\n" + "\n".join(f"{words[i % 6]} {words[(i * 7) % 6]} note {i}" for i in range(40)) + "\n")
    assert main(["--db", str(db), "ingest", str(src), "--session", "s"]) == 0
    assert main(["--db", str(db), "diagnostics", "--session", "s", "--corpus", "c", "--model", "tfidf-svd",
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert list(result) == KEYS
    assert (result["model"], result["n_docs"]) == ("tfidf-svd", 40)
    assert 1 <= result["rankme"] <= result["dim"] and 0 <= result["anti_hub_fraction@10"] <= 1
    assert main(["--db", str(db), "diagnostics", "--session", "s", "--corpus", "nope"]) == 2
