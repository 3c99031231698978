"""OOD detectors, one module each, found by discovery (`embedlab.ood.base.DETECTORS`).

A new detector is one new module here with a class decorated by `@register` (from `embedlab.ood.base`); nothing
else lists it. Shared machinery lives outside this package (logits, mahalanobis), so that every module here is a
detector.
"""

# DESIGN §3's order, shown first; a detector not named here follows, by name.
DISPLAY_ORDER = ("knn", "mahalanobis", "rmd", "msp", "energy", "mcm", "vim", "lof", "iforest", "prototypes")
