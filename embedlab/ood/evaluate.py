"""OOD metrics as in OpenOOD v1.5, plus the FPR95 reading of Hendrycks, ODIN and KNN papers.

Conventions: scores are "higher = more OOD"; is_ood is True for out-of-distribution samples.
"""
from __future__ import annotations

import numpy as np

from embedlab.errors import InputError

RECALL = 0.95


def _check(scores, is_ood) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    is_ood = np.asarray(is_ood, dtype=bool).ravel()
    if len(scores) != len(is_ood):
        raise InputError(f"{len(scores)} scores for {len(is_ood)} ID/OOD flags")
    if is_ood.all() or not is_ood.any():
        raise InputError("OOD metrics need both in-distribution and out-of-distribution samples")
    if not np.isfinite(scores).all():
        raise InputError("OOD scores contain NaN or infinite values")
    return scores, is_ood


def _unit(x: float) -> float:
    """A metric as a plain float, clipped to [0, 1] against trapezoid round-off (1.0000000000000002)."""
    return float(min(1.0, max(0.0, float(x))))


def auroc(scores, is_ood) -> float:
    """Area under the ROC curve, OOD as the positive class (0.5 = chance, 1 = perfect)."""
    from sklearn.metrics import roc_auc_score

    scores, is_ood = _check(scores, is_ood)
    return _unit(roc_auc_score(is_ood, scores))


def fpr95(scores, is_ood, recall: float = RECALL) -> float:
    """Fraction of OOD samples accepted as ID at the first threshold that accepts ≥ 95 % of ID samples
    (Hendrycks & Gimpel, ODIN, KNN: ID is the positive class)."""
    from sklearn.metrics import roc_curve

    scores, is_ood = _check(scores, is_ood)
    ood_accepted, id_accepted, _ = roc_curve(~is_ood, -scores, drop_intermediate=False)
    return float(ood_accepted[np.argmax(id_accepted >= recall)])


def fpr95_openood(scores, is_ood, recall: float = RECALL) -> float:
    """Fraction of ID samples flagged as OOD at the first threshold that catches ≥ 95 % of OOD samples
    (OpenOOD v1.5's reading: OOD is the positive class)."""
    from sklearn.metrics import roc_curve

    scores, is_ood = _check(scores, is_ood)
    id_flagged, ood_caught, _ = roc_curve(is_ood, scores, drop_intermediate=False)
    return float(id_flagged[np.argmax(ood_caught >= recall)])


def aupr_in(scores, is_ood) -> float:
    """Area under precision-recall with ID as the positive class (scores negated), trapezoidal as in OpenOOD."""
    from sklearn.metrics import auc, precision_recall_curve

    scores, is_ood = _check(scores, is_ood)
    precision, recall, _ = precision_recall_curve(~is_ood, -scores)
    return _unit(auc(recall, precision))


def aupr_out(scores, is_ood) -> float:
    """Area under precision-recall with OOD as the positive class, trapezoidal as in OpenOOD."""
    from sklearn.metrics import auc, precision_recall_curve

    scores, is_ood = _check(scores, is_ood)
    precision, recall, _ = precision_recall_curve(is_ood, scores)
    return _unit(auc(recall, precision))


def weighted_auroc(scores, is_ood, weights: np.ndarray) -> np.ndarray:
    """AUROC under each row of sample weights (B × n), ties counted half: B resamples in one pass."""
    scores, is_ood = _check(scores, is_ood)
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    uniq, group = np.unique(scores, return_inverse=True)
    B, G = len(weights), len(uniq)
    offsets = (np.arange(B) * G)[:, None]

    def per_group(mask: np.ndarray) -> np.ndarray:
        idx = (offsets + group[mask][None, :]).ravel()
        return np.bincount(idx, weights=weights[:, mask].ravel(), minlength=B * G).reshape(B, G)

    w_id, w_ood = per_group(~is_ood), per_group(is_ood)
    id_below = np.cumsum(w_id, axis=1) - w_id
    wins = (w_ood * (id_below + 0.5 * w_id)).sum(1)
    return wins / (w_id.sum(1) * w_ood.sum(1))


def auroc_interval(scores, is_ood, *, n_boot: int = 200, level: float = 0.95, seed: int = 0) -> list[float]:
    """Percentile bootstrap interval for AUROC, resampling ID and OOD separately (stratified), seeded."""
    scores, is_ood = _check(scores, is_ood)
    rng = np.random.default_rng(seed)
    n = len(scores)
    counts = np.zeros(n_boot * n)
    for mask in (~is_ood, is_ood):
        members = np.flatnonzero(mask)
        draws = members[rng.integers(0, len(members), size=(n_boot, len(members)))]
        counts += np.bincount((draws + (np.arange(n_boot) * n)[:, None]).ravel(), minlength=n_boot * n)
    counts = counts.reshape(n_boot, n)
    boot = weighted_auroc(scores, is_ood, counts)
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return [_unit(lo), _unit(hi)]


def ood_metrics(scores, is_ood, *, interval: bool = True, seed: int = 0) -> dict[str, object]:
    """Every metric of DESIGN §3 for one detector's scores, plus the AUROC bootstrap interval."""
    out: dict[str, object] = {
        "auroc": auroc(scores, is_ood),
        "fpr95": fpr95(scores, is_ood),
        "fpr95_openood": fpr95_openood(scores, is_ood),
        "aupr_in": aupr_in(scores, is_ood),
        "aupr_out": aupr_out(scores, is_ood),
    }
    if interval:
        out["auroc_ci"] = auroc_interval(scores, is_ood, seed=seed)
    return out


def roc_points(scores, is_ood, max_points: int = 500) -> dict[str, list[float]]:
    """ROC curve for plotting (OOD positive): {"fpr": […], "tpr": […], "threshold": […]}, at most ~max_points."""
    from sklearn.metrics import roc_curve

    scores, is_ood = _check(scores, is_ood)
    fpr, tpr, thr = roc_curve(is_ood, scores)
    if len(fpr) > max_points:
        keep = np.unique(np.r_[np.linspace(0, len(fpr) - 1, max_points).round().astype(int), len(fpr) - 1])
        fpr, tpr, thr = fpr[keep], tpr[keep], thr[keep]
    thr = np.where(np.isfinite(thr), thr, np.nan)
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "threshold": [None if np.isnan(t) else float(t) for t in thr]}
