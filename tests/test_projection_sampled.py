"""UMAP of large corpora fitted on a sample, the other rows placed (embedlab.projection, `fit_rows`): the params and
keys (maps made before keep theirs), every row placed, and a map about as trustworthy as a full fit (with the
threshold lowered to a few hundred rows)."""
from __future__ import annotations

import numpy as np
import pytest

from embedlab import projection
from embedlab.projection import UMAP_FIT_ROWS, project, projection_params, projection_plan, trustworthiness_score
from embedlab.tasks import with_fit_rows
from storage.cache_keys import projection_cache_key


def clustered(n: int, dim: int = 64, centres: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    C = rng.standard_normal((centres, dim))
    basis = rng.standard_normal((centres, 4, dim)) * 0.35
    which = rng.integers(0, centres, size=n)
    X = C[which] + np.einsum("nk,nkd->nd", rng.standard_normal((n, 4)), basis[which])
    return (X + 0.1 * rng.standard_normal((n, dim))).astype(np.float32)


def test_old_maps_keep_their_params_and_keys():
    umap = projection_params()
    assert "fit_rows" not in umap
    sampled = projection_params(fit_rows=UMAP_FIT_ROWS)
    assert sampled == {**umap, "fit_rows": UMAP_FIT_ROWS}
    assert projection_cache_key("emb", sampled) != projection_cache_key("emb", umap)
    assert "fit_rows" not in projection_params(method="pca", fit_rows=500)


def test_the_default_samples_only_above_the_threshold():
    umap = projection_params()
    assert with_fit_rows(umap, UMAP_FIT_ROWS) == umap                      # every map made so far: same key
    assert with_fit_rows(umap, UMAP_FIT_ROWS + 1) == projection_params(fit_rows=UMAP_FIT_ROWS)
    assert with_fit_rows(projection_params(method="pca"), 10**6) == projection_params(method="pca")
    explicit = projection_params(fit_rows=5000)
    assert with_fit_rows(explicit, 10**6) == explicit
    assert projection_plan(UMAP_FIT_ROWS, 384)["fit_rows"] is None
    big = projection_plan(10**6, 384)
    assert big["fit_rows"] == UMAP_FIT_ROWS and big["n_epochs"] == projection.LARGE_N_EPOCHS
    assert projection_plan(2000, 64, fit_rows=500)["fit_rows"] == 500
    assert projection_plan(2000, 64, fit_rows=500)["n_epochs"] == 500     # the epochs of the sample's size


def test_bad_fit_rows_are_refused():
    with pytest.raises(projection.InputError, match="fit_rows"):
        projection_params(fit_rows=3)


@pytest.mark.slow
def test_sampled_map_places_every_row_and_keeps_neighbourhoods():
    X = clustered(2500)
    seen = []
    info: dict = {}
    Y = project(X, fit_rows=500, n_epochs=200, info=info, progress=lambda f, m: seen.append((f, m)))
    assert Y.shape == (2500, 2) and np.isfinite(Y).all()
    assert len({tuple(r) for r in np.round(Y, 5)}) > 2400                  # placed, not piled up
    assert info["fit_rows"] == 500 and "placing" in info["seconds"]
    assert any(m.startswith("placing the other rows") for _, m in seen)
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    np.testing.assert_array_equal(Y, project(X, fit_rows=500, n_epochs=200))   # seeded: the same map
    full = project(X, n_epochs=200)
    trust_sampled, trust_full = trustworthiness_score(X, Y), trustworthiness_score(X, full)
    assert trust_sampled >= trust_full - 0.08, (trust_sampled, trust_full)
