"""Out-of-distribution detectors on embeddings, one module each in `detectors/`, found by discovery.

The page, the CLI and the benchmark read `REGISTRY` (name → Detector class, filled on first use) and never list
methods themselves: a new detector is one new module in `embedlab/ood/detectors/` with a `@register`-ed class."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from embedlab.neighbours import l2_normalise
from embedlab.ood.base import DETECTORS, REGISTRY, Detector, register
from embedlab.ood.label_rules import NO_LABELS, label_problem, method_problem


def method_names() -> list[str]:
    """Every registered OOD method name, in display order (DESIGN §3's first, then the rest by name)."""
    return REGISTRY.names()


def parse_methods(methods: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """'knn,msp' or ['knn', 'msp'] or None (= all) → validated names; unknown ones raise InputError."""
    return REGISTRY.parse(methods)


def get_detector(name: str, **params: Any) -> Detector:
    """A fresh, unfitted detector; params (typed, or strings to cast) override its defaults and are checked."""
    return REGISTRY.create(name, **params)


def describe_methods() -> list[dict[str, Any]]:
    """What the page shows: one record per method; "params" is the tuple of declared `Param`s."""
    return [{"name": n, "description": REGISTRY[n].description, "params": tuple(REGISTRY[n].param_specs),
             "needs_labels": REGISTRY[n].needs_labels, "needs_embedder": REGISTRY[n].needs_embedder}
            for n in method_names()]


def unavailable_reason(name: str, *, has_labels: bool, has_embedder: bool = True) -> str | None:
    """Why a method cannot run on an in-distribution set with or without labels (None when it can)."""
    return method_problem(REGISTRY[parse_methods([name])[0]], labels_problem=None if has_labels else NO_LABELS,
                          has_embedder=has_embedder)


def disabled_methods(methods: Sequence[str], train_labels: Sequence[Any] | None,
                     *, has_embedder: bool = True) -> dict[str, str]:
    """{method: why it cannot run on this in-distribution set} for the methods that cannot (the page greys them
    out with this)."""
    problem = label_problem(train_labels)
    out = {}
    for name in parse_methods(list(methods)):
        reason = method_problem(REGISTRY[name], labels_problem=problem, has_embedder=has_embedder)
        if reason:
            out[name] = reason
    return out


__all__ = ["DETECTORS", "REGISTRY", "Detector", "register", "l2_normalise", "method_names", "parse_methods",
           "get_detector", "describe_methods", "unavailable_reason", "disabled_methods"]
