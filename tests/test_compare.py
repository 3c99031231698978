"""Agreement between two embedding spaces: linear CKA and neighbour overlap."""
from __future__ import annotations

import numpy as np
import pytest

from embedlab.compare import linear_cka, mean_neighbour_overlap, neighbour_overlap


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
