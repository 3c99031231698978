"""The registry of retrieval methods that the page, the CLI and the benchmark all read.

A method family registers its classes with `@register`; a family with a number in its name (`matryoshka-N`)
registers a pattern and a parser. `create_method("matryoshka-128")` gives a ready-to-build instance.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from embedlab.errors import InputError
from embedlab.retrieval.base import RetrievalMethod

DEFAULT_METHODS = ("bm25", "dense", "hnsw", "int8-rescore", "binary-rescore", "matryoshka-128", "hybrid-rrf",
                   "maxsim", "muvera", "invgc")


@dataclass(frozen=True)
class MethodInfo:
    """What the UI and CLI show about a method: name (or pattern), one-line description, parameter defaults."""
    name: str
    description: str
    params: dict[str, Any]
    needs: frozenset[str]
    cls: type[RetrievalMethod]
    pattern: str | None = None       # e.g. r"matryoshka-(\d+)" for parametrised names
    parse: Callable[[re.Match], dict[str, Any]] | None = None


_REGISTRY: dict[str, MethodInfo] = {}


def register(cls: type[RetrievalMethod] | None = None, *, pattern: str | None = None,
             parse: Callable[[re.Match], dict[str, Any]] | None = None):
    """Class decorator: make a method available by its `name` (and, with `pattern`, by names it matches)."""
    def wrap(c: type[RetrievalMethod]) -> type[RetrievalMethod]:
        _REGISTRY[c.name] = MethodInfo(c.name, c.description, dict(c.params), frozenset(c.needs), c, pattern, parse)
        return c
    return wrap(cls) if cls is not None else wrap


def _load_families() -> None:
    # Importing the family modules runs their @register decorators.
    from embedlab.retrieval import ann, dense, fusion, hubness, lexical, multivector, quantized  # noqa: F401


def list_methods() -> list[MethodInfo]:
    """Every registered method family, in the order of DEFAULT_METHODS, then the rest by name."""
    _load_families()
    order = {("matryoshka-N" if n.startswith("matryoshka-") else n): i for i, n in enumerate(DEFAULT_METHODS)}
    return sorted(_REGISTRY.values(), key=lambda m: (order.get(m.name, len(order)), m.name))


def method_names() -> list[str]:
    """Names as the CLI accepts them (`matryoshka-N` stands for any N)."""
    return [m.name for m in list_methods()]


def method_info(name: str) -> MethodInfo:
    """The registry entry for a concrete name such as `dense` or `matryoshka-64`."""
    _load_families()
    info, _ = _resolve(name)
    return info


def _resolve(name: str) -> tuple[MethodInfo, dict[str, Any]]:
    name = (name or "").strip()
    if name in _REGISTRY and _REGISTRY[name].pattern is None:
        return _REGISTRY[name], {}
    for info in _REGISTRY.values():
        if info.pattern:
            m = re.fullmatch(info.pattern, name)
            if m:
                return info, (info.parse(m) if info.parse else {})
    valid = ", ".join(method_names())
    raise InputError(f"unknown retrieval method {name!r}; valid methods: {valid}")


def create_method(name: str, **params: Any) -> RetrievalMethod:
    """An unbuilt method instance for a concrete name, with parameters over its defaults."""
    _load_families()
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
