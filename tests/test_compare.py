"""Agreement between two embedding spaces: linear CKA and neighbour overlap."""
from __future__ import annotations

import numpy as np
import pytest

from embedlab.compare import (
    disagreement_order,
    linear_cka,
    mean_neighbour_overlap,
    neighbour_disagreement,
    neighbour_lists,
    neighbour_overlap,
)


def rotation(d: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((400, 24))


def test_cka_is_one_under_rotation_and_scaling_and_small_for_independent_spaces(X):
    assert linear_cka(X, X) == pytest.approx(1.0)
    assert linear_cka(X, X @ rotation(24, 1)) == pytest.approx(1.0)
    assert linear_cka(X, 3.5 * X) == pytest.approx(1.0)
    # 8 of 24 independent columns: sqrt(8 / 24) = 0.577 in expectation; data seeds 0-9 here: 0.577-0.606
    assert 0.5 < linear_cka(X, X[:, :8]) < 0.7
    independent = np.random.default_rng(2).standard_normal((400, 40))
    assert linear_cka(X, independent) < 0.15  # data seeds 0-9 here: 0.069-0.080; the same space: 1
    assert linear_cka(X, independent) == pytest.approx(linear_cka(independent, X))


def test_cka_needs_the_same_rows(X):
    with pytest.raises(ValueError):
        linear_cka(X, X[:10])


def test_neighbour_overlap_is_one_for_identical_and_rotated_spaces(X):
    assert neighbour_overlap(X, X, k=10).tolist() == [1.0] * 400
    rotated = neighbour_overlap(X, X @ rotation(24, 3), k=10)
    assert rotated.min() == 1.0


def test_neighbour_overlap_is_near_chance_for_independent_spaces(X):
    other = np.random.default_rng(4).standard_normal((400, 24))
    per_doc = neighbour_overlap(X, other, k=10)
    assert per_doc.shape == (400,)
    assert ((per_doc >= 0) & (per_doc <= 1)).all()
    # chance is 10/399 = 0.025; data seeds 0-9 here: 0.018-0.029; counting each document as its own neighbour: 0.12
    assert per_doc.mean() < 0.1


def test_blockwise_equals_one_block(X):
    noisy = X + 0.5 * np.random.default_rng(5).standard_normal(X.shape)
    one = neighbour_overlap(X, noisy, k=7)
    np.testing.assert_array_equal(neighbour_overlap(X, noisy, k=7, block=33), one)
    assert 0.2 < one.mean() < 1.0  # noise seeds 0-9 here: 0.368-0.398; noise of sd 2 instead: 0.043
    assert mean_neighbour_overlap(X, noisy, k=7) == pytest.approx(one.mean())
    rows = np.sort(np.random.default_rng(9).choice(400, 100, replace=False))
    assert mean_neighbour_overlap(X, noisy, k=7, sample=100, seed=9) == pytest.approx(one[rows].mean())


# --- where the models disagree most (issue 12) -----------------------------------------------------------------


def test_disagreement_is_zero_for_the_same_ranking_and_one_for_unrelated_neighbourhoods(X):
    same = neighbour_disagreement(X, X @ rotation(24, 3), k=10, depth=50)
    assert same["overlap"].min() == 1.0 and same["displacement"].max() == 0.0
    # two spaces whose neighbourhoods share nothing: documents paired with far-away partners
    rng = np.random.default_rng(7)
    A = np.repeat(rng.standard_normal((50, 16)), 8, axis=0) + 0.01 * rng.standard_normal((400, 16))
    B = np.repeat(rng.standard_normal((50, 16)), 8, axis=0)[rng.permutation(400)] + 0.01 * rng.standard_normal((400, 16))
    far = neighbour_disagreement(A, B, k=7, depth=20)
    assert far["displacement"].mean() > 0.9 and far["overlap"].mean() < 0.1
    assert ((far["displacement"] >= 0) & (far["displacement"] <= 1)).all()


def test_displacement_tells_apart_documents_with_the_same_overlap():
    # document 0's neighbours 1..4 in space A; space B keeps them all but reverses their order (overlap 1, moved),
    # document 5's neighbours are the same in order in both spaces (overlap 1, not moved)
    rng = np.random.default_rng(0)
    base = rng.standard_normal((12, 6))
    A, B = base.copy(), base.copy()
    for j, d in enumerate([0.1, 0.2, 0.3, 0.4], start=1):
        A[j] = A[0] + d * np.eye(6)[j % 6]
        B[j] = B[0] + (0.5 - d) * np.eye(6)[j % 6]
    res = neighbour_disagreement(A, B, k=4, depth=8)
    assert res["overlap"][0] == 1.0 and res["displacement"][0] > 0
    order = disagreement_order(res["displacement"], res["overlap"], res["score"])
    assert res["displacement"][order].tolist() == sorted(res["displacement"].tolist(), reverse=True)


def test_disagreement_order_breaks_ties_by_overlap_then_tightness_never_by_id():
    displacement = np.array([0.5, 1.0, 1.0, 1.0, 0.2])
    overlap = np.array([0.1, 0.0, 0.2, 0.0, 0.0])
    score = np.array([0.9, 0.3, 0.9, 0.8, 0.5])
    assert disagreement_order(displacement, overlap, score).tolist() == [3, 1, 2, 0, 4]


def test_neighbour_lists_side_by_side_mark_the_shared_ones(X):
    noisy = X + 0.5 * np.random.default_rng(5).standard_normal(X.shape)
    rows = neighbour_lists(X, noisy, 7, k=10)
    assert [r["rank"] for r in rows] == list(range(1, 11))
    a, b = {r["a_idx"] for r in rows}, {r["b_idx"] for r in rows}
    assert 7 not in a | b
    assert {r["a_idx"] for r in rows if r["a_shared"]} == a & b == {r["b_idx"] for r in rows if r["b_shared"]}
    assert [r["a_cosine"] for r in rows] == sorted((r["a_cosine"] for r in rows), reverse=True)
