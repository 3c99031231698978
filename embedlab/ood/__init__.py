"""Out-of-distribution detectors on embeddings, one module each in `detectors/`, found by discovery.

The page, the CLI and the benchmark read `REGISTRY` (name → Detector class, filled on first use) and never list
methods themselves: a new detector is one new module in `embedlab/ood/detectors/` with a `@register`-ed class."""
from __future__ import annotations

from typing import Any

from embedlab.errors import InputError
from embedlab.neighbours import l2_normalise
from embedlab.ood.base import DETECTORS, REGISTRY, Detector, register


def method_names() -> list[str]:
    """Every registered OOD method name, in display order (DESIGN §3's first, then the rest by name)."""
    return REGISTRY.names()


def parse_methods(methods: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """'knn,msp' or ['knn', 'msp'] or None (= all) → validated names; unknown ones raise InputError."""
    if methods is None:
        return method_names()
    names = [m.strip() for m in (methods.split(",") if isinstance(methods, str) else methods) if m.strip()]
    unknown = [m for m in names if m not in REGISTRY]
    if unknown:
        raise InputError(f"unknown OOD method(s) {', '.join(unknown)}; valid: {', '.join(method_names())}")
    if not names:
        raise InputError(f"no OOD method given; valid: {', '.join(method_names())}")
    return list(dict.fromkeys(names))


def get_detector(name: str, **params: Any) -> Detector:
    """A fresh, unfitted detector; params (typed, or strings to cast) override its defaults and are checked."""
    return REGISTRY[parse_methods([name])[0]](**params)


def describe_methods() -> list[dict[str, Any]]:
    """What the page shows: one record per method; "params" is the tuple of declared `Param`s."""
    return [{"name": n, "description": REGISTRY[n].description, "params": tuple(REGISTRY[n].param_specs),
             "needs_labels": REGISTRY[n].needs_labels, "needs_embedder": REGISTRY[n].needs_embedder}
            for n in method_names()]


def unavailable_reason(name: str, *, has_labels: bool, has_embedder: bool = True) -> str | None:
    """Why a method cannot run on this in-distribution set (None when it can): the page disables it with this."""
    from embedlab.ood import label_rules

    return label_rules.unavailable_reason(name, has_labels=has_labels, has_embedder=has_embedder)


__all__ = ["DETECTORS", "REGISTRY", "Detector", "register", "l2_normalise", "method_names", "parse_methods",
           "get_detector", "describe_methods", "unavailable_reason"]
