"""The registry of retrieval methods that the page, the CLI and the benchmark all read.

Methods are found by discovery: every module of `embedlab.retrieval.methods` is imported on first use, and each
class it decorates with `@register` is a method (display order: `methods.DISPLAY_ORDER`, then by name). A family
with a number in its name (`matryoshka-N`) sets a `pattern` on its class. `create_method("matryoshka-128")` gives
a ready-to-build instance with checked parameters.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from embedlab.errors import InputError
from embedlab.registry import Param, Registry, resolve_params
from embedlab.retrieval.base import RetrievalMethod

DEFAULT_METHODS = ("bm25", "dense", "hnsw", "int8-rescore", "binary-rescore", "matryoshka-128", "hybrid-rrf",
                   "maxsim", "muvera", "invgc")

METHODS = Registry("retrieval method", "embedlab.retrieval.methods")
register = METHODS.register


@dataclass(frozen=True)
class MethodInfo:
    """What the UI and CLI show about a method: name (or pattern), one-line description, declared parameters."""
    name: str
    description: str
    params: tuple[Param, ...]
    needs: frozenset[str]
    cls: type[RetrievalMethod]
    pattern: str | None = None       # e.g. r"matryoshka-(\d+)" for parametrised names

    @classmethod
    def of(cls, method: type[RetrievalMethod]) -> "MethodInfo":
        return cls(method.name, method.description, tuple(method.param_specs), frozenset(method.needs), method,
                   method.pattern)

    def param(self, name: str) -> Param:
        """The declared parameter called `name`."""
        return next(p for p in self.params if p.name == name)


def list_methods() -> list[MethodInfo]:
    """Every registered method family, in display order (DESIGN §3's first, then the rest by name)."""
    return [MethodInfo.of(METHODS[name]) for name in METHODS.names()]


def method_names() -> list[str]:
    """Names as the CLI accepts them (`matryoshka-N` stands for any N)."""
    return METHODS.names()


def method_info(name: str) -> MethodInfo:
    """The registry entry for a concrete name such as `dense` or `matryoshka-64`."""
    info, _ = _resolve(name)
    return info


def _resolve(name: str) -> tuple[MethodInfo, dict[str, Any]]:
    """The entry for a concrete name and the parameters the name carries (checked)."""
    name = (name or "").strip()
    names = METHODS.names()
    if name in names and METHODS[name].pattern is None:
        return MethodInfo.of(METHODS[name]), {}
    for family in names:
        cls = METHODS[family]
        match = re.fullmatch(cls.pattern, name) if cls.pattern else None
        if match:
            from_name = cls.params_from_name(match)
            resolve_params(cls.param_specs, from_name, f"retrieval method {name!r}")  # e.g. matryoshka-0
            return MethodInfo.of(cls), from_name
    raise InputError(f"unknown retrieval method {name!r}; valid methods: {', '.join(names)}")


def create_method(name: str, **params: Any) -> RetrievalMethod:
    """An unbuilt method instance for a concrete name, with parameters over its defaults (InputError if bad)."""
    info, from_name = _resolve(name)
    try:
        method = info.cls(**{**from_name, **params})
    except ValueError as exc:
        raise InputError(f"{name}: {exc}") from exc
    if info.pattern:
        method.name = name  # instance name is the concrete one, e.g. matryoshka-128
    return method


def parse_method_list(spec: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """'a,b' or a list -> validated concrete names (duplicates dropped, order kept); None -> DEFAULT_METHODS."""
    if spec is None:
        return list(DEFAULT_METHODS)
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names: list[str] = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        method_info(item)  # raises InputError listing the valid names
        if item not in names:
            names.append(item)
    if not names:
        raise InputError(f"no retrieval method given; valid methods: {', '.join(method_names())}")
    return names
